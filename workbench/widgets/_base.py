"""What every desk widget shares: running broker calls off the kernel, subscriptions, close(), re-run safety.

Threading model: broker calls are coroutines scheduled on workbench's background loop (the same loop
the adapters live on) with :meth:`Component.spawn`, so a click handler returns at once and the kernel
never blocks. Broker events (``on_fill`` / ``on_order`` / market data) arrive on that loop thread too,
so a widget's state changes on one thread; trait updates from there reach the browser directly
(ipykernel's iopub is thread-safe), even while a long cell is running.

Re-running a cell: widgets are kept alive by ipywidgets' registry, so dropping the variable never frees
them. Each component remembers the notebook cell that created it (JupyterLab sends a ``cellId`` with
every execution); when the same cell runs again, the components it made last time are closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.log import get_logger
from workbench.core.runner import get_runner

from ._args import callback_arg, check_timeout

__all__ = ["Component", "live", "error_text", "current_cell"]

log = get_logger("workbench.widgets")

_live: "weakref.WeakSet[Component]" = weakref.WeakSet()
_by_cell: dict[str, list[tuple[int, weakref.ref[Component]]]] = {}
_registry_lock = threading.Lock()


def current_cell() -> tuple[str, int] | None:
    """``(cellId, execution_count)`` of the notebook cell running now, or None outside a notebook kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell")
    except TypeError:  # older ipykernel: get_parent() takes no channel
        parent = kernel.get_parent()
    cell_id = (parent or {}).get("metadata", {}).get("cellId")
    return (str(cell_id), int(shell.execution_count)) if cell_id else None


def live() -> list[Component]:
    """Every desk component that is not closed yet (tickets, blotters, feeds, charts, desks)."""
    return [c for c in list(_live) if not c.closed]


def error_text(exc: BaseException) -> str:
    """A typed error in plain words, naming the field when there is one."""
    if isinstance(exc, WorkbenchError):
        if exc.field and not exc.message.startswith(exc.field):
            return f"{exc.field}: {exc.message}"
        return exc.message
    return f"unexpected error: {type(exc).__name__}: {exc}"


class Component:
    """Base of the desk widgets: owns stop() callables and background tasks; ``close()`` ends them all."""

    def __init__(self) -> None:
        self.closed = False
        self._updated = threading.Condition()
        self._stoppers: list[Callable[[], Any]] = []
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._runner = get_runner()
        self._adopt()

    # -- lifecycle --------------------------------------------------------------------------

    def _adopt(self) -> None:
        _live.add(self)
        cell = current_cell()
        if cell is None:
            return
        key = f"{type(self).__name__}:{cell[0]}"
        with _registry_lock:
            previous = _by_cell.get(key, [])
            stale = [ref() for count, ref in previous if count != cell[1]]
            _by_cell[key] = [(count, ref) for count, ref in previous if count == cell[1] and ref() is not None]
            _by_cell[key].append((cell[1], weakref.ref(self)))
        for old in stale:
            if old is not None and not old.closed:
                log.info("closing %r: its cell was run again", old)
                old.close()

    def own(self, stop: Callable[[], Any]) -> None:
        """Call ``stop()`` on close (unsubscribe functions, Subscription.cancel, ...)."""
        self._stoppers.append(stop)

    def close(self) -> None:
        """Stop every subscription, timer and pending call of this component, and close its widgets."""
        if self.closed:
            return
        self.closed = True
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:
                log.exception("%r: stopping a subscription failed", self)
        self._stoppers.clear()
        for future in list(self._futures):
            future.cancel()
        self._close_widgets()

    def _close_widgets(self) -> None:
        widget = getattr(self, "widget", None)
        if widget is not None:
            _close_tree(widget)

    # -- waiting (scripts and notebooks) ----------------------------------------------------

    def _touch(self) -> None:
        """Wake :meth:`wait_until` callers: the component's state changed."""
        with self._updated:
            self._updated.notify_all()

    def wait_until(self, predicate: Callable[[Any], object], timeout: float = 10.0) -> Any:
        """Block until ``predicate(self)`` is true, re-checked after each update; TimeoutError after ``timeout`` s.

        For scripted cells (``blotter.wait_until(lambda b: "AAPL" in b.positions_frame.index)``); the
        widgets themselves never wait.
        """
        predicate, timeout = callback_arg(predicate, "the component", "predicate"), check_timeout(timeout)
        with self._updated:
            if not self._updated.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError(f"{self!r}: condition not met within {timeout} s")
        return self

    # -- background work --------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on workbench's loop without waiting; an exception is logged, never swallowed."""
        if self.closed:
            coro.close()
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.cancel()
            return future
        future = asyncio.run_coroutine_threadsafe(coro, self._runner.loop)
        self._futures.add(future)
        if self.closed:  # close() ran on another thread since the check above: it missed this one
            future.cancel()

        def done(f: concurrent.futures.Future[Any]) -> None:
            self._futures.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.error("%r: %s failed", self, what, exc_info=f.exception())

        future.add_done_callback(done)
        return future

    def call_on_loop(self, fn: Callable[[], Any]) -> None:
        """Run a plain callable on workbench's loop thread (where adapters expect to be touched)."""
        if self._runner.in_loop_thread():
            fn()
        else:
            self._runner.loop.call_soon_threadsafe(fn)

    def every(self, seconds: float, fn: Callable[[], Coroutine[Any, Any, Any]], what: str) -> None:
        """A slow timer on workbench's loop (``await fn()`` every ``seconds``), stopped on close or when ``fn``
        returns False."""

        async def timer() -> None:
            while not self.closed:
                await asyncio.sleep(seconds)
                try:
                    if await fn() is False:
                        return
                except Exception:
                    log.exception("%r: %s failed", self, what)

        future = self.spawn(timer(), what)
        self.own(future.cancel)

    # -- display ----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)  # type: ignore[attr-defined]


def _close_tree(widget: Any) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
