"""Both emulators' thread lifecycle (one home: ``workbench.emulators._thread.LoopServer``), run on each."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from workbench.emulators.tws import TwsEmulator


def _alpaca(**kwargs: Any) -> Any:
    pytest.importorskip("aiohttp")
    from workbench.emulators.alpaca import AlpacaEmulator

    return AlpacaEmulator(key="PKTEST", secret="s3cret", tick_interval=None, **kwargs)


EMULATORS: dict[str, Callable[..., Any]] = {
    "tws": lambda **kwargs: TwsEmulator(tick_interval=None, **kwargs),
    "alpaca": _alpaca,
}


def _threads(emu: Any) -> list[threading.Thread]:
    """The emulator's own threads ("tws-emulator-<id>", "alpaca-emulator-<id>")."""
    prefix = {"TwsEmulator": "tws-emulator", "AlpacaEmulator": "alpaca-emulator"}[type(emu).__name__]
    return [t for t in threading.enumerate() if t.name == f"{prefix}-{id(emu):x}"]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("make", EMULATORS.values(), ids=EMULATORS.keys())
def test_with_block_starts_one_thread_and_leaves_nothing(make: Callable[..., Any]) -> None:
    with make() as emu:
        assert len(_threads(emu)) == 1 and not _refused(emu.port)
        assert emu.start_in_thread() is emu and len(_threads(emu)) == 1  # already running: no second one
        port = emu.port
    assert _threads(emu) == [] and _refused(port)
    emu.stop_thread()  # again: nothing to do


@pytest.mark.parametrize("make", EMULATORS.values(), ids=EMULATORS.keys())
def test_call_runs_on_the_emulator_loop_and_awaits_a_coroutine(make: Callable[..., Any]) -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    with make() as emu:
        (thread,) = _threads(emu)
        assert emu.call(lambda: threading.current_thread().name) == thread.name
        assert emu.call(where) == thread.name


@pytest.mark.parametrize("make", EMULATORS.values(), ids=EMULATORS.keys())
def test_a_failed_start_raises_and_leaves_no_thread(make: Callable[..., Any]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        emu = make(port=busy.getsockname()[1])
        with pytest.raises(OSError):
            emu.start_in_thread()
        assert _threads(emu) == []  # joined before the error is raised
        assert emu.engine.closed  # the engine it built for itself is released too
