"""The one async adapter interface every broker implements.

An adapter turns neutral requests (:class:`NeutralOrder`, symbols) into broker calls and broker
answers into neutral models. It is written once, async; :mod:`workbench.facade` generates the
synchronous notebook API from it. Adapters never build DataFrames by hand: history goes through
:mod:`workbench.core.frames`, and the facade turns model lists into frames.

Lifecycle (httpx-style): an adapter is *unopened* until its first ``connect()``, *open* after it
(``disconnect()``/``connect()`` may alternate: a dropped gateway is still an open adapter), and
*closed* after :meth:`AdapterBase.close`, which is final: it disconnects, stops every background task
(tickers, watchdogs, reconnect loops, subscriptions), and every later call raises
:class:`~workbench.core.errors.BrokerClosed`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from workbench.core import frames
from workbench.core.enums import Feature, OrderType, TimeInForce
from workbench.core.errors import BrokerClosed, BrokerUnavailable, NotSupported
from workbench.core.models import AccountInfo, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote
from workbench.core.settings import Settings

__all__ = ["AdapterBase", "Capabilities", "EventFanout", "Subscription"]


class Capabilities(BaseModel):
    """What an adapter can carry. Orders outside it raise NotSupported before anything is sent."""

    model_config = ConfigDict(frozen=True)
    order_types: frozenset[OrderType]
    tifs: frozenset[TimeInForce]
    features: frozenset[Feature] = frozenset()

    def check(self, order: NeutralOrder, broker: str) -> None:
        if order.order_type not in self.order_types:
            raise NotSupported(f"{broker} does not support {order.order_type} orders", broker=broker,
                               field="order_type")
        if order.tif not in self.tifs:
            raise NotSupported(f"{broker} does not support time in force {order.tif}", broker=broker, field="tif")
        if order.notional is not None and Feature.NOTIONAL not in self.features:
            raise NotSupported(f"{broker} does not support notional (cash-sized) orders", broker=broker,
                               field="notional")
        if Feature.FRACTIONAL not in self.features and order.qty is not None \
                and order.qty != order.qty.to_integral_value():
            raise NotSupported(f"{broker} does not support fractional quantities", broker=broker, field="qty")


class Subscription:
    """A live market-data subscription; call :meth:`cancel` to stop it."""

    def __init__(self, symbols: Iterable[str], on_cancel: Callable[[], None]) -> None:
        self.symbols = tuple(symbols)
        self._on_cancel = on_cancel
        self.active = True
        self.delayed: frozenset[str] = frozenset()  # symbols served with delayed data (no live entitlement)

    def cancel(self) -> None:
        if self.active:
            self.active = False
            self._on_cancel()

    def __repr__(self) -> str:
        delayed = f", delayed={', '.join(sorted(self.delayed))}" if self.delayed else ""
        return f"Subscription({', '.join(self.symbols)}, active={self.active}{delayed})"


class EventFanout:
    """Deliver events published from any thread to every async consumer, each on its own loop."""

    def __init__(self) -> None:
        self._queues: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = []

    @property
    def has_consumers(self) -> bool:
        return bool(self._queues)

    def publish(self, event: Any) -> None:
        for loop, queue in list(self._queues):
            if not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, event)

    async def stream(self) -> AsyncIterator[Any]:
        entry = (asyncio.get_running_loop(), asyncio.Queue())
        self._queues.append(entry)
        try:
            while True:
                yield await entry[1].get()
        finally:
            self._queues.remove(entry)


_LIST_LABELS = {"broker", "source", "symbol", "symbols", "interval", "adjusted", "simulated"}


def _merged_labels(parts: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The labels of single-symbol frames, for their list frame: a cached answer stays labelled.

    ``stale``: any part (and ``stale_symbols``, which); ``cached``: every part; ``cached_as_of``: per symbol;
    any other label: its value when every part agrees, else per symbol.
    """
    out: dict[str, Any] = {}
    for key in sorted({k for p in parts.values() for k in p.attrs} - _LIST_LABELS):
        values = {symbol: p.attrs.get(key) for symbol, p in parts.items()}
        if key == "stale":
            out["stale_symbols"] = [symbol for symbol, v in values.items() if v]
            out["stale"] = bool(out["stale_symbols"])
        elif key == "cached":
            out["cached"] = all(bool(v) for v in values.values())
        elif key != "cached_as_of" and all(v == next(iter(values.values())) for v in values.values()):
            out[key] = next(iter(values.values()))
        else:
            out[key] = values
    return out


class AdapterBase(ABC):
    """Async broker contract (the playbook's AdapterBase plus the IBKR plan's calls).

    Subclasses set ``name`` and ``capabilities`` and implement the abstract methods.
    ``place_order`` checks capabilities and the connection, then calls ``_place_order``.
    Every operation of a closed adapter raises BrokerClosed, whatever the subclass does: this base
    wraps each operation a subclass defines (``connect`` also marks the adapter open).
    """

    name: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities]
    #: ``unopened``, ``open`` or ``closed`` (see the module docstring).
    lifecycle: str = "unopened"
    _closed_fully = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lifecycle = "unopened"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _guard_operations(cls)

    # -- connection -------------------------------------------------------------------------

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection (idempotent). BrokerClosed once the adapter is closed."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Close the connection and stop background work (idempotent). ``connect()`` may follow."""

    async def close(self) -> None:
        """Close for good: disconnect and stop all background work; later calls raise BrokerClosed.

        Idempotent. Adapters holding more than a connection (engines, files) release it in
        :meth:`disconnect` or extend this method, calling ``super().close()``.
        """
        if self._closed_fully:
            return
        self.lifecycle = "closed"  # from now on every operation refuses
        await self.disconnect()
        self._closed_fully = True  # (not before: a close cancelled or failed half-way runs again)

    @property
    def closed(self) -> bool:
        return self.lifecycle == "closed"

    @abstractmethod
    def is_connected(self) -> bool:
        """Whether the adapter is connected now."""

    @property
    def state(self) -> str:
        """``connected``, ``disconnected``, ``closed``, or (adapters that reconnect) ``reconnecting``."""
        if self.lifecycle == "closed":
            return "closed"
        return "connected" if self.is_connected() else "disconnected"

    def conflict(self, other: AdapterBase) -> str | None:
        """Why ``other`` (an open adapter of this process) cannot stay open once this one connects, or None.

        :func:`workbench.connect` closes the Brokers of conflicting adapters before connecting, so
        re-running a notebook's connect cell replaces the previous Broker instead of fighting it (IB: the
        same client id on the same gateway). Default: adapters never conflict.
        """
        return None

    def runs_inline(self, operation: str) -> bool:
        """Whether ``operation`` completes without ever awaiting (a local, thread-safe call).

        The sync facade then runs it in the caller's thread instead of a round trip through workbench's
        loop thread. Default: no (network adapters always await).
        """
        return False

    def _refuse_if_closed(self) -> None:
        if self.lifecycle == "closed":
            raise BrokerClosed(f"this {self.name} broker is closed; call workbench.connect() for a new one",
                               broker=self.name, code="closed")

    def _require_connected(self) -> None:
        if not self.is_connected():
            self._refuse_if_closed()
            raise BrokerUnavailable(f"{self.name} is not connected; call connect() first", broker=self.name,
                                    code="not_connected")

    # -- account ----------------------------------------------------------------------------

    @abstractmethod
    async def get_account(self) -> AccountInfo:
        """Balances of the account."""

    @abstractmethod
    async def get_positions(self) -> list[Position]:
        """Every open position, marked to market where the broker can."""

    async def get_position(self, symbol: str) -> Position | None:
        """The position in ``symbol``, or None if flat."""
        symbol = symbol.strip().upper()
        return next((p for p in await self.get_positions() if p.symbol == symbol), None)

    # -- orders -----------------------------------------------------------------------------

    async def place_order(self, order: NeutralOrder) -> Order:
        """Send ``order``. Raises NotSupported (nothing sent) if the adapter cannot carry it."""
        self.capabilities.check(order, self.name)
        self._require_connected()
        return await self._place_order(order)

    @abstractmethod
    async def _place_order(self, order: NeutralOrder) -> Order:
        """Send an order that passed the capability check."""

    @abstractmethod
    async def cancel_order(self, order_id: str) -> Order:
        """Request cancellation (by order id or client order id); returns the order as it now stands."""

    @abstractmethod
    async def get_order(self, order_id: str) -> Order:
        """One order by order id or client order id; OrderNotFound if unknown."""

    @abstractmethod
    async def get_orders_history(self, limit: int | None = 100, since: datetime | None = None) -> list[Order]:
        """Recent orders, most recent first."""

    @abstractmethod
    async def get_fills(self, since: datetime | None = None) -> list[FillEvent]:
        """Executions, oldest first (one FillEvent per fill, quantity of that fill)."""

    @abstractmethod
    def stream_fills(self) -> AsyncIterator[FillEvent]:
        """Async iterator of FillEvents as they happen (from now on)."""

    def stream_orders(self) -> AsyncIterator[Order]:
        """Async iterator of Order snapshots, one per status or fill change (from now on).

        Adapters that advertise ``Feature.STREAM_ORDERS`` override this.
        """
        raise NotSupported(f"{self.name} does not stream order updates", broker=self.name, code="stream_orders")

    # -- market data ------------------------------------------------------------------------

    @abstractmethod
    async def get_quote(self, symbol: str) -> Quote:
        """Latest quote for ``symbol``."""

    async def get_market_price(self, symbol: str) -> Decimal:
        """Latest trade price for ``symbol``."""
        return (await self.get_quote(symbol)).last

    @abstractmethod
    async def get_history(
        self,
        symbol: str,
        days: int | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars in the history schema (tz-aware UTC index ``ts``); empty frame when there are none.

        The range is ``[start, end)``: ``start`` is inclusive, ``end`` is exclusive (a daily bar
        labelled ``end`` is not included). ``days`` counts calendar days back from ``end`` (default now).
        """

    #: How many symbols :meth:`get_history_many` requests at once.
    history_concurrency: ClassVar[int] = 4

    async def get_history_many(
        self,
        symbols: Sequence[str],
        days: int | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Several symbols in one long frame indexed by (symbol, ts) (:func:`frames.long_history_frame`).

        The same frame the yfinance provider returns for a list. ``attrs`` carry ``symbols`` (in the
        order asked, duplicates dropped), ``broker``, ``source``, ``interval``, ``adjusted`` and
        ``simulated`` (True if any part is), and every other label the parts carry (:func:`_merged_labels`:
        ``stale`` if any part is, with ``stale_symbols``; ``cached`` if all are; ``cached_as_of`` per symbol).
        Adapters with a bulk path may override this.
        """
        wanted = list(dict.fromkeys(symbols))
        gate = asyncio.Semaphore(self.history_concurrency)

        async def one(symbol: str) -> pd.DataFrame:
            async with gate:
                return await self.get_history(symbol, days=days, start=start, end=end, interval=interval)

        parts = await asyncio.gather(*(one(s) for s in wanted))
        first = parts[0].attrs if parts else {}
        named = {str(p.attrs.get("symbol") or s): p for s, p in zip(wanted, parts, strict=True)}
        out = frames.long_history_frame(
            named, broker=first.get("broker", self.name), source=first.get("source"), symbols=list(named),
            interval=first.get("interval", interval), adjusted=first.get("adjusted"),
            simulated=any(bool(p.attrs.get("simulated")) for p in parts))
        out.attrs.update(_merged_labels(named))
        return out

    @abstractmethod
    async def subscribe_market_data(self, symbols: Iterable[str], callback: Callable[[Quote], Any]) -> Subscription:
        """Call ``callback(quote)`` on every price change of ``symbols`` until the subscription is cancelled."""

    @abstractmethod
    async def get_clock(self) -> MarketClock:
        """Market open/closed now, and the next open and close."""

    async def is_market_open(self) -> bool:
        """Whether the market is open now."""
        return (await self.get_clock()).is_open

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.state}>"


#: The operations every adapter refuses once closed (BrokerClosed), whatever the subclass implements.
_GUARDED = frozenset({
    "connect", "get_account", "get_positions", "get_position", "place_order", "cancel_order", "get_order",
    "get_orders_history", "get_fills", "stream_fills", "stream_orders", "get_quote", "get_market_price",
    "get_history", "get_history_many", "subscribe_market_data", "get_clock", "is_market_open",
})


def _guard_operations(cls: type[AdapterBase]) -> None:
    """Wrap the operations ``cls`` defines so a closed adapter refuses them (and ``connect`` opens it)."""
    for name in _GUARDED & cls.__dict__.keys():
        fn = cls.__dict__[name]
        if not callable(fn) or getattr(fn, "_lifecycle_guard", False) or getattr(fn, "__isabstractmethod__", False):
            continue
        setattr(cls, name, _guard(fn, opens=name == "connect"))


def _guard(fn: Callable[..., Any], opens: bool) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def guarded(self: AdapterBase, *args: Any, **kwargs: Any) -> Any:
            if self.lifecycle == "closed":
                self._refuse_if_closed()
            result = await fn(self, *args, **kwargs)
            if opens and self.lifecycle == "unopened":
                self.lifecycle = "open"
            return result
    else:  # the stream_* methods return their async iterator directly
        @functools.wraps(fn)
        def guarded(self: AdapterBase, *args: Any, **kwargs: Any) -> Any:
            if self.lifecycle == "closed":
                self._refuse_if_closed()
            return fn(self, *args, **kwargs)

    guarded._lifecycle_guard = True  # type: ignore[attr-defined]
    return guarded


_guard_operations(AdapterBase)  # its own concrete operations (place_order, get_position, ...) too
