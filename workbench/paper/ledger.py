"""The paper broker's durable ledger: SQLite (stdlib, WAL), one transaction per state change.

Decimals are stored as TEXT (exact), timestamps as INTEGER nanoseconds since the epoch (UTC).
Reopening the file restores the exact state: cash, positions, every order and every fill.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import ConfigError
from workbench.core.models import FillEvent

__all__ = ["Ledger", "OrderRow", "FillRow", "Change"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cash TEXT NOT NULL,
    last_equity TEXT NOT NULL,
    last_equity_date TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    tif TEXT NOT NULL,
    limit_price TEXT,
    stop_price TEXT,
    status TEXT NOT NULL,
    raw_status TEXT NOT NULL,
    filled_qty TEXT NOT NULL,
    avg_fill_price TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    triggered INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER,
    expires_at INTEGER,
    fills INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (status) WHERE status IN ('PENDING_NEW', 'NEW', 'PARTIALLY_FILLED', 'PENDING_CANCEL');
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_ts ON fills (ts);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, qty TEXT NOT NULL, avg_price TEXT NOT NULL);
"""

_ORDER_COLS = ("order_id", "client_order_id", "symbol", "side", "qty", "order_type", "tif", "limit_price",
               "stop_price", "status", "raw_status", "filled_qty", "avg_fill_price", "created_at", "updated_at",
               "triggered", "not_before", "expires_at", "fills")
_UPSERT_ORDER = (f"INSERT INTO orders ({', '.join(_ORDER_COLS)}) VALUES ({', '.join('?' for _ in _ORDER_COLS)}) "
                 f"ON CONFLICT (order_id) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_COLS[1:]))
_INSERT_FILL = ("INSERT INTO fills (exec_id, order_id, client_order_id, symbol, side, qty, price, commission, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_POSITION = ("INSERT INTO positions (symbol, qty, avg_price) VALUES (?, ?, ?) "
                    "ON CONFLICT (symbol) DO UPDATE SET qty = excluded.qty, avg_price = excluded.avg_price")


_INT64 = (-(2**63), 2**63 - 1)


def to_ns(ts: datetime) -> int:
    """Epoch nanoseconds, clamped to SQLite's INTEGER range (dates past 2262 compare as 'forever')."""
    ns = int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
    return min(max(ns, _INT64[0]), _INT64[1])


def from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _txt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(slots=True)
class OrderRow:
    """The engine's working copy of one order (mutable only inside the engine's lock)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    tif: TimeInForce
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: OrderStatus
    raw_status: str
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    created_at: datetime
    updated_at: datetime
    triggered: bool = False
    not_before: datetime | None = None  # OPG/CLS: no execution before this time
    expires_at: datetime | None = None  # DAY: the session close
    fills: int = 0

    def params(self) -> tuple[Any, ...]:
        return (self.order_id, self.client_order_id, self.symbol, self.side.value, str(self.qty),
                self.order_type.value, self.tif.value, _txt(self.limit_price), _txt(self.stop_price),
                self.status.value, self.raw_status, str(self.filled_qty), _txt(self.avg_fill_price),
                to_ns(self.created_at), to_ns(self.updated_at), int(self.triggered),
                None if self.not_before is None else to_ns(self.not_before),
                None if self.expires_at is None else to_ns(self.expires_at), self.fills)

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> OrderRow:
        return cls(row[0], row[1], row[2], Side(row[3]), Decimal(row[4]), OrderType(row[5]), TimeInForce(row[6]),
                   _dec(row[7]), _dec(row[8]), OrderStatus(row[9]), row[10], Decimal(row[11]), _dec(row[12]),
                   from_ns(row[13]), from_ns(row[14]), bool(row[15]),
                   None if row[16] is None else from_ns(row[16]), None if row[17] is None else from_ns(row[17]),
                   row[18])


@dataclass(slots=True)
class FillRow:
    """One execution as the ledger stores it (a FillEvent is built only for listeners)."""

    exec_id: str
    broker_id: str
    local_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    commission: Decimal
    ts: datetime

    def to_event(self, broker: str) -> FillEvent:
        return FillEvent.model_construct(
            broker=broker, local_id=self.local_id, broker_id=self.broker_id, exec_id=self.exec_id,
            symbol=self.symbol, side=self.side, qty=self.qty, price=self.price, commission=self.commission,
            ts=self.ts, raw=None)


@dataclass(slots=True)
class Change:
    """Everything one state change writes, committed in a single transaction."""

    orders: list[OrderRow] = field(default_factory=list)
    fills: list[FillRow] = field(default_factory=list)
    positions: dict[str, tuple[Decimal, Decimal] | None] = field(default_factory=dict)  # None = closed
    cash: Decimal | None = None
    last_equity: tuple[Decimal, str] | None = None


class Ledger:
    """SQLite-backed state of one paper account. Thread-safe; every :meth:`commit` is one transaction."""

    def __init__(self, path: str | Path, starting_cash: Decimal, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the ledger folder: {exc.strerror}", key="paper.db_path") from exc
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the ledger {self.path}: {exc}", key="paper.db_path") from exc
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)
        with self.transaction() as cur:
            cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('starting_cash', ?)", (str(starting_cash),))
            cur.execute("INSERT OR IGNORE INTO account (id, cash, last_equity) VALUES (1, ?, ?)",
                        (str(starting_cash), str(starting_cash)))
        self.starting_cash = Decimal(self._conn.execute(
            "SELECT value FROM meta WHERE key = 'starting_cash'").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def commit(self, change: Change) -> None:
        """Write one state change atomically."""
        with self.transaction() as cur:
            for o in change.orders:
                cur.execute(_UPSERT_ORDER, o.params())
            for f in change.fills:
                cur.execute(_INSERT_FILL, (f.exec_id, f.broker_id, f.local_id, f.symbol, f.side.value, str(f.qty),
                                           str(f.price), str(f.commission), to_ns(f.ts)))
            for symbol, pos in change.positions.items():
                if pos is None:
                    cur.execute("DELETE FROM positions WHERE symbol = ?", (symbol,))
                else:
                    cur.execute(_UPSERT_POSITION, (symbol, str(pos[0]), str(pos[1])))
            if change.cash is not None:
                cur.execute("UPDATE account SET cash = ? WHERE id = 1", (str(change.cash),))
            if change.last_equity is not None:
                cur.execute("UPDATE account SET last_equity = ?, last_equity_date = ? WHERE id = 1",
                            (str(change.last_equity[0]), change.last_equity[1]))

    # -- reads ------------------------------------------------------------------------------

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def account(self) -> tuple[Decimal, Decimal, str]:
        cash, last_equity, day = self._query("SELECT cash, last_equity, last_equity_date FROM account WHERE id = 1")[0]
        return Decimal(cash), Decimal(last_equity), day

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {s: (Decimal(q), Decimal(a)) for s, q, a in self._query("SELECT symbol, qty, avg_price FROM positions")}

    def open_orders(self) -> list[OrderRow]:
        rows = self._query(f"SELECT {', '.join(_ORDER_COLS)} FROM orders WHERE status IN "
                           "('PENDING_NEW', 'NEW', 'PARTIALLY_FILLED', 'PENDING_CANCEL') ORDER BY created_at")
        return [OrderRow.from_db(r) for r in rows]

    def client_ids(self) -> dict[str, str]:
        """Every client order id -> order id."""
        return dict(self._query("SELECT client_order_id, order_id FROM orders"))

    def order_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM orders")[0][0])

    def order(self, order_id: str) -> OrderRow | None:
        rows = self._query(f"SELECT {', '.join(_ORDER_COLS)} FROM orders WHERE order_id = ?", (order_id,))
        return OrderRow.from_db(rows[0]) if rows else None

    def orders(self, limit: int | None = None, since: datetime | None = None) -> list[OrderRow]:
        """Most recent first."""
        sql = f"SELECT {', '.join(_ORDER_COLS)} FROM orders"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE created_at >= ?"
            params.append(to_ns(since))
        sql += " ORDER BY created_at DESC, order_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [OrderRow.from_db(r) for r in self._query(sql, params)]

    def fills(self, since: datetime | None = None, order_id: str | None = None, broker: str = "paper") -> list[FillEvent]:
        """Oldest first."""
        sql = "SELECT exec_id, order_id, client_order_id, symbol, side, qty, price, commission, ts FROM fills"
        clauses, params = [], []
        if since is not None:
            clauses.append("ts >= ?")
            params.append(to_ns(since))
        if order_id is not None:
            clauses.append("order_id = ?")
            params.append(order_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts, rowid"
        return [FillEvent.model_construct(
            broker=broker, exec_id=r[0], broker_id=r[1], local_id=r[2], symbol=r[3], side=Side(r[4]),
            qty=Decimal(r[5]), price=Decimal(r[6]), commission=Decimal(r[7]), ts=from_ns(r[8]), raw=None)
            for r in self._query(sql, params)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
