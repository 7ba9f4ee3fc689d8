"""Shared fixtures: every test gets its own paper ledger and a clean environment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ENV_VARS = ("BROKER_TYPE", "IBKR_GATEWAY_HOST", "IBKR_GATEWAY_PORT", "IBKR_CLIENT_ID", "WORKBENCH_SETTINGS",
            "WORKBENCH_PAPER_DB", "ALPACA_API_KEY", "ALPACA_SECRET_KEY")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray settings from the developer's environment; the paper ledger in a temp folder."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    db = tmp_path / "paper.sqlite"
    monkeypatch.setenv("WORKBENCH_PAPER_DB", str(db))
    return db


class ManualClock:
    """A clock tests move by hand. Thread-safe."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


@pytest.fixture
def clock() -> ManualClock:
    """Starts on a Wednesday at 15:00 UTC (10:00 New York), market open."""
    return ManualClock(datetime(2026, 11, 18, 15, 0, tzinfo=UTC))


def eventually(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01,
               sleep: Callable[[float], object] = time.sleep) -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.

    ``sleep`` waits between polls (``ib.sleep`` keeps an ib_async client's loop running meanwhile).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        sleep(interval)


@pytest.fixture
def settings_dict(isolated_env: Path) -> dict:
    """Settings merged over the defaults for tests: zero slippage/commission unless a test says so."""
    return {"paper": {"db_path": str(isolated_env), "slippage_bps": 0, "commission": 0, "tick_interval": 0.02}}


@pytest.fixture
def engine_factory(tmp_path: Path, clock: ManualClock) -> Iterator[Callable[..., object]]:
    """Build PaperEngines over a sim provider sharing ``clock``; closed at teardown."""
    from workbench.paper.config import PaperConfig
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    made: list[PaperEngine] = []

    def make(db: Path | None = None, **config: object) -> PaperEngine:
        cfg = {"db_path": str(db or tmp_path / "engine.sqlite"), "slippage_bps": 0, "commission": 0, **config}
        engine = PaperEngine(PaperConfig(**cfg), SimProvider(clock=clock), clock=clock)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        try:
            engine.close()
        except Exception:
            pass


@pytest.fixture(autouse=True)
def restore_adapter_registry() -> Iterator[None]:
    """Adapters a test registers do not leak into other tests."""
    from workbench.adapters.factory import registry

    saved = dict(registry._targets)
    yield
    registry._targets.clear()
    registry._targets.update(saved)
