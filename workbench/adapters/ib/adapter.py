"""``ib``: Interactive Brokers through ib_async (or ib_insync where only that is installed).

The adapter lives on workbench's event loop and uses the SDK's async API, so no nested-loop patch is
needed in Jupyter. The client_order_id travels in ``orderRef``: an order already known to the gateway
(also after a reconnect, which re-syncs open and completed orders) is returned, never sent twice.

Lifecycle: ``connect()`` (one attempt, errors raised) -> connected; a lost connection starts one watchdog
that reconnects with backoff (state ``reconnecting``), re-syncs, restores subscriptions and delivers what
happened meanwhile exactly once; ``disconnect()`` stops all of it, in any state. Final errors (a refused account;
error 326 "client id in use" once ``ib.client_id_retry`` has passed) stop the watchdog instead of retrying forever.
The attempt and the watchdog are in :mod:`.connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workbench.adapters.base import AdapterBase, Capabilities, Subscription
from workbench.core.enums import Feature
from workbench.core.errors import (
    BrokerUnavailable,
    NotSupported,
    OrderNotFound,
    OrderRejected,
    RequestTimeout,
    SymbolNotFound,
    WorkbenchError,
)
from workbench.core.intervals import parse_interval
from workbench.core.log import get_logger
from workbench.core.models import AccountInfo, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote
from workbench.core.settings import Settings
from workbench.marketdata.base import resolve_range

from .config import IBConfig
from .connection import Connection
from .convert import (bars_frame, order_key, perm_id, progress, to_account, to_fill, to_order, to_position,
                      utc)
from .events import Journal
from .parse import (GATEWAY_OFFLINE, ORDER_TYPES, RESTORED_CODES, TIFS, announces_simulated, bar_size,
                    error_from_ib, history_chunks, history_refused, no_history, order_fields, order_notice)
from .sdk import load_sdk
from .streams import DENIED_CODES, QuoteStreams

__all__ = ["IBAdapter", "bars_frame"]

log = get_logger(__name__)

#: Errors that refuse a new order outright (also 321, which ib_async calls a warning: read-only API). Any other
#: error about it counts as a refusal only if the gateway does not acknowledge the order within a second.
_REFUSALS = frozenset({103, 104, 110, 200, 201, 321, 434, 460})
_PENDING = ("PendingSubmit", "ApiPending")
_DATA_NOTICES = DENIED_CODES | {10167}  # 10167: "displaying delayed market data"


class IBAdapter(Connection, AdapterBase):
    """Interactive Brokers via TWS / IB Gateway (or workbench's TWS emulator)."""

    name = "ib"
    capabilities = Capabilities(
        order_types=frozenset(ORDER_TYPES), tifs=frozenset(TIFS),
        features=frozenset({Feature.STREAM_FILLS, Feature.STREAM_ORDERS, Feature.MARKET_DATA_STREAM, Feature.HISTORY,
                            Feature.SHORTING, Feature.PARTIAL_FILLS, Feature.MARKET_CALENDAR}),
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = settings.section_model("ib", IBConfig)
        self.ib: Any = None
        self._sdk: Any = None
        self._state = "disconnected"  # disconnected | connecting | connected | reconnecting
        self._closing = False  # disconnect() was called: no reconnects
        self._lock = asyncio.Lock()  # one connection attempt at a time
        self._reconnect: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop this adapter lives on (set by connect)
        self._tasks: set[asyncio.Task[Any]] = set()  # short background work (a resubscription), stopped on disconnect
        self._epoch = 0  # bumped whenever a connection ends: waits from before it fail fast
        self._synced_once = False  # the first resync only seeds what counts as already delivered
        self.client_id = self.config.client_id  # in use (differs after an ib.client_id_fallback)
        self.account = self.config.account or ""  # in use (default: the first managed account)
        self.last_error: WorkbenchError | None = None  # why the watchdog stopped, if it did
        #: True when the gateway is workbench's TWS emulator over simulated prices (it says so at connect):
        #: every quote and bar of the session is then labelled simulated.
        self.simulated = False
        self._contracts: dict[str, Any] = {}
        self._journal = Journal()  # what on_fill / on_order got, once each, across reconnects
        self._errors: dict[int, list[tuple[int, str]]] = {}
        self._data_errors: dict[int, tuple[int, str]] = {}  # conId -> market-data refusal (354...)
        self._history_errors: dict[int, tuple[int, str]] = {}  # conId -> an error about its history request
        self._streams = QuoteStreams(self)
        self._changed = asyncio.Event()  # replaced on every poke: each waiter holds its own generation
        self._by_ref: dict[str, Any] = {}  # orderRef (our client_order_id) -> Trade
        self._placing: set[str] = set()  # client order ids being sent now
        self._refused: dict[str, datetime] = {}  # client order id the gateway refused on placement -> when
        self._sent_at: dict[str, datetime] = {}  # order key -> when we sent it
        self._first_seen: dict[str, datetime] = {}  # order key -> when this adapter first saw it (not sent by us)
        self._fills_live = self._fills_in_portfolio = 0  # live fills so far / as of the last portfolio update

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """One attempt, its error raised. Called while reconnecting, it replaces the watchdog's next try (and
        the watchdog carries on if this attempt fails for a retryable reason)."""
        if self.is_connected():
            return
        self._loop = asyncio.get_running_loop()
        reconnecting = self._reconnect is not None and not self._reconnect.done()
        await self._stop_watchdog()
        self._closing = False
        self._state = "connecting"
        try:
            await self._attempt()
        except WorkbenchError as exc:
            self._state = "disconnected"
            if reconnecting and exc.retryable and not self._closing:
                self._start_watchdog()
            raise

    async def disconnect(self) -> None:
        """Stop everything: the watchdog (also mid-reconnect), subscriptions, waits, then the socket."""
        self._closing = True
        await self._stop_watchdog()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._streams.close()
        if self.ib is not None:
            if self.ib.isConnected():
                self.ib.disconnect()
            else:
                self.ib.client.disconnect()  # a handshake in progress leaves a socket open
        self._state = "disconnected"
        self._lost()

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
        if self.lifecycle == "closed":
            return "closed"
        if self._state == "connected" and not self.is_connected():
            return "disconnected" if self._closing else "reconnecting"  # lost; the watchdog starts now
        return self._state

    def _require_connected(self) -> None:
        if self.is_connected():
            return
        self._refuse_if_closed()  # BrokerClosed after close()
        state = self.state
        if state == "reconnecting":
            message = "IB connection lost; reconnecting (retry once broker.state == 'connected')"
        elif self.last_error is not None and not self._closing:
            message = f"IB is disconnected: reconnecting stopped ({self.last_error.message})"
        else:
            message = "ib is not connected; call connect() first"
        raise BrokerUnavailable(message, broker=self.name, code=state)

    def _wire(self) -> Any:
        if self.ib is None:
            self._sdk = load_sdk(self.config.sdk)
            ib = self.ib = self._sdk.IB()
            ib.errorEvent += self._on_error
            ib.commissionReportEvent += self._on_commission
            ib.disconnectedEvent += self._on_disconnected
            ib.orderStatusEvent += self._on_order_event
            ib.execDetailsEvent += self._on_exec
            ib.openOrderEvent += self._on_open_order
            ib.updatePortfolioEvent += self._on_portfolio
        return self.ib

    def _index(self, trade: Any) -> None:
        if trade.order.orderRef and not self._hidden(trade):
            self._by_ref[trade.order.orderRef] = trade

    def _hidden(self, trade: Any) -> bool:
        """A refused placement (this or a resync's copy of it): raised to its sender, never recorded."""
        return trade.order.orderRef in self._refused and trade.isDone() and not trade.fills

    def _sdk_call(self, call: Callable[[], Any], what: str, coid: str | None = None) -> Any:
        """Run a synchronous SDK request; a dead socket becomes BrokerUnavailable, not a raw ConnectionError."""
        try:
            return call()
        except OSError as exc:  # ConnectionError("Not connected") from a dead socket
            raise self._gone(what, coid) from exc

    def _gone(self, what: str, coid: str | None = None) -> BrokerUnavailable:
        if coid is not None:
            return BrokerUnavailable(
                f"IB connection lost during {what} of order {coid!r}; it may or may not have reached the gateway. "
                f"Resubmit the same client_order_id once broker.state == 'connected': it is matched by orderRef "
                f"and never sent twice", broker=self.name, code="connection_lost", raw=coid)
        return BrokerUnavailable(f"IB connection lost during {what}", broker=self.name, code="connection_lost")

    # -- events -------------------------------------------------------------------------------

    def _poke(self, *_: Any) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _on_open_order(self, trade: Any) -> None:
        self._index(trade)
        self._poke()

    def _on_exec(self, trade: Any, fill: Any) -> None:
        if fill.execution.acctNumber in ("", self.account):
            self._fills_live += 1  # the portfolio lags each fill a little
        self._on_order_event(trade)

    def _on_portfolio(self, *_: Any) -> None:
        self._fills_in_portfolio = self._fills_live
        self._poke()

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None, *_: Any) -> None:
        if announces_simulated(req_id, message):
            self.simulated = True
            return
        if req_id > 0:  # request/order errors only; -1 notices are logged, not kept
            self._errors.setdefault(req_id, []).append((code, message))
        con_id = getattr(contract, "conId", 0) if contract is not None else 0
        if code in _DATA_NOTICES and con_id:
            self._data_errors[con_id] = (code, message)
        if con_id and req_id > 0 and not order_notice(code):
            self._history_errors[con_id] = (code, message)
        self._poke()
        if code in GATEWAY_OFFLINE:
            log.warning("IB %s: %s. The gateway is cut off from IB: orders are not sent on and market data stops "
                        "until it reconnects", code, message)
        elif code in RESTORED_CODES:
            log.warning("IB %s: %s", code, message)
            if code == 1101 and self._state == "connected":  # data lost: market data must be requested again
                self._spawn(self._resubscribe(), "workbench-ib-resubscribe")
        elif req_id <= 0 and not order_notice(code) and code != 326:  # a system message nobody else reports
            log.warning("IB %s: %s", code, message)
        elif error_from_ib(code, message, req_id) is not None:
            log.info("IB error %s on request %s: %s", code, req_id, message)

    async def _resubscribe(self) -> None:
        """After 1101 ("restored - data lost"): account updates and quote streams requested again."""
        try:
            await asyncio.wait_for(self.ib.reqAccountUpdatesAsync(self.account), self.config.connect_timeout)
        except (asyncio.TimeoutError, OSError) as exc:
            log.warning("IB: account updates could not be requested again after 1101: %r", exc)
        await self._streams.restore(resubscribe=True)

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        """A fill is complete (commission known) here. During a resync the sweep delivers instead."""
        if self._state == "connected":
            self._journal.fill(fill)

    def _on_order_event(self, trade: Any) -> None:
        self._poke()
        if self._state == "connected":
            self._publish_order(trade)

    def _publish_order(self, trade: Any, publish: bool = True) -> None:
        if trade.order.orderRef in self._placing or self._hidden(trade):
            return  # published once acknowledged; a refused order is only raised to its sender (as paper)
        self._journal.order(trade, self._order, publish)

    # -- contracts --------------------------------------------------------------------------

    async def _contract(self, symbol: str) -> Any:
        sym = symbol.strip().upper()
        contract = self._contracts.get(sym)
        if contract is None:
            self._require_connected()
            try:
                result = await self.ib.qualifyContractsAsync(self._sdk.Stock(sym, "SMART", "USD"))
            except ConnectionError as exc:
                raise self._gone(f"the contract lookup of {sym}") from exc
            if not result or result[0] is None or not getattr(result[0], "conId", 0):
                raise SymbolNotFound(f"IB has no stock {sym!r}", broker=self.name, code=200, field="symbol")
            contract = self._contracts[sym] = result[0]
        return contract

    # -- account ----------------------------------------------------------------------------

    async def get_account(self) -> AccountInfo:
        """Balances of ``ib.account`` (default: the first managed account); values of other accounts ignored."""
        self._require_connected()
        return to_account(self.account, self.ib.accountValues(self.account))

    async def get_positions(self) -> list[Position]:
        """Positions of ``ib.account``, including every fill already reported (IB's portfolio update follows
        the execution report by a moment: wait for it, at most a second)."""
        self._require_connected()
        if self._fills_in_portfolio < self._fills_live:
            try:
                await self._until(lambda: self._fills_in_portfolio >= self._fills_live, "portfolio update", 1.0)
            except RequestTimeout:
                self._fills_in_portfolio = self._fills_live  # e.g. a fill IB will not report here: do not wait again
        positions = (to_position(item) for item in self.ib.portfolio(self.account))
        return sorted((p for p in positions if p is not None), key=lambda p: p.symbol)

    # -- orders -----------------------------------------------------------------------------

    async def _place_order(self, order: NeutralOrder) -> Order:
        coid = order.client_order_id
        if coid in self._placing:  # the same order is being sent right now: wait for its answer, never send twice
            await self._until(lambda: coid not in self._placing, "concurrent order")  # (acknowledged or refused)
        existing = self._by_ref.get(coid)  # indexed at connect (resync) and on every openOrder
        if existing is not None and not self._hidden(existing):
            return self._order(existing)  # already at the gateway (maybe from before a reconnect): never twice
        if self.config.readonly:
            raise NotSupported("ib.readonly is on: orders are not sent", broker=self.name, field="readonly")
        self._placing.add(coid)
        try:
            trade = await self._send(order)
        finally:
            self._placing.discard(coid)
        self._publish_order(trade)
        return self._order(trade)

    async def _send(self, order: NeutralOrder) -> Any:
        """Send and wait for the gateway's acknowledgement; returns the Trade (raises a refusal)."""
        coid = order.client_order_id
        contract = await self._contract(order.symbol)
        ib_order = self._sdk.Order(**order_fields(order), orderRef=coid, account=self.account)
        epoch = self._epoch
        trade = self._sdk_call(lambda: self.ib.placeOrder(contract, ib_order), "the placement", coid)
        self._by_ref[coid] = trade
        self._sent_at[coid] = datetime.now(UTC)
        order_id = trade.order.orderId
        self._errors.pop(order_id, None)  # an id reused after a reconnect must not inherit old errors
        # Acknowledged = the gateway's orderStatus for it (which carries the permId, our order_id). A warning
        # that comes first (399 outside regular hours, 10349 ...) changes ib_async's status but is no answer.
        acked = lambda: bool(trade.orderStatus.permId)  # noqa: E731
        await self._until(lambda: acked() or self._refusal(order_id) is not None, "order acknowledgement",
                          epoch=epoch, coid=coid)
        error = self._refusal(order_id)
        if error is not None and not acked() and error.code not in _REFUSALS:  # a code we do not know as a
            with contextlib.suppress(RequestTimeout):  # refusal: the gateway's status tells (a live order is
                await self._until(acked, "order acknowledgement", timeout=1.0, epoch=epoch, coid=coid)  # no refusal)
        if error is None and trade.orderStatus.status == "Inactive":  # refused; its reason may follow
            with contextlib.suppress(RequestTimeout):
                await self._until(lambda: self._refusal(order_id) is not None, "refusal reason", timeout=1.0)
            error = self._refusal(order_id) or OrderRejected(f"IB refused order {coid!r} (status Inactive)",
                                                             broker=self.name, code="Inactive")
        if error is not None and trade.orderStatus.status in (*_PENDING, "ValidationError", "Cancelled",
                                                               "ApiCancelled", "Inactive"):
            self._refused[coid] = datetime.now(UTC)  # refused on placement: raised now and on a resubmit (as paper)
            if self._by_ref.get(coid) is trade:
                del self._by_ref[coid]
            self._sent_at.pop(coid, None)
            raise error
        self._refused.pop(coid, None)  # accepted this time
        return trade

    async def cancel_order(self, order_id: str) -> Order:
        self._require_connected()  # a cancel sent into a dead socket is silently dropped by the SDK
        trade = self._trade(order_id)
        if trade is None:
            raise OrderNotFound(f"no IB order {order_id!r}", broker=self.name, code=10147)
        if trade.isDone():
            return self._order(trade)
        owner = trade.order.clientId
        if owner != self.client_id:  # IB applies cancelOrder(orderId) to the sender's own orders only
            who = "TWS or client 0" if owner == 0 else f"client {owner}"
            raise NotSupported(f"IB order {order_id} was placed by {who}; IB lets only that client cancel it "
                               f"(this Broker is client {self.client_id})", broker=self.name, code="other_client",
                               field="order_id")
        epoch, ib_id = self._epoch, trade.order.orderId
        seen = len(self._errors.get(ib_id, []))  # earlier messages (a placement warning) are not the answer
        self._sdk_call(lambda: self.ib.cancelOrder(trade.order), f"the cancel of {order_id}")
        await self._until(lambda: trade.isDone() or self._refusal(ib_id, seen) is not None, "cancel confirmation",
                          epoch=epoch)
        refusal = self._refusal(ib_id, seen)  # 10147 not found, 10148 / 161 not cancellable now
        if refusal is not None and not progress(trade)[0].is_terminal:  # (ib_async calls it Cancelled anyway)
            raise refusal
        return self._order(trade)

    async def get_order(self, order_id: str) -> Order:
        self._require_connected()  # while reconnecting the SDK's view is stale: say so instead
        trade = self._trade(order_id)
        if trade is None:
            raise OrderNotFound(f"no IB order {order_id!r}", broker=self.name, code="not_found")
        return self._order(trade)

    async def get_orders_history(self, limit: int | None = 100, since: datetime | None = None) -> list[Order]:
        self._require_connected()
        orders = sorted((self._order(t) for t in self._recorded()), key=lambda o: o.created_at, reverse=True)
        if since is not None:
            orders = [o for o in orders if o.created_at >= since]
        return orders[:limit] if limit else orders

    async def get_fills(self, since: datetime | None = None) -> list[FillEvent]:
        self._require_connected()
        fills = sorted((to_fill(f) for f in self.ib.fills()), key=lambda f: f.ts)
        return [f for f in fills if since is None or f.ts >= since]

    def stream_fills(self) -> AsyncIterator[FillEvent]:
        """Each execution once (keyed by exec id), also across reconnects; fills made while the gateway was
        unreachable arrive after the resync."""
        self._require_open()
        return self._journal.fills.stream()

    def stream_orders(self) -> AsyncIterator[Order]:
        """An Order snapshot on every status or filled-quantity change (forward only, each change once, also
        across reconnects)."""
        self._require_open()
        return self._journal.orders.stream()

    def _require_open(self) -> None:
        if self._closing or self.ib is None:
            self._require_connected()

    def _recorded(self) -> list[Any]:
        return [t for t in self.ib.trades() if not self._hidden(t)]

    def _trade(self, key: str) -> Any:
        """A trade by client order id (orderRef, indexed), permId (our order_id), else by IB's orderId among
        this client's orders (orderIds are per client, and 0 for finished orders of earlier sessions)."""
        trade = self._by_ref.get(key)
        if trade is not None:
            return trade
        recorded = self._recorded()
        return (next((t for t in recorded if t.order.orderRef == key or perm_id(t) == key), None)
                or next((t for t in recorded if t.order.orderId and str(t.order.orderId) == key
                         and t.order.clientId == self.client_id), None))

    def _refusal(self, order_id: int, skip: int = 0) -> WorkbenchError | None:
        """The typed error of the first message (after the first ``skip``) refusing a request about order
        ``order_id``; notices and warnings that leave the order working (399, 10349...) are not refusals."""
        for code, message in self._errors.get(order_id, [])[skip:]:
            if code in _REFUSALS or not order_notice(code):
                return error_from_ib(code, message, order_id)
        return None

    def _order(self, trade: Any) -> Order:
        return to_order(trade, *self._times(trade))

    def _times(self, trade: Any) -> tuple[datetime, datetime]:
        """created_at / updated_at. IB sends no placement time (and ib_async drops completedTime), so an order
        is created when we sent it, else at its first execution (the gateway's time), else when this Broker
        first saw it; all are kept across reconnects (a resync does not make old orders new)."""
        fills = [utc(f.execution.time) for f in trade.fills]
        key = order_key(trade) or ""
        created = self._sent_at.get(key)
        if created is None:
            first = self._first_seen.get(key)
            if first is None:
                first = min(fills, default=datetime.now(UTC))
                if key:
                    self._first_seen[key] = first
            created = min([first, *fills])
        logged = [utc(e.time) for e in trade.log if e.time.year > 1]
        return created, max([created, *fills, *logged])

    async def _until(self, predicate: Callable[[], object], what: str, timeout: float | None = None,
                     epoch: int | None = None, coid: str | None = None) -> None:
        """Wait until ``predicate()`` holds, re-checking whenever IB reports something. With ``epoch``, a lost
        connection fails the wait at once (BrokerUnavailable, naming ``coid``) instead of timing out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.config.connect_timeout)
        while True:
            changed = self._changed
            if predicate():
                return
            if epoch is not None and epoch != self._epoch:
                raise self._gone(f"the wait for the {what}", coid)
            remaining = deadline - loop.time()
            if remaining <= 0:
                hint = "" if coid is None else (f" for order {coid!r}; it may have reached the gateway: resubmit the "
                                                 "same client_order_id (matched by orderRef, never sent twice)")
                raise RequestTimeout(f"IB: no {what} in time{hint}", broker=self.name, code="timeout", raw=coid)
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass  # re-check anyway (e.g. a state change that fired no event)

    # -- market data ------------------------------------------------------------------------

    async def get_quote(self, symbol: str) -> Quote:
        return await self._streams.quote(await self._contract(symbol))

    async def get_history(self, symbol: str, days: int | None = None, start: datetime | str | None = None,
                          end: datetime | str | None = None, interval: str = "1d") -> pd.DataFrame:
        iv = parse_interval(interval)
        size = bar_size(iv)
        contract = await self._contract(symbol)
        t0, t1 = resolve_range(start, end, days, datetime.now(UTC), iv.intraday)
        attrs = {"broker": self.name, "source": self.name, "symbol": contract.symbol, "interval": iv.name,
                 "adjusted": False, "simulated": self.simulated}
        rows: list[Any] = []
        for chunk in history_chunks(t0, t1, iv):  # (IB paces only bars of 30 s or less: none of these)
            self._history_errors.pop(contract.conId, None)
            try:
                bars = await self.ib.reqHistoricalDataAsync(contract, endDateTime=chunk.end_text(),
                                                            durationStr=chunk.duration, barSizeSetting=size,
                                                            whatToShow="TRADES", useRTH=True, formatDate=2)
            except ConnectionError as exc:
                raise self._gone(f"the history request for {contract.symbol}") from exc
            refusal = self._history_errors.pop(contract.conId, None)
            if not bars and refusal is not None and not no_history(*refusal):
                raise history_refused(contract.symbol, *refusal)  # ib_async answers it with no bars
            rows.extend(bars or [])
        frame = bars_frame(rows, **attrs)
        return frame[(frame.index >= t0.normalize() if not iv.intraday else frame.index >= t0) & (frame.index < t1)]

    async def subscribe_market_data(self, symbols: Iterable[str], callback: Callable[[Quote], Any]) -> Subscription:
        wanted = tuple(s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols))
        self._require_connected()
        return await self._streams.subscribe(wanted, callback)

    async def get_clock(self) -> MarketClock:
        from workbench.core.calendar import get_calendar

        calendar = await asyncio.to_thread(get_calendar, "XNYS")
        return calendar.clock(datetime.now(UTC))
