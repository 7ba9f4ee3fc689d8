"""IB adapter tests: the real ib_async client over loopback to workbench's TWS emulator (and, where a test
needs to lose the connection at an exact moment, through :class:`tests.ib.proxy.Proxy`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.conftest import eventually

from .proxy import Proxy

pytest.importorskip("ib_async")


class Gateway:
    """A TWS emulator over one paper engine (ledger in tmp_path) that can be stopped and restarted on its port."""

    def __init__(self, tmp_path: Path, *, accounts: tuple[str, ...] = ("DU1234567",), live_data: bool = True,
                 server_version: int = 178, fast_clock: bool = False, tick_interval: float | None = 0.02,
                 **engine: Any) -> None:
        from workbench.emulators.tws import TwsEmulator
        from workbench.marketdata.sim import SimProvider
        from workbench.paper.config import PaperConfig
        from workbench.paper.engine import PaperEngine

        self._factory = TwsEmulator
        config = {"slippage_bps": 0, "commission": 1, **engine}
        clock = _fast_clock() if fast_clock else None  # fast: prices move on every emulator tick
        self.engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gateway.sqlite"), **config),
                                  SimProvider(clock=clock) if clock else SimProvider(), clock=clock)
        self.options = {"accounts": accounts, "live_data": live_data, "server_version": server_version,
                        "tick_interval": tick_interval}  # None: prices move only by engine.on_price
        self.port = 0
        self.emulator: Any = None
        self.start()

    def start(self) -> None:
        self.emulator = self._factory(self.engine, port=self.port, **self.options).start_in_thread()
        self.port = self.emulator.port

    def stop(self) -> None:
        self.emulator.stop_thread()

    def restart(self, *brokers: workbench.Broker) -> None:
        """Stop and start again on the same port and ledger; returns once ``brokers`` noticed the outage and
        are connected (and re-synced) again."""
        self.stop()
        for broker in brokers:
            eventually(lambda: broker.state == "reconnecting")  # not the stale "connected" from before
        self.start()
        for broker in brokers:
            eventually(lambda: broker.state == "connected", timeout=30)

    def requests(self, msg_id: str, client_id: int | None = None) -> list[list[str]]:
        """Requests of one message id the current emulator received (startApi is "71", placeOrder "3")."""
        return [f for f in self.emulator.requests(client_id) if f[0] == msg_id]

    def close(self) -> None:
        self.stop()
        self.engine.close()


def hold_client_id(port: int, client_id: int) -> socket.socket:
    """Another program's API session holding ``client_id`` (a bare handshake and startApi); close the socket to
    free it."""
    from workbench.emulators.tws.codec import encode

    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    greeting = b"v157..178"
    sock.sendall(b"API\0" + len(greeting).to_bytes(4, "big") + greeting)
    size = int.from_bytes(sock.recv(4), "big")
    while size > 0:
        size -= len(sock.recv(size))
    sock.sendall(encode([71, 2, client_id, ""]))
    return sock


def _fast_clock() -> Callable[[], datetime]:
    """Ten sim minutes per second, from a Wednesday 10:00 New York (market open)."""
    start, origin = datetime(2026, 11, 18, 15, 0, tzinfo=UTC), time.monotonic()
    return lambda: start + timedelta(seconds=(time.monotonic() - origin) * 600)


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """``request.param`` (indirect, a dict) goes to :class:`Gateway`."""
    gw = Gateway(tmp_path, **dict(getattr(request, "param", {})))
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture
def proxy(gateway: Gateway) -> Iterator[Proxy]:
    p = Proxy(gateway.port).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def ib_settings(settings_dict: dict[str, Any]) -> Any:
    """``ib_settings(port, **ib)``: settings for an ib Broker with quick reconnects."""

    def make(port: int, **ib: Any) -> dict[str, Any]:
        return {**settings_dict, "ib": {"port": port, "client_id": 5, "connect_timeout": 3,
                                        "reconnect_max_delay": 0.5, **ib}}

    return make


@pytest.fixture
def brokers() -> Iterator[list[workbench.Broker]]:
    """Brokers a test opens; closed at teardown (a test may close them itself)."""
    made: list[workbench.Broker] = []
    yield made
    for broker in made:
        broker.close()


@pytest.fixture
def connect(ib_settings: Any, brokers: list[workbench.Broker]) -> Any:
    """``connect(port, **ib)`` -> a connected ib Broker, closed at teardown."""

    def make(port: int, **ib: Any) -> workbench.Broker:
        broker = workbench.connect("ib", settings=ib_settings(port, **ib))
        brokers.append(broker)
        return broker

    return make
