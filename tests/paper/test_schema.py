"""Ledger files: schema_version checked on open, v1 -> v2 migration, files that are not ledgers."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from workbench.core.enums import OrderStatus
from workbench.core.errors import ConfigError
from workbench.core.models import NeutralOrder
from workbench.paper.ledger import SCHEMA_VERSION, Ledger

D = Decimal
V1_DUMP = Path(__file__).parent / "fixtures" / "ledger_v1.sql"
COMMISSION = {"per_order": "1", "per_share": "0.01", "minimum": "1.5"}


def v1_file(tmp_path: Path) -> Path:
    """The ledger the v1 engine wrote (see the dump's first line for how it was made)."""
    db = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(V1_DUMP.read_text())
    conn.close()
    return db


def test_v1_ledger_is_migrated_in_place_keeping_every_order_fill_and_balance(engine_factory, tmp_path):
    db = v1_file(tmp_path)
    raw = sqlite3.connect(db)
    v1_orders = raw.execute("SELECT order_id, client_order_id, qty, status, filled_qty, avg_fill_price FROM orders "
                            "ORDER BY order_id").fetchall()
    v1_fills = raw.execute("SELECT * FROM fills ORDER BY exec_id").fetchall()
    v1_cash = raw.execute("SELECT cash FROM account").fetchone()[0]
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    raw.close()

    engine = engine_factory(db=db, commission=COMMISSION, partial_fill_fraction=D("0.5"))
    assert engine.ledger.schema_version == SCHEMA_VERSION == 2
    got = [(o.order_id, o.client_order_id, str(o.qty), o.status.value, str(o.filled_qty),
            None if o.avg_fill_price is None else str(o.avg_fill_price))
           for o in sorted(engine.orders(), key=lambda o: o.order_id)]
    assert got == [(a, b, c, d, e, f) for a, b, c, d, e, f in v1_orders]
    assert [tuple(r) for r in engine.ledger._query("SELECT * FROM fills ORDER BY exec_id")] == v1_fills
    assert engine.cash == D(v1_cash)
    # The commission already charged moved onto each order: the v1 sell's rest costs nothing more.
    assert engine.ledger.order("P000000001").commission == D(3)
    sell = engine.ledger.order("P000000004")
    assert sell.commission == D("1.5") and sell.status is OrderStatus.PARTIALLY_FILLED
    engine.on_price("AAPL", D(150))
    assert engine.get_order("v1-sell").status is OrderStatus.FILLED
    assert engine.fills(order_id="P000000004")[-1].commission == 0
    # New orders continue the id sequence and use the new columns.
    new = engine.submit(NeutralOrder(symbol="AAPL", side="buy", notional=100))
    assert new.order_id == "P000000005" and new.notional == 100
    engine.close()
    again = engine_factory(db=db, commission=COMMISSION)  # reopening a migrated file changes nothing
    assert again.ledger.schema_version == 2 and again.get_order(new.order_id).notional == 100


def test_failed_migration_leaves_the_v1_file_as_it_was(tmp_path, monkeypatch):
    from workbench.paper import schema

    db = v1_file(tmp_path)
    before = list(sqlite3.connect(db).iterdump())

    def broken(cur, version):
        cur.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(schema, "migrate", broken)
    with pytest.raises(Exception) as info:
        Ledger(db, D(100000))
    assert not isinstance(info.value, sqlite3.Error)  # typed
    assert list(sqlite3.connect(db).iterdump()) == before


def test_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    db = tmp_path / "future.sqlite"
    Ledger(db, D(1000)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError) as info:
        Ledger(db, D(1000))
    assert info.value.key == "paper.db_path" and "schema version 9" in str(info.value)
    assert "newer" in str(info.value) and str(db) in str(info.value)
    Ledger(tmp_path / "other.sqlite", D(1000)).close()  # and the refusal released the file lock
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    Ledger(db, D(1000)).close()


@pytest.mark.parametrize("content", [b"this is a CSV, not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4080],
                         ids=["text", "corrupt-header"])
def test_a_file_that_is_not_sqlite_is_a_config_error_naming_db_path(tmp_path, content):
    db = tmp_path / "notes.sqlite"
    db.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        Ledger(db, D(1000))
    assert info.value.key == "paper.db_path" and str(db) in str(info.value)
    assert db.read_bytes() == content  # untouched


def test_an_sqlite_file_of_another_application_is_refused(tmp_path):
    db = tmp_path / "app.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError) as info:
        Ledger(db, D(1000))
    assert info.value.key == "paper.db_path" and "customers" in str(info.value)


@pytest.mark.parametrize("path", ["/tmp/x\x00y.sqlite", "   "], ids=["nul", "blank"])
def test_nul_byte_or_blank_db_path_is_a_config_error(path):
    import workbench

    with pytest.raises(ConfigError) as info:
        workbench.connect("paper", settings={"paper": {"db_path": path}})
    assert info.value.key == "paper.db_path"


def test_ledger_refuses_a_nul_byte_path_itself():
    with pytest.raises(ConfigError) as info:
        Ledger("/tmp/x\x00y.sqlite", D(1000))
    assert info.value.key == "paper.db_path"


def test_a_folder_as_db_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        Ledger(tmp_path, D(1000))
    assert info.value.key == "paper.db_path"


@pytest.mark.parametrize("path", ["/dev/null", "/dev/zero"])
def test_a_device_as_db_path_is_a_config_error(path):
    import workbench

    with pytest.raises(ConfigError) as info:
        workbench.connect("paper", settings={"paper": {"db_path": path}})
    assert info.value.key == "paper.db_path" and "regular file" in str(info.value)


def test_a_path_sqlite_cannot_open_is_a_config_error_naming_db_path(tmp_path, monkeypatch):
    """SQLite reads ``file:...?mode=ro`` as a read-only URI of a file that does not exist."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        Ledger("file:x?mode=ro", D(1000))
    assert info.value.key == "paper.db_path" and isinstance(info.value.__cause__, Exception)
