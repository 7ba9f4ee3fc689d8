"""The notebook facade: :func:`connect` returns a :class:`Broker` with synchronous methods.

Each broker operation is written once, as an async method of the adapter. For every entry of
:data:`OPERATIONS`, :class:`Broker` gets two generated methods: ``name(...)`` (blocking; safe in a
Jupyter cell) and ``name_async(...)`` (awaitable from any event loop), both with a real signature
(``inspect.signature``; type checkers read the generated ``facade.pyi``). Table operations come back
as DataFrames with the fixed schemas of :mod:`workbench.core.frames`.

Lifecycle (httpx-style): a Broker is *unopened* until ``connect()`` (:func:`connect` returns an open
one), *open* after, and *closed* after :meth:`Broker.close` or when it is garbage-collected: closing
stops the fill/order pumps and market-data subscriptions it handed out and closes the adapter. Every
later call raises :class:`~workbench.core.errors.BrokerClosed`, and so does a call that was still running
when ``close()`` came.

Re-running ``broker = workbench.connect(...)`` in a notebook is safe although the previous Broker is still
referenced while the new one connects (and IPython's output history keeps any Broker that was displayed
alive): :func:`connect` closes earlier Brokers that cannot stay open next to the new one
(:meth:`AdapterBase.conflict`: the same IB client id; the same paper ledger with other settings), while
paper Brokers with the same settings share their ledger's engine. A child made by ``os.fork()`` cannot use
its parent's Brokers (BrokerClosed at once; they are left to the parent).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook first: see _close_all_at_exit)
import functools
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence  # noqa: F401  (annotations resolve here)
from dataclasses import dataclass
from datetime import datetime  # noqa: F401
from decimal import Decimal  # noqa: F401
from typing import Any

import pandas as pd  # noqa: F401

from workbench.adapters.base import AdapterBase, Capabilities, Subscription
from workbench.adapters.factory import get_adapter
from workbench.core import display, frames
from workbench.core.enums import Feature, Side  # noqa: F401
from workbench.core.errors import (
    BrokerClosed,
    BrokerUnavailable,
    ConfigError,
    InvalidInput,
    InvalidOrder,
    NotSupported,
    RequestTimeout,
    WorkbenchError,
)
from workbench.core.log import get_logger, mask_secrets
from workbench.core.models import (  # noqa: F401  (the generated methods' annotations name them)
    AccountInfo,
    FillEvent,
    MarketClock,
    NeutralOrder,
    Order,
    Position,
    Quote,
)
from workbench.core.runner import Runner, get_runner
from workbench.core.settings import Settings, load_settings
from workbench.facade_args import (  # noqa: F401  (Number: the generated methods' annotations name it)
    MAX_HISTORY_DAYS,
    MAX_LIMIT,
    Number,
    argument_error,
    check_timeout,
    fills_args,
    history_args,
    limit_args,
    market_args,
    order_args,
    order_id_args,
    orders_history_args,
    subscribe_args,
    symbol_args,
)

__all__ = ["Broker", "connect", "OPERATIONS", "Operation", "MAX_HISTORY_DAYS"]

log = get_logger(__name__)


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
    Operation("get_position", prepare=symbol_args),
    Operation("place_order", prepare=order_args, doc="Place an order: a NeutralOrder, a dict, or keyword fields."),
    Operation("place_market_order", "place_order", prepare=market_args,
              doc="Place a market order: (symbol, qty, side, **fields)."),
    Operation("place_limit_order", "place_order", prepare=limit_args,
              doc="Place a limit order: (symbol, qty, side, limit_price, **fields)."),
    Operation("cancel_order", prepare=order_id_args),
    Operation("get_order", prepare=order_id_args),
    Operation("get_orders_history", prepare=orders_history_args, convert=_frame(frames.orders_frame),
              returns="pd.DataFrame", doc="Recent orders, most recent first (``limit`` rows; ``since`` a date)."),
    Operation("get_fills", prepare=fills_args, convert=_frame(frames.fills_frame), returns="pd.DataFrame",
              doc="Executions, oldest first, one row per fill (``since`` a date or datetime, UTC if naive)."),
    Operation("get_quote", prepare=symbol_args),
    Operation("get_market_price", prepare=symbol_args),
    Operation("get_history", prepare=history_args, returns="pd.DataFrame",
              doc="Bars for ``symbol``, or for several symbols one long frame indexed by (symbol, ts).\n\n"
                  "The history schema: float64 open/high/low/close/volume, tz-aware UTC index ``ts``. The\n"
                  "range is ``[start, end)``: ``end`` is exclusive; ``days`` counts calendar days back from\n"
                  "``end`` (default now). A list gives the yfinance provider's long frame on every broker."),
    Operation("subscribe_market_data", prepare=subscribe_args, convert=_track),
    Operation("is_market_open"),
    Operation("get_clock"),
)


def _typed_arguments(method: Callable[..., Any]) -> Callable[..., Any]:
    """Arguments that do not fit a hand-written Broker method: InvalidInput naming them, not a TypeError."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def checked(self: Broker, *args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError:
            bad = argument_error(method.__name__, signature, args, kwargs, InvalidInput)
            raise _own(bad or InvalidInput(f"{method.__name__}() takes {signature}", field="args"), self) from None
        return method(self, *args, **kwargs)

    return checked


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
        self.timeout = check_timeout(adapter.settings.request_timeout if timeout is None else timeout)
        self._runner = get_runner()
        self._pumps: list[asyncio.Task[Any]] = []
        self._subscriptions: list[Subscription] = []
        self._closed = False
        self._closed_because = ""  # why, when something other than close() closed it
        # Holds what must be stopped, never the Broker itself, so dropping the Broker runs it.
        self._finalizer = weakref.finalize(self, _finalize, self._runner, adapter, self._pumps,
                                           self._subscriptions)
        _LIVE.add(self)
        display.install_frame_display()  # compact orders/positions/fills tables in notebooks

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

    @_typed_arguments
    def on_fill(self, callback: Callable[[FillEvent], Any]) -> Callable[[], None]:
        """Call ``callback(fill)`` (on workbench's loop thread) for every new fill; returns ``stop()``.

        An exception in the callback is logged and the stream goes on. ``close()`` stops it too.
        """
        return self._pump(self.adapter.stream_fills, callback, "on_fill")

    @_typed_arguments
    def on_order(self, callback: Callable[[Order], Any]) -> Callable[[], None]:
        """Call ``callback(order)`` (on workbench's loop thread) on every order status or fill change.

        Returns ``stop()``. Needs ``Feature.STREAM_ORDERS`` (NotSupported otherwise, raised here).
        An exception in the callback is logged and the stream goes on. ``close()`` stops it too.
        """
        self._refuse_if_closed()
        if Feature.STREAM_ORDERS not in self.capabilities.features:
            raise NotSupported(f"{self.name} does not stream order updates", broker=self.name,
                               code="stream_orders")
        return self._pump(self.adapter.stream_orders, callback, "on_order")

    def _pump(self, stream: Callable[[], Any], callback: Callable[[Any], Any], what: str) -> Callable[[], None]:
        self._refuse_if_closed()
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
        await self._runner.run_async(_shutdown(self.adapter, self._pumps, self._subscriptions))
        self._finalizer.detach()  # only now: cancelled half-way, it still closes what is left when the Broker goes

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> BrokerClosed:
        because = f" ({self._closed_because})" if self._closed_because else ""
        return BrokerClosed(f"this {self.name} broker is closed{because}; call workbench.connect() for a new one",
                            broker=self.name, code="closed")

    def __enter__(self) -> Broker:
        self._refuse_if_closed()
        if self.adapter.lifecycle == "unopened":
            self.connect()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Broker:
        self._refuse_if_closed()
        if self.adapter.lifecycle == "unopened":
            await self.connect_async()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def __repr__(self) -> str:
        return display.broker_text(self)

    def _repr_html_(self) -> str:
        return display.broker_html(self)


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
        _CLOSING.add(task)  # the loop keeps only a weak reference to its tasks
        task.add_done_callback(_closed)
        return
    try:
        runner.run(work, timeout, f"{adapter.name}.close")
    except Exception:
        log.warning("closing the %s broker failed", adapter.name, exc_info=True)


_CLOSING: set[asyncio.Task[Any]] = set()
_LIVE: weakref.WeakSet[Broker] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    """Close every Broker still open when the interpreter exits."""
    for broker in list(_LIVE):
        broker._finalizer()  # runs once: close() or a later finalization finds it done


# Run at the start of interpreter shutdown, before thread pools stop taking work (adapters may need
# asyncio.to_thread to close): plain atexit would be too late. These hooks run in reverse order of
# registration, and the thread pools registered theirs on import (above).
getattr(threading, "_register_atexit", atexit.register)(_close_all_at_exit)


def _forget_parent_brokers() -> None:
    """In a forked child: the parent's Brokers are the parent's (their loop thread and pumps did not come
    along, and their ledgers and sockets must not be touched from here), so refuse them and never close them."""
    for broker in list(_LIVE):
        broker._closed = True
        broker._closed_because = f"it belongs to process {os.getppid()}, which forked this one"
        broker._finalizer.detach()


os.register_at_fork(after_in_child=_forget_parent_brokers)


def _close_conflicting(adapter: AdapterBase) -> None:
    """Close the open Brokers that cannot stay open next to ``adapter`` (see :meth:`AdapterBase.conflict`)."""
    for broker in list(_LIVE):
        if broker._closed or broker.adapter is adapter:
            continue
        why = adapter.conflict(broker.adapter)
        if why:
            log.warning("closing an earlier %s Broker: a new workbench.connect() takes over %s", broker.name, why)
            broker._closed_because = f"a later workbench.connect() took over {why}"
            broker.close()


def _closed(task: asyncio.Task[Any]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("closing a broker failed", exc_info=task.exception())


# -- the generated methods --------------------------------------------------------------------


def _bind(op: Operation) -> tuple[Callable[..., Any], Callable[..., Any]]:
    target = op.target or op.name
    prepare, convert = op.prepare, op.convert
    signature = op.signature()
    error = InvalidOrder if op.places_orders else InvalidInput
    what = op.name

    def call(self: Broker, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...], str]:
        """(adapter coroutine, its arguments, adapter method) for the caller's arguments, validated here."""
        try:
            if prepare is None:
                if args or kwargs:  # these take no arguments; say so now, not when the coroutine runs
                    raise TypeError
                return getattr(self.adapter, target)(), args, target
            prepared = prepare(self, *args, **kwargs)
            method = prepared[2] if len(prepared) == 3 else target
            return getattr(self.adapter, method)(*prepared[0], **prepared[1]), prepared[0], method
        except TypeError:
            bad = argument_error(what, signature, args, kwargs, error)
            if bad is None:
                raise
            raise _own(bad, self) from None  # the TypeError would name internal functions
        except WorkbenchError as exc:
            raise _own(exc, self) from None

    def sync(self: Broker, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            self._refuse_if_closed()
        coro, sent, method = call(self, args, kwargs)
        try:
            if self.adapter.runs_inline(method) and not self._runner.in_loop_thread():
                result = _run_inline(coro, what)  # a local call (paper): no round trip through the loop
            else:
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
            self._refuse_if_closed()
        coro, _, _ = call(self, args, kwargs)
        try:
            result = await self._runner.run_async(coro)
        except WorkbenchError as exc:
            raise _own(exc, self)
        return result if convert is None else convert(result, self)

    doc = op.doc or op.adapter_method.__doc__
    for fn, suffix in ((sync, ""), (async_, "_async")):
        fn.__name__, fn.__qualname__ = op.name + suffix, f"Broker.{op.name}{suffix}"
        fn.__doc__ = doc
        fn.__signature__ = signature  # type: ignore[attr-defined]
        fn.__annotations__ = {name: p.annotation for name, p in signature.parameters.items()
                              if p.annotation is not inspect.Parameter.empty} | {"return": signature.return_annotation}
    return sync, async_


def _run_inline(coro: Any, what: str) -> Any:
    """Run a coroutine that never suspends (its adapter promised so) to completion in this thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"{what} suspended although its adapter runs it inline")


def _own(exc: WorkbenchError, broker: Broker) -> WorkbenchError:
    """``exc`` as raised through ``broker``: it names the broker, and carries no chain that is noise (input
    workbench refused itself: a library's complaint about the value adds nothing) or that quotes a secret."""
    if exc.broker is None:
        exc.broker = broker.name
    if broker._closed and isinstance(exc, BrokerUnavailable) and not isinstance(exc, BrokerClosed):
        closed = broker._closed_error()  # close() came while this call ran: not worth a retry
        closed.__cause__ = exc if mask_secrets(str(exc)) == str(exc) else None
        closed.__suppress_context__ = True
        return closed
    if isinstance(exc, (InvalidInput, ConfigError)) and exc.raw is None:  # (raw: the broker said it; keep)
        exc.__cause__, exc.__suppress_context__ = None, True
        return exc
    cause, depth = exc.__cause__ or exc.__context__, 0
    while cause is not None and depth < 8:
        if mask_secrets(str(cause)) != str(cause):
            exc.__cause__, exc.__suppress_context__ = None, True
            break
        cause, depth = cause.__cause__ or cause.__context__, depth + 1
    return exc


for _op in OPERATIONS:
    _sync, _async = _bind(_op)
    setattr(Broker, _op.name, _sync)
    setattr(Broker, _op.name + "_async", _async)
del _op, _sync, _async


def connect(broker: str | None = None,
            settings: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None,
            **adapter_kwargs: Any) -> Broker:
    """Connect to ``broker`` (default: ``$BROKER_TYPE`` or the settings' ``default_broker``, i.e. paper).

    ``settings`` is a path to a settings.json or a dict merged over the defaults. A failed connect
    closes what it opened. Open Brokers that cannot coexist with the new one (the same IB client id, the
    same paper ledger with other settings) are closed first, with a warning: re-running a connect cell
    replaces the previous Broker.
    """
    resolved = load_settings(settings)
    adapter = get_adapter(broker, resolved, **adapter_kwargs)
    _close_conflicting(adapter)  # a re-run cell's previous Broker, still referenced while this one connects
    session = Broker(adapter)
    try:
        session.connect()  # type: ignore[attr-defined]
    except BaseException:
        session.close()
        raise
    return session
