"""``alpaca``: Alpaca through alpaca-py 0.44.0 (``TradingClient``, ``StockHistoricalDataClient``, ``TradingStream``).

- REST calls are blocking ``requests`` calls: each runs in a worker thread with an HTTP timeout
  (``alpaca.timeout``; alpaca-py sets none) and alpaca-py's own 429/504 retry loop bounded by
  ``alpaca.retries`` / ``alpaca.retry_wait``. Answers are plain JSON (``raw_data=True``) parsed by
  :mod:`.parse`, so money stays Decimal and an unknown enum never breaks a call.
- Orders are idempotent by client_order_id: Alpaca refuses a reused one, and the adapter then returns the
  existing order; after a timeout or a lost connection it looks the id up before sending again.
- Fills and order updates come from the trade_updates stream, run on workbench's loop. After every
  reconnect the adapter reconciles through REST (orders changed meanwhile, FILL activities), and each fill
  is delivered once whichever way it arrived (keyed by order id + cumulative quantity): :mod:`.reconcile`.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from workbench.adapters.base import AdapterBase, Capabilities, Subscription
from workbench.core.enums import Feature
from workbench.core.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    InvalidOrder,
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

from . import parse as p
from .config import AlpacaConfig, credentials
from .fanout import LoopFanout
from .reconcile import TradeUpdates

if TYPE_CHECKING:
    from pydantic import SecretStr

__all__ = ["AlpacaAdapter"]

log = get_logger(__name__)
T = TypeVar("T")

#: How long before its first fill an order may have been submitted and still be found in one listing.
ORDER_LOOKBACK = timedelta(days=30)
#: The finest step of Alpaca's timestamps as Python keeps them: turns an exclusive bound into an inclusive one.
_TICK = timedelta(microseconds=1)
_SAME_FIELDS = ("symbol", "side", "qty", "order_type", "tif", "limit_price", "stop_price", "trail_price",
                "trail_percent", "notional")


def _sdk() -> Any:
    try:
        import alpaca.data.historical as data
        import alpaca.data.requests as data_requests
        import alpaca.data.timeframe as timeframe
        import alpaca.trading.client as trading
        import alpaca.trading.requests as requests
        from alpaca.common.exceptions import APIError
    except ImportError as exc:
        raise ConfigError("the alpaca broker needs alpaca-py: pip install 'workbench[alpaca]'",
                          key="default_broker") from exc
    return type("AlpacaSDK", (), {"data": data, "data_requests": data_requests, "timeframe": timeframe,
                                  "trading": trading, "requests": requests, "APIError": APIError})


def _timeout_adapter(timeout: float) -> Any:
    """A requests transport adapter that applies ``timeout`` to every request that sets none."""
    from requests.adapters import HTTPAdapter

    class _TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    return _TimeoutAdapter()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class AlpacaAdapter(TradeUpdates, AdapterBase):
    """Alpaca (paper by default) or workbench's Alpaca emulator."""

    name = "alpaca"
    capabilities = Capabilities(
        order_types=frozenset(p.ORDER_TYPES), tifs=frozenset(p.TIFS),
        features=frozenset({Feature.STREAM_FILLS, Feature.STREAM_ORDERS, Feature.MARKET_DATA_STREAM, Feature.HISTORY,
                            Feature.SHORTING, Feature.FRACTIONAL, Feature.NOTIONAL, Feature.PARTIAL_FILLS,
                            Feature.MARKET_CALENDAR}),
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.config = settings.section_model("alpaca", AlpacaConfig)
        self.trading: Any = None
        self.data: Any = None
        self._sdk: Any = None
        self._stream: Any = None
        self._quote_feed: Any = None  # QuoteFeed, from the first streamed subscription
        self._stream_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fills = LoopFanout()  # published on the adapter's loop only (the stream's and REST's tasks)
        self._orders = LoopFanout()
        self._seen_fills: dict[str, set[str]] = {}  # order id -> fill keys delivered
        self._last_order: dict[str, Order] = {}  # order id -> the snapshot last published
        self._open_ids: set[str] = set()  # orders last seen working (reconciled after a reconnect)
        self._coids: dict[str, str] = {}  # order id -> client order id (FILL activities lack it)
        self._horizon: datetime | None = None  # the latest broker time seen in an event
        self._backlog: list[dict[str, Any]] | None = None  # stream messages held while reconciling
        self._reconcile_again = False
        self._open = False
        self.orders_page = 500  # orders per GET /v2/orders request: Alpaca's maximum
        self.account = ""  # the account number, from connect
        #: True when the endpoint is workbench's Alpaca emulator over simulated prices (its account says so):
        #: the Broker card then labels the session's data simulated, as each quote and bar already is.
        self.simulated = False

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._open:
            return
        self.config.check_endpoint()
        key, secret = credentials(self.settings)  # before anything is sent; SecretStr, masked in any traceback
        sdk = self._sdk = self._sdk or _sdk()
        self.trading = sdk.trading.TradingClient(key.get_secret_value(), secret.get_secret_value(), paper=True,
                                                 raw_data=True, url_override=self.config.base)
        self.data = sdk.data.StockHistoricalDataClient(key.get_secret_value(), secret.get_secret_value(),
                                                       raw_data=True, url_override=self.config.data)
        for client in (self.trading, self.data):
            client._retry, client._retry_wait = self.config.retries, self.config.retry_wait
            transport = _timeout_adapter(self.config.timeout)
            client._session.mount("https://", transport)
            client._session.mount("http://", transport)
        try:
            clock = await self._rest(self.trading.get_clock)  # checks the keys and the endpoint
            self._horizon = p.parse_clock(clock).ts
            account = await self._rest(self.trading.get_account)
            self.account = str(account.get("account_number") or "")
            self.simulated = account.get("wb_simulated") is True
            working = self._sdk.requests.GetOrdersRequest(status="open", limit=500)
            for order in map(p.parse_order, await self._rest(self.trading.get_orders, working)):
                self._coids[order.order_id] = order.client_order_id  # known, not news: a reconnect reports
                self._open_ids.add(order.order_id)                   # only what changes about them
                self._last_order[order.order_id] = order
            self._open = True
            await self._start_stream(key, secret)
        except BaseException:
            await self._shutdown()
            raise

    async def _start_stream(self, key: SecretStr, secret: SecretStr) -> None:
        from .stream import TradeUpdatesStream

        stream = self._stream = TradeUpdatesStream(key.get_secret_value(), secret.get_secret_value(),
                                                   self.config.stream_url, self._on_message,
                                                   self._on_stream_connected, self.config.reconnect_min,
                                                   self.config.reconnect_max)
        self._stream_task = asyncio.get_running_loop().create_task(stream._run_forever(), name="workbench-alpaca-stream")
        deadline = asyncio.get_running_loop().time() + self.config.timeout
        while not stream.connected:  # fills right after connect() must not be missed
            if stream.auth_failed:
                raise AuthError("Alpaca refused the key pair on the trade_updates stream", broker=self.name,
                                code="stream_auth")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self._stream_task.done():
                raise BrokerUnavailable(f"no trade_updates stream at {self.config.stream_url} within "
                                        f"{self.config.timeout} s", broker=self.name, code="stream")
            stream.changed.clear()
            try:
                await asyncio.wait_for(stream.changed.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass

    async def disconnect(self) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._open = False
        if self._quote_feed is not None:
            feed, self._quote_feed = self._quote_feed, None
            await feed.close()
        if self._stream is not None:
            await self._stream.stop_ws()  # its loop ends at the next turn even if a cancel is swallowed
        tasks = [t for t in (self._stream_task, *self._tasks) if t is not None]
        if tasks:  # then alpaca-py is there (a connect that failed for want of it started nothing)
            from .stream import stop_tasks

            await stop_tasks(tasks, "Alpaca adapter")
        self._tasks.clear()
        self._stream_task = None
        if self._stream is not None:
            try:
                await self._stream.close()
            except Exception as exc:  # the socket may already be gone
                log.debug("closing the trade stream: %s", exc)
            self._stream = None
        for client in (self.trading, self.data):
            if client is not None:
                client._session.close()
        self.trading = self.data = None

    def is_connected(self) -> bool:
        return self._open

    @property
    def state(self) -> str:
        if not self._open:
            return "closed" if self.closed else "disconnected"
        return "connected" if self._stream is not None and self._stream.connected else "reconnecting"

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- REST plumbing ----------------------------------------------------------------------

    async def _rest(self, fn: Callable[..., T], *args: Any, about: str = "") -> T:
        """Run one alpaca-py call in a worker thread; every failure becomes a typed error (raise ... from)."""
        try:
            return await asyncio.to_thread(functools.partial(fn, *args))
        except WorkbenchError:
            raise
        except Exception as exc:
            _drop_frames(exc)  # alpaca-py's and requests' frames hold the request headers, key pair included
            raise self._typed(exc, about) from exc

    def _typed(self, exc: Exception, about: str) -> WorkbenchError:
        """The typed error for a failed alpaca-py call (library exceptions never reach the user raw)."""
        import requests

        if isinstance(exc, self._sdk.APIError):
            return p.error_from_response(exc.status_code, str(exc), about, _retry_after(exc.response))
        if isinstance(exc, requests.exceptions.Timeout):
            return RequestTimeout(f"Alpaca did not answer within {self.config.timeout} s", broker=self.name,
                                  code="timeout", raw=type(exc).__name__)
        if isinstance(exc, requests.exceptions.InvalidJSONError):
            return BrokerError(f"Alpaca answered with a body that is not JSON: {exc}", broker=self.name,
                               code="parse", raw=str(exc))
        if isinstance(exc, requests.exceptions.RequestException):
            return BrokerUnavailable(f"cannot reach Alpaca at {self.config.base_url}: {type(exc).__name__}",
                                     broker=self.name, code="connection", raw=str(exc))
        if isinstance(exc, ValueError):  # the SDK refused an argument client-side, or a body had the wrong shape
            return BrokerError(f"alpaca-py refused the call: {exc}", broker=self.name, code="client", raw=str(exc))
        return BrokerError(f"alpaca-py failed: {type(exc).__name__}: {exc}", broker=self.name, code="client",
                           raw=str(exc))

    def _known(self, data: dict[str, Any]) -> Order:
        order = p.parse_order(data)
        self._coids[order.order_id] = order.client_order_id
        if order.is_open:
            self._open_ids.add(order.order_id)
        else:
            self._open_ids.discard(order.order_id)
        return order

    # -- account ----------------------------------------------------------------------------

    async def get_account(self) -> AccountInfo:
        self._require_connected()
        return p.parse_account(await self._rest(self.trading.get_account))

    async def get_positions(self) -> list[Position]:
        self._require_connected()
        rows = await self._rest(self.trading.get_all_positions)
        return sorted((p.parse_position(r) for r in rows), key=lambda pos: pos.symbol)

    async def get_position(self, symbol: str) -> Position | None:
        self._require_connected()
        try:
            return p.parse_position(await self._rest(self.trading.get_open_position, symbol.strip().upper(),
                                                     about="symbol"))
        except SymbolNotFound:  # 404 "position does not exist": flat
            return None

    # -- orders -----------------------------------------------------------------------------

    async def _place_order(self, order: NeutralOrder) -> Order:
        p.check_order(order)
        _, body = p.order_request(order)
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:  # TradingClient.submit_order's own request, without rebuilding the order as its request model
                return self._known(await self._rest(self.trading.post, "/orders", body, about="order"))
            except (InvalidOrder, OrderRejected) as exc:
                if not _duplicate(exc):
                    raise
                return self._same_order(await self._by_client_id(order.client_order_id), order)
            except BrokerUnavailable:  # timeout, lost connection or 5xx: did it arrive anyway?
                try:
                    return self._same_order(await self._by_client_id(order.client_order_id), order)
                except OrderNotFound:
                    if attempt + 1 == attempts:
                        raise
                    log.info("order %s did not reach Alpaca; sending it again", order.client_order_id)
        raise AssertionError("unreachable")

    def _same_order(self, existing: Order, order: NeutralOrder) -> Order:
        ours = {"symbol": order.symbol, "side": order.side, "qty": order.qty, "order_type": order.order_type,
                "tif": order.tif, "limit_price": order.limit_price, "stop_price": order.stop_price,
                "trail_price": order.trail_price, "trail_percent": order.trail_percent, "notional": order.notional}
        if order.notional is not None:  # Alpaca sizes a notional order itself
            ours["qty"] = existing.qty
        if order.order_type.needs_trail:  # Alpaca reports the trailing stop's moving trigger
            ours["stop_price"] = existing.stop_price
        diff = [f for f in _SAME_FIELDS if getattr(existing, f) != ours[f]]
        if diff:
            raise InvalidOrder(f"client_order_id {order.client_order_id!r} was already used for a different order "
                               f"(differs in {', '.join(diff)})", field="client_order_id", broker=self.name)
        return existing

    async def _by_client_id(self, client_order_id: str) -> Order:
        return self._known(await self._rest(self.trading.get_order_by_client_id, client_order_id, about="order"))

    async def _lookup(self, order_id: str) -> Order:
        if _is_uuid(order_id):
            try:
                return self._known(await self._rest(self.trading.get_order_by_id, order_id, about="order"))
            except OrderNotFound:
                pass  # a client order id may look like a UUID too
        return await self._by_client_id(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        self._require_connected()
        order = await self._lookup(order_id)
        if order.status.is_terminal:
            return order
        try:
            await self._rest(self.trading.cancel_order_by_id, order.order_id, about="order")
        except OrderRejected:  # 422: no longer cancelable (it finished meanwhile)
            pass
        return await self._lookup(order.order_id)

    async def get_order(self, order_id: str) -> Order:
        self._require_connected()
        return await self._lookup(order_id)

    async def get_orders_history(self, limit: int | None = 100, since: datetime | None = None) -> list[Order]:
        """Newest first; ``since`` is inclusive (Alpaca's ``after`` is not)."""
        self._require_connected()
        listed = await self._list_orders(since - _TICK if since is not None else None, limit)
        orders = sorted((o for o in listed.values() if since is None or _submitted(o) >= since),
                        key=lambda o: (o.created_at, o.order_id), reverse=True)
        return orders[:limit] if limit is not None else orders

    async def _list_orders(self, after: datetime | None, limit: int | None,
                           enough: Callable[[dict[str, Order]], bool] = lambda listed: False) -> dict[str, Order]:
        """Orders submitted after ``after`` (exclusive), newest first, until ``limit`` or ``enough``.

        Alpaca pages only by submission time (``until``, exclusive): each next page asks ``until`` one
        microsecond after the oldest order seen, so orders sharing that timestamp come again and are
        deduplicated instead of skipped.
        """
        out: dict[str, Order] = {}
        until: datetime | None = None
        while (limit is None or len(out) < limit) and not enough(out):
            page = self.orders_page if limit is None else min(self.orders_page, limit - len(out))
            request = self._sdk.requests.GetOrdersRequest(status="all", limit=page, after=after, until=until,
                                                          direction="desc", nested=False)
            rows = [self._known(r) for r in await self._rest(self.trading.get_orders, request)]
            fresh = [o for o in rows if o.order_id not in out]
            out.update((o.order_id, o) for o in fresh)
            if len(rows) < page:
                break
            if not fresh:  # a whole page at one timestamp: Alpaca offers no finer cursor
                log.warning("more than %d orders submitted at %s: the order list may miss some", page,
                            _submitted(rows[-1]))
                break
            until = min(_submitted(o) for o in rows) + _TICK
        return out

    async def get_fills(self, since: datetime | None = None) -> list[FillEvent]:
        self._require_connected()
        return sorted(await self._fill_activities(since), key=lambda f: (f.ts, f.exec_id))

    async def _fill_activities(self, after: datetime | None) -> list[FillEvent]:
        """Every FILL activity after ``after`` (inclusive; paginated), with client order ids filled in."""
        fills: list[FillEvent] = []  # activities carry no client order id: filled in below
        params: dict[str, Any] = {"direction": "asc", "page_size": 100}
        if after is not None:  # Alpaca's ``after`` is exclusive, ours inclusive
            params["after"] = (after - _TICK).astimezone(UTC).isoformat()
        while True:
            page = await self._rest(self.trading.get, "/account/activities/FILL", params) or []
            fills += [p.parse_fill_activity(r, "") for r in page]
            if len(page) < 100:
                break
            params["page_token"] = fills[-1].raw.get("id")  # the next page starts after this activity
            if not params["page_token"]:
                raise BrokerError("Alpaca sent a FILL activity without an id", broker=self.name, code="parse",
                                  raw=fills[-1].raw)
        await self._learn_client_ids({f.broker_id for f in fills} - set(self._coids),
                                     min((f.ts for f in fills), default=None))
        return [_with_client_id(f, self._coids.get(f.broker_id, f.broker_id)) for f in fills
                if after is None or f.ts >= after]

    async def _learn_client_ids(self, order_ids: set[str], first_fill: datetime | None) -> None:
        """Client order ids of orders this session has not seen: from the order list (a request per 500
        orders, back to a while before the first fill), then one by one for any older order."""
        if not order_ids or first_fill is None:
            return
        await self._list_orders(first_fill - ORDER_LOOKBACK, None, enough=lambda listed: order_ids <= set(listed))
        for order_id in order_ids - set(self._coids):
            try:
                await self._lookup(order_id)
            except OrderNotFound:
                self._coids[order_id] = order_id

    def stream_fills(self) -> AsyncIterator[FillEvent]:
        return self._fills.stream()

    def stream_orders(self) -> AsyncIterator[Order]:
        return self._orders.stream()

    # -- market data ------------------------------------------------------------------------

    def _md(self, name: str, **fields: Any) -> Any:
        return getattr(self._sdk.data_requests, name)(**fields, feed=self.config.feed)

    async def get_quote(self, symbol: str) -> Quote:
        self._require_connected()
        sym = symbol.strip().upper()
        return (await self._quotes([sym]))[sym]

    async def _quotes(self, symbols: list[str]) -> dict[str, Quote]:
        request = self._md("StockSnapshotRequest", symbol_or_symbols=symbols)
        snaps = await self._rest(self.data.get_stock_snapshot, request, about="symbol")
        out = {}
        for sym in symbols:
            snap = (snaps or {}).get(sym) or {}
            trade, quote = snap.get("latestTrade") or snap.get("latest_trade"), snap.get("latestQuote") or {}
            if not trade:
                raise SymbolNotFound(f"Alpaca has no trades for {sym!r} on the {self.config.feed} feed",
                                     broker=self.name, code="no_data")
            out[sym] = Quote(symbol=sym, last=p.to_decimal(trade["p"]), bid=p.to_decimal(quote.get("bp")) or None,
                             ask=p.to_decimal(quote.get("ap")) or None, ts=p.parse_time(trade["t"]), source=self.name,
                             simulated=bool(trade.get("wb_simulated", False)))
        return out

    async def get_market_price(self, symbol: str) -> Decimal:
        self._require_connected()
        sym = symbol.strip().upper()
        trades = await self._rest(self.data.get_stock_latest_trade,
                                  self._md("StockLatestTradeRequest", symbol_or_symbols=sym), about="symbol")
        trade = (trades or {}).get(sym)
        if not trade:
            raise SymbolNotFound(f"Alpaca has no trades for {sym!r} on the {self.config.feed} feed", broker=self.name,
                                 code="no_data")
        return p.to_decimal(trade["p"])

    async def get_history(self, symbol: str, days: int | None = None, start: datetime | str | None = None,
                          end: datetime | str | None = None, interval: str = "1d") -> pd.DataFrame:
        self._require_connected()
        iv = parse_interval(interval)
        amount, unit = p.timeframe(iv)
        sym = symbol.strip().upper()
        t0, t1 = resolve_range(start, end, days, datetime.now(UTC), iv.intraday)
        if not iv.intraday:
            t0 = t0.normalize()
        tf = self._sdk.timeframe.TimeFrame(amount, self._sdk.timeframe.TimeFrameUnit(unit))
        request = self._md("StockBarsRequest", symbol_or_symbols=sym, timeframe=tf, start=t0.to_pydatetime(),
                           end=t1.to_pydatetime(), adjustment=self.config.adjustment)
        bars = (await self._rest(self.data.get_stock_bars, request, about="symbol") or {}).get(sym, [])
        attrs = {"broker": self.name, "source": self.name, "symbol": sym, "interval": iv.name,
                 "adjusted": self.config.adjustment != "raw", "adjustment": self.config.adjustment,
                 "feed": self.config.feed, "simulated": bool(bars and bars[0].get("wb_simulated", False))}
        frame = p.bars_frame(bars, iv.intraday, **attrs)
        return frame[(frame.index >= t0) & (frame.index < t1)]

    async def subscribe_market_data(self, symbols: Iterable[str], callback: Callable[[Quote], Any]) -> Subscription:
        """The snapshot first, then every change: streamed (``alpaca.quotes: stream``) or polled."""
        self._require_connected()
        wanted = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols)]
        first = await self._quotes(wanted)  # unknown symbols fail now, not in the background
        if self.config.quotes == "stream":
            if self._quote_feed is None:
                from .quotes import QuoteFeed

                key, secret = credentials(self.settings)
                self._quote_feed = QuoteFeed(self.config, key, secret)
            return await self._quote_feed.subscribe(wanted, callback, first)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._poll_quotes(wanted, callback, first))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Subscription(wanted, lambda: loop.call_soon_threadsafe(task.cancel))

    async def _poll_quotes(self, symbols: list[str], callback: Callable[[Quote], Any], first: dict[str, Quote]) -> None:
        last: dict[str, Decimal] = {}
        quotes = first
        while True:
            for sym, quote in quotes.items():
                if last.get(sym) != quote.last:
                    last[sym] = quote.last
                    try:
                        callback(quote)
                    except Exception:
                        log.exception("market-data subscriber for %s failed", sym)
            await asyncio.sleep(self.config.quote_poll_interval)
            try:
                quotes = await self._quotes(symbols)
            except WorkbenchError as exc:  # a data outage must not end the subscription
                log.warning("quote poll failed: %s", exc)
                quotes = {}

    async def get_clock(self) -> MarketClock:
        self._require_connected()
        return p.parse_clock(await self._rest(self.trading.get_clock))


def _duplicate(exc: WorkbenchError) -> bool:
    """Alpaca's answer to a reused client_order_id (422; its code 40010001 is shared with other refusals)."""
    return "client_order_id must be unique" in exc.message.lower()


def _with_client_id(fill: FillEvent, client_order_id: str) -> FillEvent:
    return fill.model_copy(update={"local_id": client_order_id})


def _submitted(order: Order) -> datetime:
    """When Alpaca says the order was submitted: what ``after`` / ``until`` / ``direction`` go by."""
    return p.parse_time(order.raw.get("submitted_at")) or order.created_at


def _drop_frames(exc: BaseException) -> None:
    """Clear the tracebacks of ``exc`` and the exceptions chained to it (their frames' locals hold the
    request headers); the exceptions themselves stay, as the typed error's cause."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        todo += [current.__cause__, current.__context__]


def _retry_after(response: Any) -> float | None:
    try:
        return float(response.headers.get("Retry-After"))
    except (AttributeError, TypeError, ValueError):
        return None
