"""The notebook facade: :func:`connect` returns a :class:`Broker` with synchronous methods.

Each broker operation is written once, as an async method of the adapter. For every entry of
:data:`OPERATIONS`, :class:`Broker` gets two generated methods: ``name(...)`` (blocking; safe in a
Jupyter cell) and ``name_async(...)`` (awaitable from any event loop), both with a real signature
(``inspect.signature``; type checkers read the generated ``facade.pyi``). Table operations come back
as DataFrames with the fixed schemas of :mod:`workbench.core.frames`.

Lifecycle (httpx-style): a Broker is *unopened* until ``connect()`` (:func:`connect` returns an open
one), *open* after, and *closed* after :meth:`Broker.close` or when it is garbage-collected: closing
stops the fill/order pumps and market-data subscriptions it handed out and closes the adapter. Every
later call raises :class:`~workbench.core.errors.BrokerClosed`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from workbench.adapters.base import AdapterBase, Capabilities, Subscription
from workbench.adapters.factory import get_adapter, known_adapters
from workbench.core import frames
from workbench.core.enums import Feature, Side
from workbench.core.errors import (
    BrokerClosed,
    ConfigError,
    InvalidInput,
    InvalidOrder,
    NotSupported,
    RequestTimeout,
    WorkbenchError,
)
from workbench.core.log import get_logger, mask_secrets
from workbench.core.models import (
    AccountInfo,
    FillEvent,
    MarketClock,
    NeutralOrder,
    Order,
    Position,
    Quote,
    parse_symbol,
)
from workbench.core.runner import Runner, get_runner
from workbench.core.settings import MAX_REQUEST_TIMEOUT, Settings, load_settings
from workbench.marketdata.base import utc_timestamp

__all__ = ["Broker", "connect", "OPERATIONS", "Operation", "MAX_HISTORY_DAYS"]

log = get_logger(__name__)

#: The longest ``days=`` a history request may span (a century).
MAX_HISTORY_DAYS = 36_600

Number = Decimal | int | float | str


@dataclass(frozen=True)
class Operation:
    """One facade method: the adapter coroutine it calls, how it prepares arguments, how it converts.

    ``prepare(broker, *args, **kwargs)`` validates the caller's arguments (its signature, minus the
    first parameter, is the method's) and returns ``(args, kwargs)`` for the adapter method, or
    ``(args, kwargs, other_target)``. ``returns`` overrides the adapter method's return annotation.
    """

    name: str
    target: str = ""  # adapter method; defaults to ``name``
    prepare: Callable[..., tuple[Any, ...]] | None = None
    convert: Callable[..., Any] | None = None  # (result, broker) -> value
    returns: str = ""
    doc: str = ""  # set when the method's docstring is not the adapter method's

    @property
    def adapter_method(self) -> Callable[..., Any]:
        return getattr(AdapterBase, self.target or self.name)

    def signature(self) -> inspect.Signature:
        """The public signature: ``prepare``'s (``self`` first) or the adapter method's."""
        if self.prepare is not None:
            sig = inspect.signature(self.prepare)
            params = list(sig.parameters.values())
            params[0] = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
            sig = sig.replace(parameters=params)
            returns = self.returns or self.adapter_method.__annotations__.get("return", "None")
        else:
            sig = inspect.signature(self.adapter_method)
            returns = self.returns or sig.return_annotation
        return sig.replace(return_annotation=returns)

    @property
    def places_orders(self) -> bool:
        return (self.target or self.name) == "place_order"


# -- argument preparation (runs in the caller's thread, before anything is sent) --------------


def _order_args(session: Broker, /, order: NeutralOrder | Mapping[str, Any] | None = None, **fields: Any):
    if order is None:
        payload: Any = fields
    elif fields:
        raise InvalidOrder("pass either an order or keyword fields, not both", field="order")
    else:
        payload = order
    parsed = NeutralOrder.parse(payload)
    if parsed.broker is not None and parsed.broker != session.name:
        known = known_adapters()
        hint = "" if parsed.broker in known else f" (unknown broker; known: {', '.join(sorted(known))})"
        raise InvalidOrder(f"order is for broker {parsed.broker!r} but this is {session.name!r}{hint}",
                           field="broker")
    return (parsed,), {}


def _no_order_type(method: str, fields: Mapping[str, Any]) -> None:
    if "order_type" in fields:
        raise InvalidOrder(f"{method} sets the order type itself; for another type use "
                           f"place_order(order_type={fields['order_type']!r}, ...)", field="order_type")


def _market_args(session: Broker, /, symbol: str, qty: Number, side: Side | str, **fields: Any):
    _no_order_type("place_market_order", fields)
    return _order_args(session, symbol=symbol, qty=qty, side=side, order_type="MARKET", **fields)


def _limit_args(session: Broker, /, symbol: str, qty: Number, side: Side | str, limit_price: Number,
                **fields: Any):
    _no_order_type("place_limit_order", fields)
    return _order_args(session, symbol=symbol, qty=qty, side=side, order_type="LIMIT", limit_price=limit_price,
                       **fields)


def _symbol_args(session: Broker, /, symbol: str):
    return (parse_symbol(symbol),), {}


def _order_id_args(session: Broker, /, order_id: str):
    if not isinstance(order_id, str) or not order_id.strip():
        raise InvalidInput(f"order_id must be an order id or client order id string, not {order_id!r}",
                           field="order_id")
    return (order_id.strip(),), {}


def _history_args(session: Broker, /, symbol: str | Sequence[str], days: int | None = None,
                  start: datetime | str | None = None, end: datetime | str | None = None, interval: str = "1d"):
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_HISTORY_DAYS):
        raise InvalidInput(f"days must be a whole number of days from 1 to {MAX_HISTORY_DAYS}, got {days!r}",
                           field="days")
    if not isinstance(interval, str):
        raise InvalidInput(f"interval must be a string such as '1d' or '5m', not {interval!r}", field="interval")
    kwargs = {"days": days, "start": _date_arg(start, "start"), "end": _date_arg(end, "end"), "interval": interval}
    if isinstance(symbol, str):
        return (parse_symbol(symbol),), kwargs
    symbols = _symbol_list(symbol)
    return (symbols,), kwargs, "get_history_many"  # several symbols: one long (symbol, ts) frame


#: Dates given to history: wide, yet ``days`` (at most a century) on either side stays within pandas'
#: nanosecond timestamps (1677-2262).
HISTORY_RANGE = (pd.Timestamp("1800-01-01", tz="UTC"), pd.Timestamp("2150-01-01", tz="UTC"))


def _date_arg(value: Any, field: str, bounds: tuple[pd.Timestamp, pd.Timestamp] | None = HISTORY_RANGE
              ) -> datetime | None:
    """``start``/``end``/``since`` as a UTC datetime (naive = UTC), checked once here for every adapter."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float, Decimal)):
        raise InvalidInput(f"{field} must be a date, a datetime or an ISO date string, not {value!r}", field=field)
    stamp = utc_timestamp(value, field)
    if stamp is None or (bounds is not None and not bounds[0] <= stamp <= bounds[1]):
        raise InvalidInput(f"{field} must be between {bounds[0].date()} and {bounds[1].date()}, got {value!r}",
                           field=field)
    try:
        return stamp.to_pydatetime(warn=False)  # (nanoseconds: finer than any broker keeps)
    except (ValueError, OverflowError):  # year 0, or past 9999
        raise InvalidInput(f"{field} is not a date Python can hold: {value!r}", field=field) from None


def _symbol_list(symbols: Any, field: str = "symbol") -> tuple[str, ...]:
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, Iterable) or isinstance(symbols, Mapping):
        raise InvalidInput(f"{field} must be a symbol or a list of symbols, not {type(symbols).__name__}",
                           field=field)
    parsed = tuple(parse_symbol(s, field) for s in symbols)
    if not parsed:
        raise InvalidInput("give at least one symbol", field=field)
    return parsed


def _subscribe_args(session: Broker, /, symbols: str | Iterable[str], callback: Callable[[Quote], Any]):
    wanted = (parse_symbol(symbols, "symbols"),) if isinstance(symbols, str) else _symbol_list(symbols, "symbols")
    if not callable(callback):
        raise InvalidInput(f"callback must be callable (it receives each Quote), not {type(callback).__name__}",
                           field="callback")
    return (wanted, callback), {}


def _orders_history_args(session: Broker, /, limit: int | None = 100, since: datetime | str | None = None):
    return (), {"limit": _limit(limit), "since": _since(since)}


def _fills_args(session: Broker, /, since: datetime | str | None = None):
    return (), {"since": _since(since)}


#: The most rows one ``limit=`` may ask for.
MAX_LIMIT = 10**9


def _limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT} or None, got {limit!r}",
                           field="limit")
    return limit


def _since(since: Any) -> datetime | None:
    """A tz-aware UTC datetime (naive values and date strings are read as UTC), for every adapter."""
    return _date_arg(since, "since", bounds=None)  # it only filters: any date will do


def _frame(builder: Callable[..., Any]) -> Callable[[Any, Broker], Any]:
    return lambda result, broker: builder(result, broker=broker.name, source=broker.name)


def _track(subscription: Subscription, broker: Broker) -> Subscription:
    broker._subscriptions[:] = [s for s in broker._subscriptions if s.active]
    broker._subscriptions.append(subscription)
    return subscription


OPERATIONS: tuple[Operation, ...] = (
    Operation("connect"),
    Operation("disconnect"),
    Operation("get_account"),
    Operation("get_positions", convert=_frame(frames.positions_frame), returns="pd.DataFrame"),
    Operation("get_position", prepare=_symbol_args),
    Operation("place_order", prepare=_order_args, doc="Place an order: a NeutralOrder, a dict, or keyword fields."),
    Operation("place_market_order", "place_order", prepare=_market_args,
              doc="Place a market order: (symbol, qty, side, **fields)."),
    Operation("place_limit_order", "place_order", prepare=_limit_args,
              doc="Place a limit order: (symbol, qty, side, limit_price, **fields)."),
    Operation("cancel_order", prepare=_order_id_args),
    Operation("get_order", prepare=_order_id_args),
    Operation("get_orders_history", prepare=_orders_history_args, convert=_frame(frames.orders_frame),
              returns="pd.DataFrame", doc="Recent orders, most recent first (``limit`` rows; ``since`` a date)."),
    Operation("get_fills", prepare=_fills_args, convert=_frame(frames.fills_frame), returns="pd.DataFrame",
              doc="Executions, oldest first, one row per fill (``since`` a date or datetime, UTC if naive)."),
    Operation("get_quote", prepare=_symbol_args),
    Operation("get_market_price", prepare=_symbol_args),
    Operation("get_history", prepare=_history_args, returns="pd.DataFrame",
              doc="Bars for ``symbol``, or for several symbols one long frame indexed by (symbol, ts).\n\n"
                  "The history schema: float64 open/high/low/close/volume, tz-aware UTC index ``ts``. The\n"
                  "range is ``[start, end)``: ``end`` is exclusive; ``days`` counts calendar days back from\n"
                  "``end`` (default now). A list gives the yfinance provider's long frame on every broker."),
    Operation("subscribe_market_data", prepare=_subscribe_args, convert=_track),
    Operation("is_market_open"),
    Operation("get_clock"),
)

#: Hints for arguments users reach for that an operation does not take.
_ARGUMENT_HINTS = {
    ("get_history", "since"): "history takes start= and end= (end is exclusive) or days=, not since=",
    ("get_history", "limit"): "history takes start= and end= (end is exclusive) or days=, not limit=",
}


class Broker:
    """A connected broker for notebooks and scripts. Build it with :func:`workbench.connect`.

    Every method also exists as ``<name>_async``. ``broker.adapter`` is the underlying async adapter;
    it lives on workbench's background loop, so from your own loop prefer the ``_async`` methods.
    ``close()`` (or leaving a ``with`` block, or dropping the last reference) stops everything the
    Broker started and closes the adapter; a closed Broker raises BrokerClosed.
    """

    adapter: AdapterBase
    timeout: float

    def __init__(self, adapter: AdapterBase, timeout: float | None = None) -> None:
        self.adapter = adapter
        self.timeout = _timeout(adapter.settings.request_timeout if timeout is None else timeout)
        self._runner = get_runner()
        self._pumps: list[asyncio.Task[Any]] = []
        self._subscriptions: list[Subscription] = []
        self._closed = False
        # Holds what must be stopped, never the Broker itself, so dropping the Broker runs it.
        self._finalizer = weakref.finalize(self, _finalize, self._runner, adapter, self._pumps,
                                           self._subscriptions)

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def settings(self) -> Settings:
        return self.adapter.settings

    @property
    def capabilities(self) -> Capabilities:
        return self.adapter.capabilities

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (a closed Broker cannot be used again)."""
        return self._closed

    def is_connected(self) -> bool:
        return not self._closed and self.adapter.is_connected()

    @property
    def state(self) -> str:
        """``connected``, ``reconnecting`` (after a gateway loss), ``disconnected`` or ``closed``."""
        return "closed" if self._closed else self.adapter.state

    def on_fill(self, callback: Callable[[FillEvent], Any]) -> Callable[[], None]:
        """Call ``callback(fill)`` (on workbench's loop thread) for every new fill; returns ``stop()``.

        An exception in the callback is logged and the stream goes on. ``close()`` stops it too.
        """
        return self._pump(self.adapter.stream_fills, callback, "on_fill")

    def on_order(self, callback: Callable[[Order], Any]) -> Callable[[], None]:
        """Call ``callback(order)`` (on workbench's loop thread) on every order status or fill change.

        Returns ``stop()``. Needs ``Feature.STREAM_ORDERS`` (NotSupported otherwise, raised here).
        An exception in the callback is logged and the stream goes on. ``close()`` stops it too.
        """
        self._require_open()
        if Feature.STREAM_ORDERS not in self.capabilities.features:
            raise NotSupported(f"{self.name} does not stream order updates", broker=self.name,
                               code="stream_orders")
        return self._pump(self.adapter.stream_orders, callback, "on_order")

    def _pump(self, stream: Callable[[], Any], callback: Callable[[Any], Any], what: str) -> Callable[[], None]:
        self._require_open()
        if not callable(callback):
            raise InvalidInput(f"callback must be callable, not {type(callback).__name__}", field="callback",
                               broker=self.name)

        async def pump() -> None:  # references neither the Broker nor anything that holds it
            async for event in stream():
                try:
                    callback(event)
                except Exception:
                    log.exception("%s callback %r failed", what, callback)

        task = self._runner.run(_start(pump), self.timeout, f"{self.name}.{what}")
        self._pumps[:] = [t for t in self._pumps if not t.done()]
        self._pumps.append(task)
        loop = self._runner.loop
        return lambda: loop.call_soon_threadsafe(task.cancel)

    def close(self) -> None:
        """Stop fill/order callbacks and subscriptions, and close the adapter. Idempotent; final."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _finalize(self._runner, self.adapter, self._pumps, self._subscriptions, timeout=self.timeout)

    async def close_async(self) -> None:
        """:meth:`close`, awaitable from any event loop."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        await self._runner.run_async(_shutdown(self.adapter, self._pumps, self._subscriptions))

    def _require_open(self) -> None:
        if self._closed:
            raise BrokerClosed(f"this {self.name} broker is closed; call workbench.connect() for a new one",
                               broker=self.name, code="closed")

    def __enter__(self) -> Broker:
        if self.adapter.lifecycle == "unopened":
            self.connect()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Broker:
        if self.adapter.lifecycle == "unopened":
            await self.connect_async()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def __repr__(self) -> str:
        return f"<Broker {self.name} {self.state}>"


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= MAX_REQUEST_TIMEOUT:
        raise InvalidInput(f"timeout must be a number of seconds in (0, {MAX_REQUEST_TIMEOUT:g}], got {value!r}",
                           field="timeout")
    return float(value)


async def _start(pump: Callable[[], Any]) -> asyncio.Task[Any]:
    task = asyncio.get_running_loop().create_task(pump())
    await asyncio.sleep(0)  # let the stream register before returning
    return task


async def _shutdown(adapter: AdapterBase, pumps: list[asyncio.Task[Any]], subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        try:
            subscription.cancel()
        except Exception:
            log.exception("cancelling %r failed", subscription)
    for task in pumps:
        task.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    pumps.clear()
    subscriptions.clear()
    await adapter.close()


def _finalize(runner: Runner, adapter: AdapterBase, pumps: list[asyncio.Task[Any]],
              subscriptions: list[Subscription], timeout: float = 10.0) -> None:
    """Close what a Broker started: on close(), when the Broker is dropped, and at interpreter exit."""
    loop = runner.loop
    if loop.is_closed() or not loop.is_running():
        return
    work = _shutdown(adapter, pumps, subscriptions)
    if runner.in_loop_thread():  # dropped inside a callback: the loop cannot wait for itself
        task = loop.create_task(work)
        task.add_done_callback(_log_failure)
        return
    try:
        runner.run(work, timeout, f"{adapter.name}.close")
    except Exception:
        log.warning("closing the %s broker failed", adapter.name, exc_info=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing a broker failed", exc_info=task.exception())


# -- the generated methods --------------------------------------------------------------------


def _bind(op: Operation) -> tuple[Callable[..., Any], Callable[..., Any]]:
    target = op.target or op.name
    prepare, convert = op.prepare, op.convert
    signature = op.signature()
    error = InvalidOrder if op.places_orders else InvalidInput
    what = op.name

    def call(self: Broker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        """(the adapter coroutine, its arguments) for the caller's arguments, validated in the caller's thread."""
        try:
            if prepare is None:
                return getattr(self.adapter, target)(*args, **kwargs), args
            prepared = prepare(self, *args, **kwargs)
            method = prepared[2] if len(prepared) == 3 else target
            return getattr(self.adapter, method)(*prepared[0], **prepared[1]), prepared[0]
        except TypeError:
            bad = _argument_error(what, signature, args, kwargs, error)
            if bad is None:
                raise
            raise _own(bad, self) from None  # the TypeError would name internal functions
        except WorkbenchError as exc:
            raise _own(exc, self) from None

    def sync(self: Broker, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            self._require_open()
        coro, sent = call(self, args, kwargs)
        try:
            result = self._runner.run(coro, self.timeout, f"{self.name}.{what}")
        except RequestTimeout as exc:
            if not op.places_orders:
                raise _own(exc, self)
            # The order may still reach the broker: say how to find it instead of inviting a blind retry.
            cid = sent[0].client_order_id
            raise RequestTimeout(
                f"{exc.message}; order {cid!r} may still be working: look it up with "
                f"get_order({cid!r}), or resubmit the same client_order_id (never fills twice)",
                broker=self.name, code="timeout", raw=cid) from exc
        except WorkbenchError as exc:
            raise _own(exc, self)
        return result if convert is None else convert(result, self)

    async def async_(self: Broker, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            self._require_open()
        coro, _ = call(self, args, kwargs)
        try:
            result = await self._runner.run_async(coro)
        except WorkbenchError as exc:
            raise _own(exc, self)
        return result if convert is None else convert(result, self)

    doc = op.doc or op.adapter_method.__doc__
    for fn, suffix in ((sync, ""), (async_, "_async")):
        fn.__name__ = fn.__qualname__ = op.name + suffix
        fn.__qualname__ = f"Broker.{op.name}{suffix}"
        fn.__doc__ = doc
        fn.__signature__ = signature  # type: ignore[attr-defined]
        fn.__annotations__ = {name: p.annotation for name, p in signature.parameters.items()
                              if p.annotation is not inspect.Parameter.empty} | {"return": signature.return_annotation}
    return sync, async_


def _own(exc: WorkbenchError, broker: Broker) -> WorkbenchError:
    """``exc`` as raised through ``broker``: it names the broker, and carries no chain that is noise (bad
    input: the library's complaint about the value adds nothing) or that quotes a secret."""
    if exc.broker is None:
        exc.broker = broker.name
    if isinstance(exc, (InvalidInput, ConfigError)):
        exc.__cause__, exc.__suppress_context__ = None, True
        return exc
    cause, depth = exc.__cause__ or exc.__context__, 0
    while cause is not None and depth < 8:
        if mask_secrets(str(cause)) != str(cause):
            exc.__cause__, exc.__suppress_context__ = None, True
            break
        cause, depth = cause.__cause__ or cause.__context__, depth + 1
    return exc


def _argument_error(op: str, sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any],
                    error: type[InvalidInput]) -> InvalidInput | None:
    """The typed error for arguments that do not fit ``sig`` (None if they fit)."""
    params = list(sig.parameters.values())[1:]  # without self
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params if p.kind is not kinds.VAR_KEYWORD}
    takes = ", ".join(p.name if p.default is kinds.empty else f"{p.name}=" for p in params
                      if p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL))
    if len(args) > len(positional) and not any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return error(f"{op}() takes {len(positional)} positional argument(s) ({takes}), got {len(args)}; "
                     "pass the others by name", field="args")
    for name in kwargs:
        if name not in names and not any(p.kind is kinds.VAR_KEYWORD for p in params):
            hint = _ARGUMENT_HINTS.get((op, name), f"it takes {takes}")
            return error(f"{op}() has no argument {name!r}: {hint}", field=name)
        if name in {p.name for p in positional[:len(args)]}:
            return error(f"{op}() got {name!r} twice (by position and by name)", field=name)
    given = {p.name for p in positional[:len(args)]} | set(kwargs)
    for p in params:
        if p.default is kinds.empty and p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL) \
                and p.name not in given:
            return error(f"{op}() needs {p.name} ({takes})", field=p.name)
    return None


for _op in OPERATIONS:
    _sync, _async = _bind(_op)
    setattr(Broker, _op.name, _sync)
    setattr(Broker, _op.name + "_async", _async)
del _op, _sync, _async


def connect(broker: str | None = None, settings: Settings | Mapping[str, Any] | str | None = None,
            **adapter_kwargs: Any) -> Broker:
    """Connect to ``broker`` (default: ``$BROKER_TYPE`` or the settings' ``default_broker``, i.e. paper).

    ``settings`` is a path to a settings.json or a dict merged over the defaults. A failed connect
    closes what it opened.
    """
    resolved = load_settings(settings)
    adapter = get_adapter(broker, resolved, **adapter_kwargs)
    session = Broker(adapter)
    try:
        session.connect()  # type: ignore[attr-defined]
    except BaseException:
        session.close()
        raise
    return session
