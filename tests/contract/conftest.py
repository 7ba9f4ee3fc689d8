"""The broker contract suite runs against every adapter listed in ADAPTERS.

Each entry builds a connected :class:`workbench.Broker`: ``paper`` directly; ``ib`` through the real
ib_async client over loopback to workbench's TWS emulator; ``alpaca`` through the real alpaca-py clients
over loopback to workbench's Alpaca emulator (each emulator backed by its own paper engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import workbench


@contextmanager
def _paper(settings_dict: dict[str, Any], tmp_path: Path) -> Iterator[workbench.Broker]:
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        yield broker
    finally:
        broker.close()


@contextmanager
def _ib(settings_dict: dict[str, Any], tmp_path: Path, sdk: str = "ib_async") -> Iterator[workbench.Broker]:
    pytest.importorskip(sdk)
    from workbench.paper.config import PaperConfig
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gateway.sqlite"), slippage_bps=0, commission=0),
                         SimProvider())
    emulator = TwsEmulator(engine, port=0, server_version=178 if sdk == "ib_async" else 176,
                           tick_interval=0.05).start_in_thread()
    settings = {**settings_dict, "ib": {"port": emulator.port, "client_id": 7, "sdk": sdk, "connect_timeout": 5}}
    broker = workbench.connect("ib", settings=settings)
    try:
        yield broker
    finally:
        broker.close()
        emulator.stop_thread()
        engine.close()


@contextmanager
def _alpaca(settings_dict: dict[str, Any], tmp_path: Path) -> Iterator[workbench.Broker]:
    pytest.importorskip("alpaca")
    from tests.alpaca.conftest import alpaca_keys
    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "alpaca.sqlite"), slippage_bps=0, commission=0),
                         SimProvider())
    with alpaca_keys(), AlpacaEmulator(engine, tick_interval=0.05) as emulator:
        settings = {**settings_dict, "alpaca": {**emulator.settings(), "quote_poll_interval": 0.05}}
        broker = workbench.connect("alpaca", settings=settings)
        try:
            yield broker
        finally:
            broker.close()
    engine.close()


ADAPTERS: dict[str, Callable[..., Any]] = {
    "paper": _paper,
    "ib": _ib,
    "ib_insync": lambda s, p: _ib(s, p, sdk="ib_insync"),
    "alpaca": _alpaca,
}


@pytest.fixture(params=sorted(ADAPTERS))
def broker(request: pytest.FixtureRequest, settings_dict: dict[str, Any], tmp_path: Path) -> Iterator[workbench.Broker]:
    with ADAPTERS[request.param](settings_dict, tmp_path) as session:
        yield session
