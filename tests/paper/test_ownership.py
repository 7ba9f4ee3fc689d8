"""One engine per ledger file: shared within a process, locked across processes; clean adapter lifecycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import workbench
from workbench.core.errors import BrokerError, BrokerUnavailable, ConfigError, WorkbenchError
from workbench.core.models import NeutralOrder
from workbench.paper import shared

from tests.conftest import eventually

D = Decimal


def tickers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("workbench-paper-ticker")]


def test_reconnecting_in_the_same_process_shares_one_engine(settings_dict, isolated_env):
    first = workbench.connect("paper", settings=settings_dict)
    second = workbench.connect("paper", settings=settings_dict)  # a re-run notebook cell
    try:
        assert first.adapter.engine is second.adapter.engine
        assert shared.live_engines() == {str(isolated_env.resolve()): 2} and len(tickers()) == 1
        a = first.place_market_order("AAPL", 2, "buy")
        b = second.place_market_order("AAPL", 3, "buy")
        assert (a.order_id, b.order_id) == ("P000000001", "P000000002")
        fills = first.get_fills()
        assert list(fills["order_id"]) == [a.order_id, b.order_id]
        start = D(100000)
        assert first.get_account().cash == second.get_account().cash \
            == start - sum(D(str(q)) * D(str(p)) for q, p in zip(fills["qty"], fills["price"]))
        first.close()
        assert second.place_market_order("AAPL", 1, "sell").order_id == "P000000003"  # still alive
        assert shared.live_engines() == {str(isolated_env.resolve()): 1}
    finally:
        first.close()
        second.close()
    assert shared.live_engines() == {}
    eventually(lambda: not tickers())  # the last owner stopped the engine and its ticker


def test_many_reconnects_without_closing_keep_one_engine_and_consistent_ids(settings_dict):
    brokers = [workbench.connect("paper", settings=settings_dict) for _ in range(5)]
    try:
        ids = [b.place_market_order("MSFT", 1, "buy").order_id for b in brokers]
        assert ids == [f"P00000000{i}" for i in range(1, 6)]
        assert len({id(b.adapter.engine) for b in brokers}) == 1 and len(tickers()) == 1
        assert all(len(b.get_orders_history()) == 5 for b in brokers)
    finally:
        for b in brokers:
            b.close()
    eventually(lambda: not tickers())


def test_sharing_with_different_settings_is_refused_naming_what_differs(settings_dict):
    first = workbench.connect("paper", settings=settings_dict)
    try:
        other = {"paper": {**settings_dict["paper"], "slippage_bps": 7}}
        with pytest.raises(ConfigError) as info:
            workbench.connect("paper", settings=other)
        assert "paper.slippage_bps" in str(info.value) and info.value.key == "paper.db_path"
        assert first.place_market_order("AAPL", 1, "buy").status.value == "FILLED"
    finally:
        first.close()


def test_a_second_engine_on_the_same_file_in_this_process_is_refused(engine_factory, tmp_path):
    db = tmp_path / "one.sqlite"
    engine_factory(db=db)
    with pytest.raises(BrokerUnavailable) as info:
        engine_factory(db=db)
    assert str(db) in str(info.value) and "this process" in str(info.value) and info.value.code == "ledger_locked"


CHILD = textwrap.dedent("""
    import sys, workbench
    broker = workbench.connect("paper", settings={"paper": {"db_path": sys.argv[1]}})
    broker.place_market_order("AAPL", 1, "buy")
    print("ready", flush=True)
    sys.stdin.read()  # hold the ledger until the parent closes our stdin
    broker.close()
""")


def test_another_process_cannot_open_a_ledger_in_use(tmp_path):
    db = tmp_path / "busy.sqlite"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(BrokerUnavailable) as info:
            workbench.connect("paper", settings={"paper": {"db_path": str(db)}})
        message = str(info.value)
        assert str(db) in message and f"pid {child.pid}" in message and "another process" in message
        assert info.value.raw == child.pid
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db)}})  # free again
    try:
        assert len(broker.get_orders_history()) == 1
    finally:
        broker.close()


def test_a_clashing_new_order_is_an_error_never_an_overwrite(engine_factory):
    engine = engine_factory()
    first = engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=1))
    before = engine.ledger._query("SELECT * FROM orders")
    engine._next_seq = 1  # as a second engine with its own counter would do
    with pytest.raises(BrokerError) as info:
        engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=2))
    assert info.value.code == "ledger_conflict" and not isinstance(info.value.__cause__, type(None))
    assert engine.ledger._query("SELECT * FROM orders") == before and len(engine.fills()) == 1
    assert engine.get_order(first.order_id).qty == 1


# -- lifecycle -------------------------------------------------------------------------------


def test_every_engine_call_after_close_is_a_typed_error(engine_factory):
    engine = engine_factory()
    order = engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=1))
    engine.close()
    calls = [lambda: engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=1)), lambda: engine.cancel(order.order_id),
             lambda: engine.get_order(order.order_id), engine.orders, engine.open_orders, engine.fills,
             engine.positions, engine.account, lambda: engine.replace(order.order_id, qty=D(2)),
             lambda: engine.start_ticker(1)]
    for call in calls:
        with pytest.raises(BrokerUnavailable) as info:
            call()
        assert info.value.code == "closed"
    assert engine.on_price("AAPL", D(1)) == 0 and engine.tick() == 0  # price feeds just stop
    with pytest.raises(BrokerUnavailable):  # the ledger itself, too: never sqlite3.ProgrammingError
        engine.ledger.orders()


def test_adapter_disconnect_stops_its_task_subscriptions_streams_and_engine(settings_dict):
    async def scenario() -> None:
        adapter = workbench.get_adapter("paper", settings_dict)
        await adapter.connect()
        engine = adapter.engine
        quotes: list = []
        sub = await adapter.subscribe_market_data(["AAPL"], quotes.append)
        ended = asyncio.Event()

        async def consume() -> None:
            async for _ in adapter.stream_orders():
                pass
            ended.set()

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        task = adapter._ticker
        await adapter.disconnect()
        assert task.done() and not sub.active and adapter._quote_subs == {}
        await asyncio.wait_for(ended.wait(), 5)  # streams end instead of hanging forever
        await consumer
        assert engine.closed and not adapter.is_connected()
        for call in (adapter.get_account(), adapter.get_positions(), adapter.get_order("P000000001"),
                     adapter.get_orders_history(), adapter.get_fills(),
                     adapter.place_order(NeutralOrder(symbol="AAPL", side="buy", qty=1))):
            with pytest.raises(BrokerUnavailable):
                await call
        await adapter.disconnect()  # idempotent

    asyncio.run(scenario())
    eventually(lambda: not tickers())


def test_order_events_are_built_only_while_someone_streams_them_and_none_are_lost(settings_dict):
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        engine = broker.adapter.engine
        listeners = engine.listeners.orders + engine.listeners.fills
        assert listeners and not any(wanted() for _, wanted in listeners)  # nobody listens: no snapshots
        seen: list = []
        fills: list = []
        stop = broker.on_order(seen.append)
        stop_fills = broker.on_fill(fills.append)
        assert all(wanted() for _, wanted in listeners)
        orders = [broker.place_market_order("AAPL", 1, "buy") for _ in range(20)]
        eventually(lambda: len(seen) == 20 and len(fills) == 20)
        assert [o.order_id for o in seen] == [o.order_id for o in orders]
        stop()
        stop_fills()
        eventually(lambda: not any(wanted() for _, wanted in listeners))
    finally:
        broker.close()


def test_sqlite_failures_never_escape_raw(engine_factory):
    import sqlite3

    engine = engine_factory()
    engine.ledger._conn.execute("CREATE TRIGGER boom BEFORE INSERT ON fills BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(WorkbenchError) as info:
        engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=1))
    assert not isinstance(info.value, sqlite3.Error) and "boom" in str(info.value) and info.value.broker == "paper"
    assert engine.orders() == []
