"""Run adapter coroutines from synchronous code, including inside Jupyter's running event loop.

Adapters live on one background event loop (a daemon thread, started on first use). A sync call
submits the coroutine there and blocks with a timeout, so it works the same in a script, in a
Jupyter cell (whose own loop is already running) and in a thread, with no nested-loop patch. Async
callers on another loop await the same coroutine through :meth:`Runner.run_async`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import RequestTimeout

__all__ = ["Runner", "get_runner"]

T = TypeVar("T")

_runner: Runner | None = None
_runner_lock = threading.Lock()


class Runner:
    """An event loop in a daemon thread."""

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
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(f"{what}: a synchronous workbench call was made from the workbench event loop "
                               "itself (e.g. inside a callback); use the *_async method with await instead")
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
