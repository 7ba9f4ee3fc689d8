"""Fixtures for the TWS emulator tests: the emulator on its own loop thread, and a connected ib_async IB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import eventually
from workbench.emulators.tws import TwsEmulator

ACCOUNT = "DU1234567"
SERVER_VERSIONS = [157, 178]


def ib_eventually(ib: Any, predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01) -> object:
    """``eventually()`` that lets the client's event loop run while waiting (``ib.sleep``)."""
    return eventually(predicate, timeout, interval, sleep=ib.sleep)


@pytest.fixture
def engine(engine_factory: Callable[..., Any]) -> Any:
    return engine_factory(commission=1)


@pytest.fixture(params=SERVER_VERSIONS, ids=lambda v: f"sv{v}")
def server_version(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def emulator(engine: Any, server_version: int) -> Iterator[TwsEmulator]:
    emu = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_thread()


@pytest.fixture
def connect(emulator: TwsEmulator, client: Callable[..., Any]) -> Callable[..., Any]:
    """``connect(clientId=1, **kwargs)`` -> an ib_async IB connected to ``emulator``; disconnected at teardown."""
    return lambda client_id=1, **kwargs: client(emulator, client_id, **kwargs)


@pytest.fixture
def ib(connect: Callable[..., Any]) -> Any:
    return connect(1)


@pytest.fixture
def gateway(engine_factory: Callable[..., Any], server_version: int) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """``gateway(**paper_config)`` -> (emulator, engine): an emulator over a fresh engine, stopped at teardown."""
    made: list[TwsEmulator] = []

    def make(**config: Any) -> tuple[Any, Any]:
        engine = engine_factory(db=config.pop("db", None), **config)
        emu = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
        made.append(emu)
        return emu, engine

    yield make
    for emu in made:
        emu.stop_thread()


@pytest.fixture
def client() -> Iterator[Callable[..., Any]]:
    """``client(emulator, clientId=1)`` -> a connected ib_async IB; all disconnected at teardown."""
    from ib_async import IB

    made: list[Any] = []

    def make(emu: TwsEmulator, client_id: int = 1, **kwargs: Any) -> Any:
        ib = IB()
        made.append(ib)
        ib.connect("127.0.0.1", emu.port, clientId=client_id, timeout=kwargs.pop("timeout", 3), **kwargs)
        return ib

    yield make
    for ib in made:
        ib.disconnect()
