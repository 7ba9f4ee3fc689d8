"""The paper broker's durable ledger: SQLite (stdlib, WAL), one transaction per state change.

Decimals are stored as TEXT (exact), timestamps as INTEGER nanoseconds since the epoch (UTC).
Reopening the file restores the exact state: cash, positions, every order and every fill.

One process owns a ledger file at a time: :class:`Ledger` holds an exclusive lock on a sidecar
``<db>.lock`` file (which also records the owner's pid) for as long as it is open. Every SQLite
failure leaves this module as a typed workbench error (:func:`sqlite_errors`), never a raw ``sqlite3``
exception.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import BrokerError, BrokerUnavailable, ConfigError, WorkbenchError
from workbench.core.models import FillEvent

from . import schema
from .schema import ORDER_COLS, SCHEMA_VERSION

__all__ = ["Ledger", "OrderRow", "FillRow", "Change", "SCHEMA_VERSION", "sqlite_errors"]

_KEY = "paper.db_path"
_BROKER = "paper"

_COLS = ", ".join(ORDER_COLS)
_INSERT_ORDER = f"INSERT INTO orders ({_COLS}) VALUES ({', '.join('?' for _ in ORDER_COLS)})"
_UPDATE_ORDER = f"UPDATE orders SET {', '.join(f'{c} = ?' for c in ORDER_COLS[1:])} WHERE order_id = ?"
_INSERT_FILL = ("INSERT INTO fills (exec_id, order_id, client_order_id, symbol, side, qty, price, commission, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_POSITION = ("INSERT INTO positions (symbol, qty, avg_price) VALUES (?, ?, ?) "
                    "ON CONFLICT (symbol) DO UPDATE SET qty = excluded.qty, avg_price = excluded.avg_price")
_UPDATE_CASH = "UPDATE account SET cash = ? WHERE id = 1"

_INT64 = (-(2**63), 2**63 - 1)


_last_ns: tuple[datetime | None, int] = (None, 0)


def to_ns(ts: datetime) -> int:
    """Epoch nanoseconds, clamped to SQLite's INTEGER range (dates past 2262 compare as 'forever')."""
    global _last_ns
    last, ns = _last_ns
    if ts is last:  # one change stamps its order and fill with the same instant: convert it once
        return ns
    ns = min(max(int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000, _INT64[0]), _INT64[1])
    _last_ns = (ts, ns)
    return ns


def from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _txt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _ns(ts: datetime | None) -> int | None:
    return None if ts is None else to_ns(ts)


def _dt(ns: int | None) -> datetime | None:
    return None if ns is None else from_ns(ns)


# -- errors ---------------------------------------------------------------------------------


@contextmanager
def sqlite_errors(path: str, action: str) -> Iterator[None]:
    """Map every ``sqlite3`` exception raised inside to one typed workbench error (``raw``: SQLite's code)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _typed(exc, path, action) from exc


def _typed(exc: sqlite3.Error, path: str, action: str) -> WorkbenchError:
    code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    text = f"{action}: {exc}"
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc).lower():
        return BrokerUnavailable(f"the paper ledger {path} is closed", broker=_BROKER, code="closed", raw=code)
    if isinstance(exc, sqlite3.IntegrityError):
        return BrokerError(f"{text} (the ledger refused a conflicting write; nothing was recorded)",
                           broker=_BROKER, code="ledger_conflict", raw=code)
    if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in str(exc):
        return ConfigError(f"{path} is not a usable SQLite ledger ({exc})", key=_KEY, broker=_BROKER, raw=code)
    if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return BrokerUnavailable(f"{text} (the ledger is busy; retry)", broker=_BROKER, code="ledger_busy", raw=code)
    return BrokerError(text, broker=_BROKER, code="ledger_error", raw=code)


def _rollback(conn: sqlite3.Connection) -> None:
    """End the failed transaction, if SQLite has not already, so the next write starts clean."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # pragma: no cover - the original error is the one to report
            pass


# -- the one-owner lock -----------------------------------------------------------------------


class OwnerLock:
    """An exclusive ``flock`` on ``<db>.lock``, held while the ledger is open; records the owner's pid.

    ``flock`` locks belong to an open file, so a second :class:`Ledger` on the same file is refused
    in the same process too, and the lock goes away with the process (``kill -9`` included).
    """

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".lock")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no cross-process guard
            self._fd = None
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot create the ledger lock {self.path}: {exc.strerror}", key=_KEY,
                              broker=_BROKER) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            here = owner is not None and owner[0] == os.getpid()
            who = ("this process" if here else "another process") + (f" (pid {owner[0]}: {owner[1]})" if owner else "")
            hint = ("workbench.connect() shares one engine per ledger; close the other engine first" if here
                    else "close the broker there, or point paper.db_path at another file")
            raise BrokerUnavailable(f"the paper ledger {db} is already open in {who}; {hint}", broker=_BROKER,
                                    code="ledger_locked", raw=owner[0] if owner else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {' '.join(sys.argv)[:200]}\n".encode(errors="replace"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None


def _read_owner(fd: int) -> tuple[int, str] | None:
    try:
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
        pid, _, command = text.partition(" ")
        return int(pid), command
    except (OSError, ValueError):
        return None


# -- rows ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class OrderRow:
    """The engine's working copy of one order (mutable only inside the engine's lock)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal | None  # None: a notional order not yet sized
    order_type: OrderType
    tif: TimeInForce
    limit_price: Decimal | None
    stop_price: Decimal | None  # a TRAILING_STOP's current trigger
    status: OrderStatus
    raw_status: str
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    created_at: datetime
    updated_at: datetime
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    notional: Decimal | None = None
    best_price: Decimal | None = None  # TRAILING_STOP: the best price since acceptance
    commission: Decimal = Decimal(0)  # charged so far
    triggered: bool = False
    not_before: datetime | None = None  # OPG/CLS: no execution before this time
    expires_at: datetime | None = None  # DAY: the session close; OPG/CLS: the end of their auction window
    fills: int = 0

    def params(self) -> tuple[Any, ...]:
        """Values in :data:`~workbench.paper.schema.ORDER_COLS` order."""
        return (self.order_id, self.client_order_id, self.symbol, self.side.value, _txt(self.qty),
                self.order_type.value, self.tif.value, _txt(self.limit_price), _txt(self.stop_price),
                _txt(self.trail_price), _txt(self.trail_percent), _txt(self.notional), _txt(self.best_price),
                self.status.value, self.raw_status, str(self.filled_qty), _txt(self.avg_fill_price),
                str(self.commission), to_ns(self.created_at), to_ns(self.updated_at), int(self.triggered),
                _ns(self.not_before), _ns(self.expires_at), self.fills)

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> OrderRow:
        return cls(order_id=r[0], client_order_id=r[1], symbol=r[2], side=Side(r[3]), qty=_dec(r[4]),
                   order_type=OrderType(r[5]), tif=TimeInForce(r[6]), limit_price=_dec(r[7]), stop_price=_dec(r[8]),
                   trail_price=_dec(r[9]), trail_percent=_dec(r[10]), notional=_dec(r[11]), best_price=_dec(r[12]),
                   status=OrderStatus(r[13]), raw_status=r[14], filled_qty=Decimal(r[15]), avg_fill_price=_dec(r[16]),
                   commission=Decimal(r[17]), created_at=from_ns(r[18]), updated_at=from_ns(r[19]),
                   triggered=bool(r[20]), not_before=_dt(r[21]), expires_at=_dt(r[22]), fills=r[23])


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

    orders: list[OrderRow] = field(default_factory=list)  # existing orders, updated
    new_orders: list[OrderRow] = field(default_factory=list)  # INSERTed: a clash is an error, never an overwrite
    fills: list[FillRow] = field(default_factory=list)
    positions: dict[str, tuple[Decimal, Decimal] | None] = field(default_factory=dict)  # None = closed
    cash: Decimal | None = None
    last_equity: tuple[Decimal, str] | None = None


# -- the ledger ---------------------------------------------------------------------------------


class Ledger:
    """SQLite-backed state of one paper account. Thread-safe; every :meth:`commit` is one transaction."""

    def __init__(self, path: str | Path, starting_cash: Decimal, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        if "\x00" in self.path:
            raise ConfigError("the ledger path contains a NUL byte", key=_KEY, broker=_BROKER)
        self._lock = threading.RLock()
        self._owner: OwnerLock | None = None
        if self.path != ":memory:":
            file = Path(self.path)
            if file.is_dir():
                raise ConfigError(f"{file} is a folder, not a ledger file", key=_KEY, broker=_BROKER)
            if file.exists() and not file.is_file():  # /dev/null, a pipe, a socket
                raise ConfigError(f"{file} is not a regular file, so it cannot be a ledger", key=_KEY, broker=_BROKER)
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the ledger folder: {exc.strerror}", key=_KEY,
                                  broker=_BROKER) from exc
            # The lock sits next to the real file: a symlink or another spelling of the path is the same ledger.
            self._owner = OwnerLock(file.resolve())
        try:
            with sqlite_errors(self.path, f"cannot open the ledger {self.path}"):
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self._open(starting_cash, synchronous)
            except BaseException:
                self._conn.close()
                raise
        except BrokerError as exc:
            if self._owner is not None:
                self._owner.release()
            if exc.code != "ledger_error":  # busy or closed: not the path's fault
                raise
            # A path SQLite cannot open or write as a database is a setting to change, not a broker fault.
            raise ConfigError(f"{exc.message} (paper.db_path must name a writable SQLite ledger file)", key=_KEY,
                              broker=_BROKER, raw=exc.raw) from exc
        except BaseException:
            if self._owner is not None:
                self._owner.release()
            raise

    def _open(self, starting_cash: Decimal, synchronous: str) -> None:
        with sqlite_errors(self.path, f"cannot open the ledger {self.path}"):
            execute = self._conn.execute
            execute("PRAGMA busy_timeout=2000")
            execute("PRAGMA foreign_keys=OFF")  # on after a migration (which rebuilds a referenced table)
            # Read-only checks first: a file that is not ours, or a newer ledger, is refused before anything
            # (even the switch to WAL, which rewrites the file header) is written to it.
            self._check(execute)
            execute("PRAGMA journal_mode=WAL")
            execute(f"PRAGMA synchronous={synchronous}")
        with self.transaction() as cur:
            version = self._check(cur.execute)  # again, now inside the write transaction
            if version == 0:
                schema.create(cur)
            elif version < SCHEMA_VERSION:
                schema.migrate(cur, version)
            cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('starting_cash', ?)", (str(starting_cash),))
            cur.execute("INSERT OR IGNORE INTO account (id, cash, last_equity) VALUES (1, ?, ?)",
                        (str(starting_cash), str(starting_cash)))
            broken = cur.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise ConfigError(f"the ledger {self.path} has fills of unknown orders ({len(broken)})", key=_KEY,
                                  broker=_BROKER)
        with sqlite_errors(self.path, "cannot open the ledger"):
            self._conn.execute("PRAGMA foreign_keys=ON")
        self.starting_cash = Decimal(self._query("SELECT value FROM meta WHERE key = 'starting_cash'")[0][0])

    def _check(self, execute: Any) -> int:
        """The file's schema version (0: an empty file); ConfigError for another application's SQLite file
        or a ledger newer than this workbench. Reads only."""
        tables = {r[0] for r in execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise ConfigError(f"{self.path} is an SQLite file but not a workbench ledger "
                                  f"(tables: {', '.join(sorted(tables))})", key=_KEY, broker=_BROKER)
            return 0
        version = self._version(execute)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"the ledger {self.path} has schema version {version}, newer than this workbench "
                              f"understands ({SCHEMA_VERSION}); upgrade workbench or use another paper.db_path",
                              key=_KEY, broker=_BROKER, code="schema_too_new")
        return version

    def _version(self, execute: Any) -> int:
        row = execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0]) if row else 1
        except ValueError:
            raise ConfigError(f"the ledger {self.path} has an unreadable schema_version {row[0]!r}", key=_KEY,
                              broker=_BROKER) from None

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error; SQLite errors come out typed."""
        with self._lock, sqlite_errors(self.path, "ledger write failed"):
            cur = self._live().cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                _rollback(self._conn)
                raise

    def commit(self, change: Change) -> None:
        """Write one state change atomically (the hot path: no generator-based context manager)."""
        with self._lock:
            conn = self._live()
            try:
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    self._write(cur, change)
                    cur.execute("COMMIT")
                except BaseException:  # a failed COMMIT too may leave the transaction open (SQLite docs)
                    _rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise _typed(exc, self.path, "ledger write failed") from exc

    def _write(self, cur: sqlite3.Cursor, change: Change) -> None:
        execute = cur.execute
        for o in change.new_orders:
            try:
                execute(_INSERT_ORDER, o.params())
            except sqlite3.IntegrityError as exc:
                raise BrokerError(f"the ledger already has order {o.order_id} or client_order_id "
                                  f"{o.client_order_id!r}; nothing was recorded", broker=_BROKER,
                                  code="ledger_conflict", raw=str(exc)) from exc
        for o in change.orders:
            params = o.params()
            execute(_UPDATE_ORDER, params[1:] + params[:1])
            if cur.rowcount != 1:
                raise BrokerError(f"order {o.order_id} is missing from the ledger; nothing was recorded",
                                  broker=_BROKER, code="ledger_conflict")
        for f in change.fills:
            execute(_INSERT_FILL, (f.exec_id, f.broker_id, f.local_id, f.symbol, f.side.value, str(f.qty),
                                   str(f.price), str(f.commission), to_ns(f.ts)))
        for symbol, pos in change.positions.items():
            if pos is None:
                execute("DELETE FROM positions WHERE symbol = ?", (symbol,))
            else:
                execute(_UPSERT_POSITION, (symbol, str(pos[0]), str(pos[1])))
        if change.cash is not None:
            execute(_UPDATE_CASH, (str(change.cash),))
        if change.last_equity is not None:
            execute("UPDATE account SET last_equity = ?, last_equity_date = ? WHERE id = 1",
                    (str(change.last_equity[0]), change.last_equity[1]))

    # -- reads ------------------------------------------------------------------------------

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock, sqlite_errors(self.path, "ledger read failed"):
            return self._live().execute(sql, tuple(params)).fetchall()

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BrokerUnavailable(f"the paper ledger {self.path} is closed", broker=_BROKER, code="closed")
        return self._conn

    def account(self) -> tuple[Decimal, Decimal, str]:
        cash, last_equity, day = self._query("SELECT cash, last_equity, last_equity_date FROM account WHERE id = 1")[0]
        return Decimal(cash), Decimal(last_equity), day

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {s: (Decimal(q), Decimal(a)) for s, q, a in self._query("SELECT symbol, qty, avg_price FROM positions")}

    def open_orders(self) -> list[OrderRow]:
        rows = self._query(f"SELECT {_COLS} FROM orders WHERE status IN {schema.OPEN_STATUSES} ORDER BY created_at")
        return [OrderRow.from_db(r) for r in rows]

    def client_ids(self) -> dict[str, str]:
        """Every client order id -> order id."""
        return dict(self._query("SELECT client_order_id, order_id FROM orders"))

    def order_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM orders")[0][0])

    def last_order_seq(self) -> int:
        """The highest sequence number among the engine's order ids (``P000000042`` -> 42), 0 if none."""
        row = self._query("SELECT MAX(CAST(SUBSTR(order_id, 2) AS INTEGER)) FROM orders "
                          "WHERE order_id GLOB 'P[0-9]*'")[0][0]
        return int(row or 0)

    def order(self, order_id: str) -> OrderRow | None:
        rows = self._query(f"SELECT {_COLS} FROM orders WHERE order_id = ?", (order_id,))
        return OrderRow.from_db(rows[0]) if rows else None

    def orders(self, limit: int | None = None, since: datetime | None = None) -> list[OrderRow]:
        """Most recent first."""
        sql = f"SELECT {_COLS} FROM orders"
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

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Close the connection and release the file (idempotent)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None  # type: ignore[assignment]
                    if self._owner is not None:
                        self._owner.release()
