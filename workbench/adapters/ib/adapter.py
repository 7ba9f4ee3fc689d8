"""``ib``: Interactive Brokers through ib_async (or ib_insync where only that is installed).

The adapter lives on workbench's event loop and uses the SDK's async API, so no nested-loop patch is
needed in Jupyter. The client_order_id travels in ``orderRef``: an order already known to the gateway
(also after a reconnect, which re-syncs open and completed orders) is returned, never sent twice.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from workbench.adapters.base import AdapterBase, Capabilities, EventFanout, Subscription
from workbench.core.enums import Feature, Side, TimeInForce
from workbench.core.errors import (
    BrokerUnavailable,
    ConfigError,
    NotSupported,
    OrderNotFound,
    RequestTimeout,
    SymbolNotFound,
    WorkbenchError,
)
from workbench.core.frames import empty_history, history_frame
from workbench.core.intervals import parse_interval
from workbench.core.log import get_logger
from workbench.core.models import AccountInfo, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote
from workbench.core.settings import Settings
from workbench.marketdata.base import resolve_range

from .config import IBConfig
from .pacing import HistoricalPacer
from .parse import ORDER_TYPES, TIFS, bar_size, error_from_ib, history_chunks, order_status, to_decimal

__all__ = ["IBAdapter", "bars_frame"]

log = get_logger(__name__)

_IB_TYPES = {v: k for k, v in ORDER_TYPES.items()}
_IB_TIFS = {v: k for k, v in TIFS.items()}
_ORDER_ERRORS = (201, 103, 104, 321, 200)


def _sdk(name: str) -> Any:
    """The ib_async module (or ib_insync), imported on first use only."""
    import importlib

    candidates = ["ib_async", "ib_insync"] if name == "auto" else [name]
    for module in candidates:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    from workbench.core.errors import ConfigError

    raise ConfigError("the ib broker needs ib_async: pip install 'workbench[ib]'", key="ib.sdk")


class IBAdapter(AdapterBase):
    """Interactive Brokers via TWS / IB Gateway (or workbench's TWS emulator)."""

    name = "ib"
    capabilities = Capabilities(
        order_types=frozenset(ORDER_TYPES), tifs=frozenset(TIFS),
        features=frozenset({Feature.STREAM_FILLS, Feature.MARKET_DATA_STREAM, Feature.HISTORY, Feature.SHORTING,
                            Feature.PARTIAL_FILLS, Feature.MARKET_CALENDAR}),
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = settings.section_model("ib", IBConfig)
        self.ib: Any = None
        self._state = "disconnected"
        self._contracts: dict[str, Any] = {}
        self._fills = EventFanout()
        self._errors: dict[int, list[tuple[int, str]]] = {}
        self._pacer = HistoricalPacer()
        self._subs: dict[int, tuple[tuple[str, ...], Callable[[Quote], Any]]] = {}
        self._tickers: dict[str, list[Any]] = {}  # symbol -> [shared streaming ticker, subscriber count]
        self._closing = False
        self._reconnect: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # set whenever IB reports something about orders
        self._by_ref: dict[str, Any] = {}  # orderRef (our client_order_id) -> Trade
        self._placing: set[str] = set()  # client order ids being sent now
        self._sdk: Any = None

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.is_connected():
            return
        self.config.check_endpoint()
        sdk = self._sdk = _sdk(self.config.sdk)
        if self.ib is None:
            self.ib = sdk.IB()
            self.ib.errorEvent += self._on_error
            self.ib.commissionReportEvent += self._on_commission
            self.ib.disconnectedEvent += self._on_disconnected
            for event in (self.ib.orderStatusEvent, self.ib.execDetailsEvent):
                event += self._poke
            self.ib.openOrderEvent += self._on_open_order
        self._closing = False
        self._errors.clear()  # request ids are reused after a reconnect
        try:
            await self.ib.connectAsync(self.config.host, self.config.port, clientId=self.config.client_id,
                                       timeout=self.config.connect_timeout, readonly=self.config.readonly,
                                       account=self.config.account or "")
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailable(f"cannot connect to IB at {self.config.host}:{self.config.port}: {exc}",
                                    broker=self.name, code="connect", raw=str(exc)) from exc
        self._by_ref = {t.order.orderRef: t for t in self.ib.trades() if t.order.orderRef}
        accounts = self.ib.managedAccounts()
        for account in ([self.config.account] if self.config.account else accounts):
            try:
                self.config.check_account(account)
            except WorkbenchError:
                self._closing = True  # a refused account is final: no reconnect attempts
                self.ib.disconnect()
                raise
        self._state = "connected"
        if self._subs:  # restore subscriptions after a reconnect (the old tickers died with the connection)
            self._tickers.clear()
            for symbols, callback in self._subs.values():
                await self._stream(symbols, callback)

    async def disconnect(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self.ib is not None and self.ib.isConnected():
            self.ib.disconnect()
        self._state = "disconnected"

    def conflict(self, other: AdapterBase) -> str | None:
        """The gateway allows one session per client id: a new connect replaces an open one with the same id."""
        mine, theirs = self.config, getattr(other, "config", None)
        if isinstance(other, IBAdapter) and (mine.host, mine.port) == (theirs.host, theirs.port) \
                and getattr(other, "client_id", theirs.client_id) == mine.client_id:
            return f"IB client id {mine.client_id} at {mine.host}:{mine.port}"
        return None

    def is_connected(self) -> bool:
        """Connected and synced (a reconnect counts only once its order/fill/position resync is done)."""
        return self._state == "connected" and self.ib is not None and self.ib.isConnected()

    @property
    def state(self) -> str:
        if self._state == "connected" and not (self.ib is not None and self.ib.isConnected()):
            return "reconnecting" if not self._closing else "disconnected"
        return self._state

    def _on_disconnected(self) -> None:
        # Only a loss of an established connection starts the watchdog, and only one at a time (ib_async also
        # fires this event when a reconnect attempt fails part-way).
        if self._closing or self._state != "connected" or (self._reconnect and not self._reconnect.done()):
            return
        self._state = "reconnecting"
        log.warning("IB connection lost; reconnecting")
        self._reconnect = asyncio.get_event_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.5
        while not self._closing and not self.is_connected():
            try:
                await self.connect()
                log.warning("IB connection restored (orders, fills and positions re-synced)")
                return
            except ConfigError as exc:  # e.g. client id taken or account refused: retrying cannot help
                log.error("IB reconnect stopped: %s", exc)
                self._state = "disconnected"
                return
            except Exception as exc:  # keep trying whatever the failure; never die silently
                log.info("IB reconnect failed (%s: %s); next try in %.1f s", type(exc).__name__, exc, delay)
            await asyncio.sleep(delay * (1 + random.random() / 4))  # backoff with jitter
            delay = min(delay * 2, self.config.reconnect_max_delay)

    def _poke(self, *_: Any) -> None:
        self._changed.set()

    def _on_open_order(self, trade: Any) -> None:
        if trade.order.orderRef:
            self._by_ref[trade.order.orderRef] = trade
        self._changed.set()

    def _on_error(self, req_id: int, code: int, message: str, *_: Any) -> None:
        if req_id > 0:  # request/order errors only; -1 notices are logged, not kept
            self._errors.setdefault(req_id, []).append((code, message))
        self._changed.set()
        if error_from_ib(code, message, req_id) is not None:
            log.info("IB error %s on request %s: %s", code, req_id, message)

    # -- contracts --------------------------------------------------------------------------

    async def _contract(self, symbol: str) -> Any:
        sym = symbol.strip().upper()
        contract = self._contracts.get(sym)
        if contract is None:
            self._require_connected()
            result = await self.ib.qualifyContractsAsync(self._sdk.Stock(sym, "SMART", "USD"))
            if not result or result[0] is None or not getattr(result[0], "conId", 0):
                raise SymbolNotFound(f"IB has no stock {sym!r}", broker=self.name, code=200)
            contract = self._contracts[sym] = result[0]
        return contract

    # -- account ----------------------------------------------------------------------------

    async def get_account(self) -> AccountInfo:
        self._require_connected()
        values = {v.tag: v.value for v in self.ib.accountValues() if v.currency in ("USD", "BASE", "")}
        account = next(iter(self.ib.managedAccounts()), "")

        def num(*tags: str) -> Decimal:
            return next((to_decimal(values[t]) for t in tags if t in values), Decimal(0))

        equity = num("NetLiquidation", "EquityWithLoanValue")
        return AccountInfo(id=account, currency="USD", cash=num("TotalCashValue"), buying_power=num("BuyingPower"),
                           equity=equity, portfolio_value=equity,
                           last_equity=num("PreviousDayEquityWithLoanValue", "NetLiquidation"), raw=values)

    async def get_positions(self) -> list[Position]:
        self._require_connected()
        out = []
        for item in self.ib.portfolio():
            qty = to_decimal(item.position)
            if qty == 0:
                continue
            avg, mark = to_decimal(item.averageCost), to_decimal(item.marketPrice)
            cost = abs(qty * avg)
            pnl = to_decimal(item.unrealizedPNL)
            out.append(Position(symbol=item.contract.symbol, qty=qty, avg_price=avg, market_price=mark,
                                market_value=to_decimal(item.marketValue), unrealized_pnl=pnl,
                                unrealized_pnl_pct=(pnl / cost).quantize(Decimal("0.000001")) if cost else Decimal(0),
                                raw=item))
        return sorted(out, key=lambda p: p.symbol)

    # -- orders -----------------------------------------------------------------------------

    async def _place_order(self, order: NeutralOrder) -> Order:
        coid = order.client_order_id
        if coid in self._placing:  # the same order is being sent right now: wait for it, never send twice
            await self._until(lambda: coid in self._by_ref or coid not in self._placing, "concurrent order")
        existing = self._by_ref.get(coid)  # indexed at connect (resync) and on every openOrder
        if existing is not None:  # already at the gateway (maybe from before a reconnect): never send twice
            return self._order(existing)
        if self.config.readonly:
            raise NotSupported("ib.readonly is on: orders are not sent", broker=self.name, field="readonly")
        self._placing.add(coid)
        try:
            return await self._send(order)
        finally:
            self._placing.discard(coid)

    async def _send(self, order: NeutralOrder) -> Order:
        contract = await self._contract(order.symbol)
        ib_order = self._sdk.Order(action=order.side.value, totalQuantity=float(order.qty),
                             orderType=ORDER_TYPES[order.order_type], tif=TIFS[order.tif],
                             orderRef=order.client_order_id, account=self.config.account or "")
        if order.limit_price is not None:
            ib_order.lmtPrice = float(order.limit_price)
        if order.stop_price is not None:
            ib_order.auxPrice = float(order.stop_price)
        trade = self.ib.placeOrder(contract, ib_order)
        self._by_ref[order.client_order_id] = trade
        order_id = trade.order.orderId
        self._errors.pop(order_id, None)  # an id reused after a reconnect must not inherit old errors
        await self._until(lambda: trade.orderStatus.status not in ("PendingSubmit", "ApiPending")
                          or self._order_error(order_id) is not None, "order acknowledgement")
        error = self._order_error(order_id)
        if error is not None and trade.orderStatus.status in ("PendingSubmit", "ApiPending", "Cancelled", "Inactive"):
            raise error
        return self._order(trade)

    async def cancel_order(self, order_id: str) -> Order:
        self._require_connected()  # a cancel sent into a dead socket is silently dropped by the SDK
        trade = self._trade(order_id)
        if trade is None:
            raise OrderNotFound(f"no IB order {order_id!r}", broker=self.name, code=10147)
        if trade.isDone():
            return self._order(trade)
        self.ib.cancelOrder(trade.order)
        await self._until(lambda: trade.isDone(), "cancel confirmation")
        return self._order(trade)

    async def get_order(self, order_id: str) -> Order:
        trade = self._trade(order_id)
        if trade is None:
            raise OrderNotFound(f"no IB order {order_id!r}", broker=self.name, code="not_found")
        return self._order(trade)

    async def get_orders_history(self, limit: int | None = 100, since: datetime | None = None) -> list[Order]:
        self._require_connected()
        orders = sorted((self._order(t) for t in self.ib.trades()), key=lambda o: o.created_at, reverse=True)
        if since is not None:
            orders = [o for o in orders if o.created_at >= since]
        return orders[:limit] if limit else orders

    async def get_fills(self, since: datetime | None = None) -> list[FillEvent]:
        self._require_connected()
        fills = sorted((self._fill(f) for f in self.ib.fills()), key=lambda f: f.ts)
        return [f for f in fills if since is None or f.ts >= since]

    def stream_fills(self) -> AsyncIterator[FillEvent]:
        return self._fills.stream()

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        if self._fills.has_consumers:  # the commission is known now: one event per execution
            self._fills.publish(self._fill(fill))

    def _trade(self, key: str) -> Any:
        """A trade by client order id (orderRef, indexed), IB order id or permId."""
        if self.ib is None:
            return None
        trade = self._by_ref.get(key)
        if trade is not None:
            return trade
        return next((t for t in self.ib.trades() if t.order.orderRef == key or str(t.order.orderId) == key
                     or (t.order.permId and str(t.order.permId) == key)), None)

    def _order_error(self, order_id: int) -> WorkbenchError | None:
        for code, message in self._errors.get(order_id, []):
            if code in _ORDER_ERRORS:
                return error_from_ib(code, message, order_id)
        return None

    def _order(self, trade: Any) -> Order:
        o, st = trade.order, trade.orderStatus
        qty = to_decimal(o.totalQuantity)
        fills = trade.fills
        filled = max(to_decimal(st.filled), sum((to_decimal(f.execution.shares) for f in fills), Decimal(0)))
        avg = to_decimal(st.avgFillPrice) or (
            sum((to_decimal(f.execution.shares) * to_decimal(f.execution.price) for f in fills), Decimal(0)) / filled
            if filled else Decimal(0))
        times = [e.time for e in trade.log] or [datetime.now(UTC)]
        # model_construct: every field below is already typed and normalised (this runs per order event)
        return Order.model_construct(broker=self.name, order_id=str(o.orderId),
                     client_order_id=o.orderRef or str(o.orderId),
                     symbol=trade.contract.symbol, side=Side(o.action), qty=qty, order_type=_IB_TYPES[o.orderType],
                     tif=_IB_TIFS.get(o.tif, TimeInForce.DAY),
                     limit_price=to_decimal(o.lmtPrice) if o.orderType in ("LMT", "STP LMT") else None,
                     stop_price=to_decimal(o.auxPrice) if o.orderType in ("STP", "STP LMT") else None,
                     status=order_status(st.status, filled, qty), raw_status=st.status, filled_qty=filled,
                     avg_fill_price=avg.quantize(Decimal("0.000001")) if filled else None,
                     created_at=_utc(times[0]), updated_at=_utc(times[-1]), raw=trade)

    def _fill(self, fill: Any) -> FillEvent:
        ex = fill.execution
        report = fill.commissionReport
        commission = to_decimal(report.commission) if report is not None else Decimal(0)
        return FillEvent(broker=self.name, local_id=ex.orderRef or str(ex.orderId), broker_id=str(ex.orderId),
                         exec_id=ex.execId, symbol=fill.contract.symbol, side=Side(ex.side),
                         qty=to_decimal(ex.shares), price=to_decimal(ex.price), commission=commission,
                         ts=_utc(fill.time), raw=fill)

    async def _until(self, predicate: Callable[[], object], what: str, timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds, re-checking whenever IB reports an order event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.config.connect_timeout)
        while True:
            self._changed.clear()
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RequestTimeout(f"IB: no {what} in time", broker=self.name, code="timeout")
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass  # re-check anyway (e.g. a state change that fired no event)

    # -- market data ------------------------------------------------------------------------

    async def get_quote(self, symbol: str) -> Quote:
        contract = await self._contract(symbol)
        tickers = await self.ib.reqTickersAsync(contract)
        ticker = tickers[0] if tickers else None
        last = _price(ticker, "last") or _price(ticker, "close") if ticker is not None else None
        if last is None:  # no subscription: ask for delayed data for this snapshot
            self.ib.reqMarketDataType(3)
            try:
                tickers = await self.ib.reqTickersAsync(contract)
            finally:
                self.ib.reqMarketDataType(1)  # the setting is per session: do not leave everything delayed
            ticker = tickers[0] if tickers else None
            last = (_price(ticker, "last") or _price(ticker, "close")) if ticker is not None else None
        if last is None:
            raise SymbolNotFound(f"IB gave no price for {symbol}", broker=self.name, code="no_price")
        return Quote(symbol=contract.symbol, last=last, bid=_price(ticker, "bid"), ask=_price(ticker, "ask"),
                     ts=datetime.now(UTC), source=self.name)

    async def get_history(self, symbol: str, days: int | None = None, start: datetime | str | None = None,
                          end: datetime | str | None = None, interval: str = "1d") -> pd.DataFrame:
        iv = parse_interval(interval)
        size = bar_size(iv)
        contract = await self._contract(symbol)
        t0, t1 = resolve_range(start, end, days, datetime.now(UTC), iv.intraday)
        attrs = {"broker": self.name, "source": self.name, "symbol": contract.symbol, "interval": iv.name,
                 "adjusted": False}
        rows: list[Any] = []
        for chunk in history_chunks(t0, t1, iv):
            request = (contract.conId, chunk.end_text(), chunk.duration, size)
            wait = self._pacer.delay(contract.conId, request)
            if wait > 0:
                log.info("IB pacing: waiting %.1f s before a history request", wait)
                await asyncio.sleep(wait)
            self._pacer.record(contract.conId, request)
            bars = await self.ib.reqHistoricalDataAsync(contract, endDateTime=chunk.end_text(),
                                                        durationStr=chunk.duration, barSizeSetting=size,
                                                        whatToShow="TRADES", useRTH=True, formatDate=2)
            rows.extend(bars or [])
        frame = bars_frame(rows, **attrs)
        return frame[(frame.index >= t0.normalize() if not iv.intraday else frame.index >= t0) & (frame.index < t1)]

    async def subscribe_market_data(self, symbols: Iterable[str], callback: Callable[[Quote], Any]) -> Subscription:
        wanted = tuple(s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols))
        for sym in wanted:
            await self._contract(sym)
        key = max(self._subs, default=0) + 1
        self._subs[key] = (wanted, callback)
        handlers = await self._stream(wanted, callback)
        loop = asyncio.get_running_loop()

        def cancel() -> None:  # may be called from any thread: the work runs on the adapter's loop
            def drop() -> None:
                self._subs.pop(key, None)
                for sym, handler in handlers:
                    self._unstream(sym, handler)

            loop.call_soon_threadsafe(drop)

        return Subscription(wanted, cancel)

    async def _stream(self, symbols: tuple[str, ...], callback: Callable[[Quote], Any]) -> list[tuple[str, Any]]:
        """Attach ``callback`` to one shared streaming ticker per symbol (reference-counted)."""
        handlers = []
        for sym in symbols:
            contract = await self._contract(sym)
            entry = self._tickers.get(sym)
            if entry is None or not self.is_connected() or entry[0] not in self.ib.tickers():
                entry = self._tickers[sym] = [self.ib.reqMktData(contract, "", False, False), 0]
            ticker = entry[0]
            entry[1] += 1

            def on_update(t: Any, sym: str = sym) -> None:
                last = _price(t, "last") or _price(t, "close")
                if last is not None:
                    try:
                        callback(Quote(symbol=sym, last=last, bid=_price(t, "bid"), ask=_price(t, "ask"),
                                       ts=datetime.now(UTC), source=self.name))
                    except Exception:
                        log.exception("market-data subscriber for %s failed", sym)

            ticker.updateEvent += on_update
            handlers.append((sym, on_update))
        return handlers

    def _unstream(self, sym: str, handler: Any) -> None:
        entry = self._tickers.get(sym)
        if entry is None:
            return
        entry[0].updateEvent -= handler
        entry[1] -= 1
        if entry[1] <= 0:
            del self._tickers[sym]
            if self.is_connected():
                self.ib.cancelMktData(entry[0].contract)

    async def get_clock(self) -> MarketClock:
        from workbench.core.calendar import get_calendar

        calendar = await asyncio.to_thread(get_calendar, "XNYS")
        return calendar.clock(datetime.now(UTC))


def _price(ticker: Any, field: str) -> Decimal | None:
    value = getattr(ticker, field, None)
    if value is None or (isinstance(value, float) and (math.isnan(value) or value <= 0)):
        return None
    return Decimal(repr(float(value)))


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.now(UTC)


def bars_frame(rows: list[Any], **attrs: Any) -> pd.DataFrame:
    """ib_async BarData list -> history frame, column-wise (no per-bar Timestamp objects).

    Sample bar (formatDate=2): BarData(date=datetime(2026, 11, 20, 14, 30, tzinfo=UTC), open=187.1,
    high=187.4, low=186.9, close=187.2, volume=12000.0, average=187.15, barCount=210). Daily bars carry a
    ``date`` instead, labelled 00:00 UTC.
    """
    if not rows:
        return empty_history(**attrs)
    if isinstance(rows[0].date, datetime):  # intraday: aware datetimes, converted in one go
        stamps: Any = pd.to_datetime([b.date for b in rows], utc=True)
    else:
        stamps = pd.DatetimeIndex([b.date for b in rows]).tz_localize("UTC")
    cols = {k: np.fromiter((getattr(b, k) for b in rows), dtype="float64", count=len(rows))
            for k in ("open", "high", "low", "close", "volume")}
    return history_frame(stamps, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], **attrs)
