"""``paper``: the embedded default broker, a :class:`PaperEngine` over a persistent SQLite ledger."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd

from workbench.adapters.base import AdapterBase, Capabilities, EventFanout, Subscription
from workbench.core.enums import Feature, OrderType, TimeInForce
from workbench.core.errors import WorkbenchError
from workbench.core.log import get_logger
from workbench.core.models import AccountInfo, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote
from workbench.core.settings import Settings
from workbench.marketdata import MarketDataProvider, get_provider
from workbench.paper import shared
from workbench.paper.config import PaperConfig
from workbench.paper.engine import PaperEngine, claim

__all__ = ["PaperAdapter"]

log = get_logger(__name__)
T = TypeVar("T")


_END = object()
#: Operations that never await when the provider does no I/O (see :meth:`PaperAdapter.runs_inline`).
_INLINE = frozenset({"get_account", "get_positions", "get_position", "place_order", "cancel_order", "get_order",
                     "get_orders_history", "get_fills", "get_quote", "get_market_price"})


class _Fanout(EventFanout):
    """An EventFanout whose streams end when the adapter disconnects."""

    def close(self) -> None:
        self.publish(_END)

    async def stream(self) -> AsyncIterator[Any]:
        async with contextlib.aclosing(super().stream()) as events:
            async for event in events:
                if event is _END:
                    return
                yield event


class PaperAdapter(AdapterBase):
    """Simulated fills against a market-data provider, with every change in a SQLite ledger.

    ``provider`` and ``clock`` may be injected (tests, replays); by default they come from settings
    and the wall clock. A background task polls prices every ``paper.tick_interval`` seconds to
    trigger resting orders and feed market-data subscriptions.
    """

    name = "paper"
    capabilities = Capabilities(
        order_types=frozenset(OrderType),
        tifs=frozenset(TimeInForce),
        features=frozenset({Feature.STREAM_FILLS, Feature.STREAM_ORDERS, Feature.MARKET_DATA_STREAM, Feature.HISTORY,
                            Feature.SHORTING, Feature.FRACTIONAL, Feature.NOTIONAL, Feature.PARTIAL_FILLS,
                            Feature.MARKET_CALENDAR, Feature.PERSISTENT_LEDGER}),
    )

    def __init__(
        self,
        settings: Settings,
        *,
        provider: MarketDataProvider | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(settings)
        self.config = settings.section_model("paper", PaperConfig)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.provider = provider or get_provider(settings, clock=self.clock)
        # What must match for two adapters to share one engine (see workbench.paper.shared).
        self._sources = {"market_data": settings.section("market_data"),
                         "provider": id(provider) if provider is not None else None,
                         "clock": id(clock) if clock is not None else None}
        self.engine: PaperEngine | None = None
        self._lease: shared.EngineLease | None = None
        self._unlisten: list[Callable[[], None]] = []
        self._fills = _Fanout()
        self._orders = _Fanout()
        self._quote_subs: dict[int, tuple[tuple[str, ...], Callable[[Quote], Any], dict[str, Decimal]]] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._sub_ids = itertools.count()
        # connect() waits off the loop for its engine; a disconnect() meanwhile waits for it, then releases it
        # (else the lease taken after the disconnect would never be released: an engine and ticker leaked).
        self._opening = asyncio.Lock()

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        async with self._opening:
            if self.engine is None:
                # Opening (or waiting for a closing engine) is file I/O: off the event loop.
                lease = await asyncio.to_thread(shared.acquire, self.config, self.provider, self.clock,
                                                sources=self._sources)
                engine = lease.engine
                self._lease, self.engine, self.provider = lease, engine, engine.prices
                # Events are built only while someone streams them (the engine asks ``wanted`` first).
                self._unlisten = [
                    engine.add_fill_listener(self._fills.publish, wanted=lambda: self._fills.has_consumers),
                    engine.add_order_listener(self._orders.publish, wanted=lambda: self._orders.has_consumers)]
            if self._ticker is None or self._ticker.done():
                self._ticker = asyncio.get_running_loop().create_task(self._quote_loop(),
                                                                      name="workbench-paper-quotes")

    async def disconnect(self) -> None:
        """Stop the quote task and subscriptions, end the streams and release the engine (idempotent)."""
        async with self._opening:
            await self._disconnect()

    async def _disconnect(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for subscription in list(self._subscriptions.values()):
            subscription.cancel()
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        self._fills.close()
        self._orders.close()
        lease, self._lease, self.engine = self._lease, None, None
        if lease is not None:
            await asyncio.to_thread(lease.release)  # the last owner joins the ticker thread

    def is_connected(self) -> bool:
        return self.engine is not None

    def runs_inline(self, operation: str) -> bool:
        """Whether ``operation`` completes without ever awaiting: a call into the (thread-safe) engine
        with a provider that does no I/O. The sync facade then runs it in the caller's thread instead of
        a round trip through workbench's loop thread (the user path is as fast as the engine)."""
        # Subclasses may await anywhere (a test's hung gateway): only this class makes the promise.
        return type(self) is PaperAdapter and operation in _INLINE and not self.provider.blocking

    async def _quote_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_interval)
            if self._quote_subs:
                try:
                    await self._call(self._push_quotes)
                except Exception:  # keep going: one bad price must not stop the feed
                    log.exception("paper quote update failed")

    def tick(self) -> None:
        """One price update now: trigger resting orders and push quotes to subscribers."""
        self._engine.tick()
        self._push_quotes()

    def _push_quotes(self) -> None:
        for symbols, callback, last in list(self._quote_subs.values()):
            for symbol in symbols:
                try:
                    quote = self.provider.get_quote(symbol)
                    if last.get(symbol) != quote.last:
                        last[symbol] = quote.last
                        callback(quote)
                except Exception:  # one failing symbol or callback must not starve the others
                    log.exception("market-data subscriber for %s failed", symbol)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run engine/provider work, in a worker thread when the provider does I/O.

        Errors of the price source (SymbolNotFound...) are said by this broker: ``broker`` is ``paper``.
        """
        try:
            if self.provider.blocking:
                return await asyncio.to_thread(functools.partial(fn, *args))
            return fn(*args)
        except WorkbenchError as exc:
            claim(exc, self.name)
            raise

    @property
    def _engine(self) -> PaperEngine:
        self._require_connected()
        assert self.engine is not None
        return self.engine

    # -- account & orders -------------------------------------------------------------------

    async def get_account(self) -> AccountInfo:
        return await self._call(self._engine.account)

    async def get_positions(self) -> list[Position]:
        return await self._call(self._engine.positions)

    async def _place_order(self, order: NeutralOrder) -> Order:
        return await self._call(self._engine.submit, order)

    async def cancel_order(self, order_id: str) -> Order:
        return await self._call(self._engine.cancel, order_id)

    async def get_order(self, order_id: str) -> Order:
        return await self._call(self._engine.get_order, order_id)

    async def get_orders_history(self, limit: int | None = 100, since: datetime | None = None) -> list[Order]:
        return await self._call(functools.partial(self._engine.orders, limit=limit, since=since))

    async def get_fills(self, since: datetime | None = None) -> list[FillEvent]:
        return await self._call(functools.partial(self._engine.fills, since=since))

    def stream_fills(self) -> AsyncIterator[FillEvent]:
        return self._fills.stream()

    def stream_orders(self) -> AsyncIterator[Order]:
        return self._orders.stream()

    # -- market data ------------------------------------------------------------------------

    async def get_quote(self, symbol: str) -> Quote:
        return await self._call(self.provider.get_quote, symbol)

    async def get_market_price(self, symbol: str) -> Decimal:
        return await self._call(self.provider.get_market_price, symbol)

    async def get_history(
        self,
        symbol: str,
        days: int | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        fn = functools.partial(self.provider.get_history, symbol, days=days, start=start, end=end, interval=interval)
        frame = await self._call(fn)
        frame.attrs["broker"] = self.name
        return frame

    async def subscribe_market_data(self, symbols: Iterable[str], callback: Callable[[Quote], Any]) -> Subscription:
        wanted = tuple(s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols))
        for symbol in wanted:  # unknown symbols fail now, not in the background
            await self.get_quote(symbol)
        self._require_connected()
        key = next(self._sub_ids)
        self._quote_subs[key] = (wanted, callback, {})

        def cancelled() -> None:
            self._quote_subs.pop(key, None)
            self._subscriptions.pop(key, None)

        subscription = self._subscriptions[key] = Subscription(wanted, cancelled)
        return subscription

    async def get_clock(self) -> MarketClock:
        from workbench.core.calendar import get_calendar

        calendar = await asyncio.to_thread(get_calendar, "XNYS")  # first build takes a moment
        return calendar.clock(self.clock())

