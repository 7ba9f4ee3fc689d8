"""The notebook facade: :func:`connect` returns a :class:`Broker` with synchronous methods.

Each broker operation is written once, as an async method of the adapter. For every entry of
:data:`OPERATIONS`, :class:`Broker` gets two generated methods: ``name(...)`` (blocking; safe in a
Jupyter cell) and ``name_async(...)`` (awaitable from any event loop). Table operations come back
as DataFrames with the fixed schemas of :mod:`workbench.core.frames`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.adapters.base import AdapterBase
from workbench.adapters.factory import get_adapter
from workbench.core import display, frames
from workbench.core.enums import Feature
from workbench.core.errors import InvalidInput, InvalidOrder, NotSupported, RequestTimeout
from workbench.core.log import get_logger
from workbench.core.models import FillEvent, NeutralOrder, Order
from workbench.core.runner import get_runner
from workbench.core.settings import Settings, load_settings
from workbench.marketdata.base import utc_timestamp

__all__ = ["Broker", "connect", "OPERATIONS"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Operation:
    """One facade method: the adapter coroutine it calls, how it prepares arguments, how it converts."""

    name: str
    target: str = ""  # adapter method; defaults to ``name``
    prepare: Callable[..., tuple[tuple[Any, ...], dict[str, Any]]] | None = None
    convert: Callable[..., Any] | None = None  # (result, broker) -> value
    doc: str = ""  # set when the method's signature is its own, not the adapter method's


def _order_args(session: Broker, /, order: NeutralOrder | dict[str, Any] | None = None, **fields: Any):
    if order is None:
        payload: Any = fields
    elif fields:
        raise InvalidOrder("pass either an order or keyword fields, not both", field="order")
    else:
        payload = order
    parsed = NeutralOrder.parse(payload)
    if parsed.broker is not None and parsed.broker != session.name:
        raise InvalidOrder(f"order is for broker {parsed.broker!r} but this is {session.name!r}", field="broker")
    return (parsed,), {}


def _market_args(session: Broker, /, symbol: str, qty: Any, side: Any, **fields: Any):
    return _order_args(session, symbol=symbol, qty=qty, side=side, order_type="MARKET", **fields)


def _limit_args(session: Broker, /, symbol: str, qty: Any, side: Any, limit_price: Any, **fields: Any):
    return _order_args(session, symbol=symbol, qty=qty, side=side, order_type="LIMIT", limit_price=limit_price,
                       **fields)


def _history_args(session: Broker, /, limit: Any = 100, since: Any = None):
    return (), {"limit": _limit(limit), "since": _since(since)}


def _fills_args(session: Broker, /, since: Any = None):
    return (), {"since": _since(since)}


def _limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer or None, got {limit!r}", field="limit")
    return limit


def _since(since: Any) -> datetime | None:
    """A tz-aware UTC datetime (naive values and date strings are read as UTC), for every adapter."""
    stamp = utc_timestamp(since, "since")
    return None if stamp is None else stamp.to_pydatetime()


def _frame(builder: Callable[..., Any]) -> Callable[[Any, Broker], Any]:
    return lambda result, broker: builder(result, broker=broker.name, source=broker.name)


OPERATIONS: tuple[Operation, ...] = (
    Operation("connect"),
    Operation("disconnect"),
    Operation("get_account"),
    Operation("get_positions", convert=_frame(frames.positions_frame)),
    Operation("get_position"),
    Operation("place_order", prepare=_order_args, doc="Place an order: a NeutralOrder, a dict, or keyword fields."),
    Operation("place_market_order", "place_order", prepare=_market_args,
              doc="Place a market order: (symbol, qty, side, **fields)."),
    Operation("place_limit_order", "place_order", prepare=_limit_args,
              doc="Place a limit order: (symbol, qty, side, limit_price, **fields)."),
    Operation("cancel_order"),
    Operation("get_order"),
    Operation("get_orders_history", prepare=_history_args, convert=_frame(frames.orders_frame)),
    Operation("get_fills", prepare=_fills_args, convert=_frame(frames.fills_frame)),
    Operation("get_quote"),
    Operation("get_market_price"),
    Operation("get_history"),
    Operation("subscribe_market_data"),
    Operation("is_market_open"),
    Operation("get_clock"),
)


class Broker:
    """A connected broker for notebooks and scripts. Build it with :func:`workbench.connect`.

    Every method also exists as ``<name>_async``. ``broker.adapter`` is the underlying async adapter;
    it lives on workbench's background loop, so from your own loop prefer the ``_async`` methods.
    """

    def __init__(self, adapter: AdapterBase, timeout: float | None = None) -> None:
        self.adapter = adapter
        self.timeout = adapter.settings.request_timeout if timeout is None else timeout
        self._runner = get_runner()
        self._pumps: list[asyncio.Task[Any]] = []
        display.install_frame_display()  # compact orders/positions/fills tables in notebooks

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def settings(self) -> Settings:
        return self.adapter.settings

    @property
    def capabilities(self) -> Any:
        return self.adapter.capabilities

    def is_connected(self) -> bool:
        return self.adapter.is_connected()

    @property
    def state(self) -> str:
        """Connection state: ``connected``, ``reconnecting`` (after a gateway loss) or ``disconnected``."""
        return self.adapter.state

    def on_fill(self, callback: Callable[[FillEvent], Any]) -> Callable[[], None]:
        """Call ``callback(fill)`` (on workbench's loop thread) for every new fill; returns ``stop()``.

        An exception in the callback is logged and the stream goes on.
        """
        return self._pump(self.adapter.stream_fills, callback, "on_fill")

    def _pump(self, stream: Callable[[], Any], callback: Callable[[Any], Any], what: str) -> Callable[[], None]:
        async def pump() -> None:
            async for event in stream():
                try:
                    callback(event)
                except Exception:
                    log.exception("%s callback %r failed", what, callback)

        task = self._runner.run(_start(pump), self.timeout, f"{self.name}.{what}")
        self._pumps.append(task)
        return lambda: self._runner.loop.call_soon_threadsafe(task.cancel)

    def on_order(self, callback: Callable[[Order], Any]) -> Callable[[], None]:
        """Call ``callback(order)`` (on workbench's loop thread) on every order status or fill change.

        Returns ``stop()``. Needs ``Feature.STREAM_ORDERS`` (NotSupported otherwise, raised here).
        An exception in the callback is logged and the stream goes on.
        """
        if Feature.STREAM_ORDERS not in self.capabilities.features:
            raise NotSupported(f"{self.name} does not stream order updates", broker=self.name,
                               code="stream_orders")
        return self._pump(self.adapter.stream_orders, callback, "on_order")

    def close(self) -> None:
        """Stop fill callbacks and disconnect (same as ``disconnect()``)."""
        for task in self._pumps:
            self._runner.loop.call_soon_threadsafe(task.cancel)
        self._pumps.clear()
        self.disconnect()  # type: ignore[attr-defined]  # always: also stops an adapter that is reconnecting

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return display.broker_text(self)

    def _repr_html_(self) -> str:
        return display.broker_html(self)


async def _start(pump: Callable[[], Any]) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(pump())
    await asyncio.sleep(0)  # let the stream register before returning
    return task


def _bind(op: Operation) -> tuple[Callable[..., Any], Callable[..., Any]]:
    target = op.target or op.name
    adapter_method = getattr(AdapterBase, target)

    def prepared(self: Broker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple, dict]:
        return op.prepare(self, *args, **kwargs) if op.prepare is not None else (args, kwargs)

    def finish(self: Broker, result: Any) -> Any:
        return op.convert(result, self) if op.convert is not None else result

    @functools.wraps(adapter_method)
    def sync(self: Broker, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = prepared(self, args, kwargs)
        coro = getattr(self.adapter, target)(*args, **kwargs)
        try:
            return finish(self, self._runner.run(coro, self.timeout, f"{self.name}.{op.name}"))
        except RequestTimeout as exc:
            order = next((a for a in args if isinstance(a, NeutralOrder)), None)
            if order is None:
                raise
            # The order may still reach the broker: say how to find it instead of inviting a blind retry.
            raise RequestTimeout(
                f"{exc.message}; order {order.client_order_id!r} may still be working: look it up with "
                f"get_order({order.client_order_id!r}), or resubmit the same client_order_id (never fills twice)",
                broker=self.name, code="timeout", raw=order.client_order_id) from exc

    @functools.wraps(adapter_method)
    async def async_(self: Broker, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = prepared(self, args, kwargs)
        return finish(self, await self._runner.run_async(getattr(self.adapter, target)(*args, **kwargs)))

    for fn, suffix in ((sync, ""), (async_, "_async")):
        fn.__name__ = fn.__qualname__ = op.name + suffix
        if op.doc:  # the signature is the convenience's, not the adapter's
            del fn.__wrapped__
            fn.__doc__ = op.doc
    return sync, async_


for _op in OPERATIONS:
    _sync, _async = _bind(_op)
    setattr(Broker, _op.name, _sync)
    setattr(Broker, _op.name + "_async", _async)
del _op, _sync, _async


def connect(broker: str | None = None, settings: Settings | dict[str, Any] | str | None = None,
            **adapter_kwargs: Any) -> Broker:
    """Connect to ``broker`` (default: ``$BROKER_TYPE`` or the settings' ``default_broker``, i.e. paper).

    ``settings`` is a path to a settings.json or a dict merged over the defaults.
    """
    resolved = load_settings(settings)
    adapter = get_adapter(broker, resolved, **adapter_kwargs)
    session = Broker(adapter)
    session.connect()  # type: ignore[attr-defined]
    return session
