"""The paper ledger's SQLite schema, its version, and the migrations from older versions.

``meta.schema_version`` says which schema a file has. Opening a file with an older version migrates it
in one transaction; a newer version (written by a later workbench) is refused.

Version history:

- 1: the first ledger.
- 2: ``orders.qty`` may be NULL (a notional order not yet sized); orders carry ``trail_price``,
  ``trail_percent``, ``notional``, ``best_price`` (a trailing stop's high/low-water mark) and
  ``commission`` (charged so far, so per-order and minimum commissions are charged once per order).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

__all__ = ["SCHEMA_VERSION", "create", "migrate", "ORDER_COLS", "OPEN_STATUSES"]

SCHEMA_VERSION = 2

OPEN_STATUSES = "('PENDING_NEW', 'NEW', 'PARTIALLY_FILLED', 'PENDING_CANCEL')"

_ORDERS = """
CREATE TABLE {name} (
    order_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT,
    order_type TEXT NOT NULL,
    tif TEXT NOT NULL,
    limit_price TEXT,
    stop_price TEXT,
    trail_price TEXT,
    trail_percent TEXT,
    notional TEXT,
    best_price TEXT,
    status TEXT NOT NULL,
    raw_status TEXT NOT NULL,
    filled_qty TEXT NOT NULL,
    avg_fill_price TEXT,
    commission TEXT NOT NULL DEFAULT '0',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    triggered INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER,
    expires_at INTEGER,
    fills INTEGER NOT NULL DEFAULT 0
)"""

_TABLES = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cash TEXT NOT NULL,
    last_equity TEXT NOT NULL,
    last_equity_date TEXT NOT NULL DEFAULT ''
);
{_ORDERS.format(name="orders")};
CREATE TABLE fills (
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
CREATE INDEX fills_ts ON fills (ts);
CREATE INDEX fills_order ON fills (order_id);
CREATE TABLE positions (symbol TEXT PRIMARY KEY, qty TEXT NOT NULL, avg_price TEXT NOT NULL);
"""

_ORDER_INDEXES = f"""
CREATE INDEX orders_open ON orders (status) WHERE status IN {OPEN_STATUSES};
CREATE INDEX orders_created ON orders (created_at);
"""

#: The orders columns, in the order :class:`~workbench.paper.ledger.OrderRow` stores them.
ORDER_COLS = ("order_id", "client_order_id", "symbol", "side", "qty", "order_type", "tif", "limit_price",
              "stop_price", "trail_price", "trail_percent", "notional", "best_price", "status", "raw_status",
              "filled_qty", "avg_fill_price", "commission", "created_at", "updated_at", "triggered", "not_before",
              "expires_at", "fills")

#: Columns a version-1 orders table already had.
_V1_ORDER_COLS = ("order_id", "client_order_id", "symbol", "side", "qty", "order_type", "tif", "limit_price",
                  "stop_price", "status", "raw_status", "filled_qty", "avg_fill_price", "created_at", "updated_at",
                  "triggered", "not_before", "expires_at", "fills")


def create(cur: sqlite3.Cursor) -> None:
    """Create every table of the current version (inside the caller's transaction)."""
    for statement in (_TABLES + _ORDER_INDEXES).split(";"):
        if statement.strip():
            cur.execute(statement)
    cur.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def migrate(cur: sqlite3.Cursor, version: int) -> None:
    """Bring a ledger from ``version`` to :data:`SCHEMA_VERSION` (inside the caller's transaction).

    Foreign keys must be off (the orders table is rebuilt while fills point at it).
    """
    if version < 2:
        _v1_to_v2(cur)
    cur.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


def _v1_to_v2(cur: sqlite3.Cursor) -> None:
    # SQLite cannot drop a NOT NULL constraint in place: rebuild the orders table.
    cur.execute(_ORDERS.format(name="orders_v2"))
    cols = ", ".join(_V1_ORDER_COLS)
    cur.execute(f"INSERT INTO orders_v2 ({cols}) SELECT {cols} FROM orders")
    # Commission charged so far, summed exactly (Decimal, not SQL's floating-point SUM).
    charged: dict[str, Decimal] = {}
    for order_id, commission in cur.execute("SELECT order_id, commission FROM fills").fetchall():
        charged[order_id] = charged.get(order_id, Decimal(0)) + Decimal(commission)
    cur.executemany("UPDATE orders_v2 SET commission = ? WHERE order_id = ?",
                    [(str(c), oid) for oid, c in charged.items()])
    cur.execute("DROP TABLE orders")
    cur.execute("ALTER TABLE orders_v2 RENAME TO orders")
    for statement in _ORDER_INDEXES.split(";"):
        if statement.strip():
            cur.execute(statement)
    cur.execute("CREATE INDEX IF NOT EXISTS fills_order ON fills (order_id)")
