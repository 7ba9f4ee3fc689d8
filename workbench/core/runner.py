"""Run adapter coroutines from synchronous code, including inside Jupyter's running event loop.

Adapters live on one background event loop (a daemon thread, started on first use). A sync call
submits the coroutine there and blocks with a timeout, so it works the same in a script, in a
Jupyter cell (whose own loop is already running) and in a thread, with no nested-loop patch. Async
callers on another loop await the same coroutine through :meth:`Runner.run_async`.

A child made by ``os.fork()`` (``multiprocessing``'s default on Linux) inherits the runner but not its
thread: the child gets a fresh runner on first use, and the inherited one refuses work at once
(:class:`~workbench.core.errors.BrokerClosed`) instead of waiting for a loop that no longer runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import BrokerClosed, NotSupported, RequestTimeout

__all__ = ["Runner", "get_runner"]

T = TypeVar("T")

_runner: Runner | None = None
_runner_lock = threading.Lock()


class Runner:
    """An event loop in a daemon thread."""

    #: Set in a forked child: the loop thread stayed in the parent.
    forked = False

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="workbench-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str = "request") -> T:
        """Run ``coro`` on the loop and wait for it; RequestTimeout after ``timeout`` seconds."""
        if self.forked:
            coro.close()
            raise _forked_error(what)
        if self.in_loop_thread():
            coro.close()
            raise NotSupported(f"{what}: a synchronous workbench call was made from the workbench event loop "
                               "itself (e.g. inside a callback); use the *_async method with await instead",
                               code="sync_on_loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise RequestTimeout(f"{what} did not finish within {timeout} s", code="timeout") from exc
        except BaseException:  # KeyboardInterrupt in a notebook cell: stop the work too
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the runner's loop from any other loop."""
        if self.forked:
            coro.close()
            raise _forked_error("request")
        if self.in_loop_thread():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


def get_runner() -> Runner:
    """The process-wide runner (created on first use)."""
    global _runner
    with _runner_lock:
        if _runner is None or not _runner.loop.is_running() and _runner.loop.is_closed():
            _runner = Runner()
        return _runner


def _forked_error(what: str) -> BrokerClosed:
    return BrokerClosed(f"{what}: this object was made in the parent process, before os.fork(); its event loop "
                        "did not come along: call workbench.connect() in the child for a Broker of its own",
                        code="forked")


def _after_fork_in_child() -> None:
    global _runner, _runner_lock
    if _runner is not None:
        _runner.forked = True
    _runner, _runner_lock = None, threading.Lock()  # (the lock may have been held by another thread)


os.register_at_fork(after_in_child=_after_fork_in_child)
