"""What both emulators share: their own event loop in a daemon thread (``start_in_thread`` / ``stop_thread`` /
``with emu:``), serving until a signal, and calls onto that loop from any thread.

An emulator subclasses :class:`LoopServer` and writes ``async start()`` (listen; ``self._loop`` is the running
loop from then on) and ``async stop()`` (release everything ``start`` made, also after a failed start).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Self

__all__ = ["LoopServer", "running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopServer:
    """A server on an asyncio loop: in a daemon thread of its own, or in the caller's running loop."""

    #: How errors name the server ("TWS emulator"); its thread is named after it ("tws-emulator-<id>").
    label: ClassVar[str] = "emulator"
    _loop: asyncio.AbstractEventLoop | None
    _thread: threading.Thread | None

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def serve_forever(self, on_started: Callable[[Self], None] | None = None) -> None:
        """Serve until cancelled, or until SIGINT / SIGTERM when run in the main thread."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, stop.set)
                    signals.append(sig)
        if on_started is not None:
            on_started(self)
        try:
            await stop.wait()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> Self:
        """Start on a fresh loop in a daemon thread; returns once listening (at once if it already runs).

        A failed start (the port is taken...) raises here and leaves no thread behind.
        """
        if self._thread is not None and self._thread.is_alive():
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        name = f"{self.label.lower().replace(' ', '-')}-{id(self):x}"
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the {self.label} did not start within {timeout:g} s")
        if failure:
            self._thread.join(timeout)  # it ends right after reporting
            self._thread = None
            raise failure[0]
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop what :meth:`start_in_thread` started (everything :meth:`stop` releases) and end its thread."""
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` on the server's loop (from any thread) and return its result (awaited, if a
        coroutine)."""
        assert self._loop is not None, "not started"
        if running_loop() is self._loop:
            return fn(*args)

        async def job() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(job(), self._loop).result(timeout)

    def soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the server's loop soon, from any thread (nothing once the loop has closed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if running_loop() is loop:
            loop.call_soon(fn)
        else:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(fn)
