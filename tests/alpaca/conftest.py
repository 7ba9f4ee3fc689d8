"""Fixtures for the Alpaca tests: keys in the environment, the emulator on its own thread, a connected broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

KEY, SECRET = "PKTESTKEY0001", "test-secret-s3cr3t-value"


@contextmanager
def alpaca_keys(key: str = KEY, secret: str = SECRET) -> Iterator[None]:
    """``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` set for the block, restored after."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ALPACA_API_KEY", key)
        env.setenv("ALPACA_SECRET_KEY", secret)
        yield


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    return KEY, SECRET


@pytest.fixture
def alpaca_engine(tmp_path: Path) -> Iterator[Any]:
    """A paper engine for the emulator: wall clock, no slippage or commission, partial fills of half."""
    pytest.importorskip("alpaca")
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "emulator.sqlite"), slippage_bps=0, commission=0),
                         SimProvider())
    yield engine
    engine.close()


@pytest.fixture
def emulator(alpaca_engine: Any, keys: tuple[str, str]) -> Iterator[Any]:
    from workbench.emulators.alpaca import AlpacaEmulator

    emu = AlpacaEmulator(alpaca_engine, tick_interval=None, page_limit=50).start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_thread()


@pytest.fixture
def connect_alpaca(emulator: Any, settings_dict: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """``connect_alpaca(**alpaca_settings)`` -> a connected Broker on the emulator; closed at teardown."""
    import workbench

    made: list[Any] = []

    def make(**alpaca: Any) -> Any:
        section = {**emulator.settings(), "quote_poll_interval": 0.05, "reconnect_min": 0.02,
                   "reconnect_max": 0.2, "retry_wait": 0, **alpaca}
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def alpaca_broker(connect_alpaca: Callable[..., Any]) -> Any:
    return connect_alpaca()
