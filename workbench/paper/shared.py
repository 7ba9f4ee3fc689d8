"""One engine per ledger file in a process, shared by every adapter that opens it.

Re-running ``workbench.connect()`` in a notebook cell opens the same ledger again. Two engines on one
file would hand out order ids from two counters and overwrite each other's rows, so the second
connect *shares* the live engine instead (reference-counted): both Brokers see the same orders, ids
and cash, and the engine (with its ticker) stops when the last of them closes. Sharing, rather than
replacing, never breaks a Broker that is still in use (a desk widget holding its own, say).

A ledger is known by its resolved path: ``./x.sqlite``, ``/abs/x.sqlite`` and a symlink to it are one
ledger. A connect that arrives while the last owner is still closing the engine waits for the close
and then opens the file afresh (never a "ledger in use" error from its own process).

Sharing needs the same paper settings and the same price source; anything else is a ConfigError that
says what differs (the open engine would otherwise silently apply settings that were not asked for).
Another *process* on the same file is refused by the ledger's file lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import BrokerUnavailable, ConfigError
from workbench.marketdata.base import MarketDataProvider

from .config import PaperConfig
from .engine import PaperEngine

__all__ = ["EngineLease", "acquire", "live_engines", "ledger_key"]

#: How long a connect waits for the previous owner's engine to finish closing.
CLOSE_WAIT = 60.0

_lock = threading.Lock()
_engines: dict[str, _Entry] = {}


@dataclass
class _Entry:
    engine: PaperEngine
    fingerprint: dict[str, Any]
    owners: int = 1
    closed: threading.Event = field(default_factory=threading.Event)  # set once the last owner closed it


class EngineLease:
    """A share of a live engine; :meth:`release` once (the last release closes the engine)."""

    def __init__(self, key: str | None, entry: _Entry) -> None:
        self._key = key
        self._entry: _Entry | None = entry
        self.engine = entry.engine

    def release(self) -> None:
        with _lock:
            entry, self._entry = self._entry, None
            if entry is None:
                return
            entry.owners -= 1
            if entry.owners:
                return
        # The last owner: the entry stays registered (owners 0: closing) until the file is released, so
        # that a connect meanwhile waits for it instead of colliding with the still-held file lock.
        try:
            entry.engine.close()
        finally:
            with _lock:
                if self._key is not None and _engines.get(self._key) is entry:
                    del _engines[self._key]
            entry.closed.set()


def ledger_key(config: PaperConfig) -> str | None:
    """The identity of ``config``'s ledger file (its resolved path); None for an in-memory ledger."""
    return None if config.db_file == ":memory:" else str(Path(config.db_file).resolve())


def acquire(config: PaperConfig, prices: MarketDataProvider, clock: Callable[[], datetime] | None = None, *,
            sources: dict[str, Any] | None = None) -> EngineLease:
    """The live engine of ``config.db_path`` in this process (shared), or a new one with its ticker started.

    ``sources`` describes where prices and time come from (market-data settings, injected objects); it
    must match for two adapters to share an engine. The path's spelling need not (the key is the file).
    """
    settings = {f"paper.{k}": v for k, v in config.model_dump().items() if k != "db_path"}
    fingerprint = {**settings, **(sources or {})}
    key = ledger_key(config)
    if key is None:  # nothing to share: every in-memory ledger is its own
        return EngineLease(None, _Entry(_start(config, prices, clock), fingerprint))
    while True:
        with _lock:
            entry = _engines.get(key)
            if entry is None or entry.engine.closed and entry.owners:  # (closed behind the registry's back)
                entry = _Entry(_start(config, prices, clock), fingerprint)
                _engines[key] = entry
                return EngineLease(key, entry)
            if entry.owners:
                _check_same(key, entry, fingerprint)
                entry.owners += 1
                return EngineLease(key, entry)
            closing = entry  # its last owner is closing it right now
        if not closing.closed.wait(CLOSE_WAIT):
            raise BrokerUnavailable(f"the paper ledger {key} is still closing after {CLOSE_WAIT:.0f} s; retry",
                                    broker="paper", code="ledger_closing")


def _check_same(key: str, entry: _Entry, fingerprint: dict[str, Any]) -> None:
    differs = sorted(k for k in fingerprint.keys() | entry.fingerprint.keys()
                     if fingerprint.get(k) != entry.fingerprint.get(k))
    if differs:
        detail = "; ".join(f"{k}: {entry.fingerprint.get(k)!r} open, {fingerprint.get(k)!r} asked" for k in differs)
        raise ConfigError(f"the paper ledger {key} is already open in this process with other settings "
                          f"({detail}); close the Broker using it first (broker.close()), or use another "
                          "paper.db_path", key="paper.db_path", broker="paper", code="ledger_shared")


def _start(config: PaperConfig, prices: MarketDataProvider, clock: Callable[[], datetime] | None) -> PaperEngine:
    engine = PaperEngine(config, prices, clock=clock)
    engine.start_ticker(config.tick_interval)
    return engine


def live_engines() -> dict[str, int]:
    """Ledger path -> number of owners, for every shared engine alive in this process (0: closing)."""
    with _lock:
        return {key: entry.owners for key, entry in _engines.items()}
