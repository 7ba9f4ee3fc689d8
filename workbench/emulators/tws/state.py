"""What the emulated gateway remembers beyond the paper ledger, in a small SQLite file beside it.

The ledger knows orders by the engine's ids; a gateway also promises that an order keeps the IB order
id and client id it was placed with, a permId that never changes, and execution ids that are unique
(not only within one ledger: ib_async drops a fill whose exec id it has seen before, even from another
gateway). So the emulator records, per engine order, ``(orderId, clientId, permId)``, and per ledger a
random exec-id prefix and permId base. For an in-memory ledger the state is in memory too.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from pathlib import Path
from typing import NamedTuple

__all__ = ["GatewayState", "IbIds", "state_path_for"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    engine_id TEXT PRIMARY KEY,
    order_id INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    perm_id INTEGER NOT NULL UNIQUE
);
"""


class IbIds(NamedTuple):
    order_id: int
    client_id: int
    perm_id: int


def state_path_for(db_file: Path | str) -> str:
    """``gw.sqlite`` -> ``gw.tws.sqlite`` next to it; ``:memory:`` stays in memory."""
    if str(db_file) == ":memory:":
        return ":memory:"
    path = Path(db_file)
    return str(path.with_name(f"{path.stem}.tws{path.suffix or '.sqlite'}"))


class GatewayState:
    """IB ids per engine order, the exec-id prefix and the permId counter. Thread-safe."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._lock:
            self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if "exec_prefix" not in meta:
                meta = {"exec_prefix": secrets.token_hex(4), "perm_base": str(secrets.randbelow(9 * 10**8) + 10**8)}
                with self._db:
                    self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
            self.exec_prefix: str = meta["exec_prefix"]
            row = self._db.execute("SELECT MAX(perm_id) FROM orders").fetchone()
            self._next_perm = max(int(meta["perm_base"]), (row[0] or 0) + 1)
            self._ids = {engine_id: IbIds(*ids) for engine_id, *ids in
                         self._db.execute("SELECT engine_id, order_id, client_id, perm_id FROM orders")}

    def get(self, engine_id: str) -> IbIds | None:
        return self._ids.get(engine_id)

    def new_perm_id(self) -> int:
        with self._lock:
            perm, self._next_perm = self._next_perm, self._next_perm + 1
            return perm

    def record(self, engine_id: str, ids: IbIds) -> None:
        """Remember the IB ids of an engine order (one transaction; the first record of an order wins)."""
        with self._lock:
            if engine_id in self._ids:
                return
            with self._db:
                self._db.execute("INSERT OR IGNORE INTO orders (engine_id, order_id, client_id, perm_id) "
                                 "VALUES (?, ?, ?, ?)", (engine_id, *ids))
            self._ids[engine_id] = ids

    def exec_id(self, perm_id: int, fill_no: int) -> str:
        """IB-shaped and unique per ledger: ``<prefix>.<permId hex>.<fill no>.01``."""
        return f"{self.exec_prefix}.{perm_id:08x}.{fill_no:02d}.01"

    def close(self) -> None:
        with self._lock:
            self._db.close()
