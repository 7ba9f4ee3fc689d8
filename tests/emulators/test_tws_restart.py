"""Issue 7 §5, emulator side: a restarted gateway keeps order ids, permIds and exec ids; fresh ledgers never
share exec ids; a market order filled at once is reported filled at every server version."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.emulators.tws import TwsEmulator

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, LimitOrder, MarketOrder, Stock  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def _orders(ib: Any) -> tuple[Any, list[Any]]:
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    trades = [ib.placeOrder(contract, MarketOrder("BUY", 2, orderRef=f"wb-restart-{i}")) for i in range(3)]
    resting = ib.placeOrder(contract, LimitOrder("BUY", 1, 50.0, orderRef="wb-restart-resting"))
    cancelled = ib.placeOrder(contract, LimitOrder("BUY", 1, 51.0, orderRef="wb-restart-cancelled"))
    ib_eventually(ib, lambda: all(t.orderStatus.status == "Filled" for t in trades)
                  and resting.orderStatus.status == cancelled.orderStatus.status == "Submitted")
    ib.cancelOrder(cancelled.order)
    ib_eventually(ib, lambda: cancelled.orderStatus.status == "Cancelled")
    return contract, [*trades, resting, cancelled]


def _ids(ib: Any) -> list[tuple[str, int, int, str]]:
    return sorted((t.order.orderRef, t.order.orderId, t.order.permId, t.orderStatus.status) for t in ib.trades())


@pytest.mark.parametrize("server_version", [157, 178])
def test_a_restarted_gateway_keeps_order_ids_perm_ids_and_exec_ids(engine_factory: Any, tmp_path: Path,
                                                                   server_version: int) -> None:
    db = tmp_path / "gateway.sqlite"
    engine = engine_factory(db=db, commission=1)
    first = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    ib = IB()
    try:
        ib.connect("127.0.0.1", first.port, clientId=3, timeout=3)
        _orders(ib)
        before, execs = _ids(ib), sorted(f.execution.execId for f in ib.fills())
        ib.disconnect()
    finally:
        first.stop_thread()
        engine.close()
    assert all(order_id > 0 for _, order_id, _, _ in before) and len({i for _, i, _, _ in before}) == 5

    engine = engine_factory(db=db, commission=1)
    second = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    again = IB()
    try:
        again.connect("127.0.0.1", second.port, clientId=3, timeout=3)
        assert _ids(again) == before  # finished orders too: not order id 0
        assert sorted(f.execution.execId for f in again.fills()) == execs
        assert all(f.commissionReport.commission == 1 for f in again.fills())
        resting = next(t for t in again.openTrades() if t.order.orderRef == "wb-restart-resting")
        again.cancelOrder(resting.order)  # still this client's order, by its old id
        ib_eventually(again, lambda: resting.orderStatus.status == "Cancelled")
        assert again.client.getReqId() > max(i for _, i, _, _ in before)
        again.disconnect()
        settings = {"paper": {"db_path": str(tmp_path / "unused.sqlite")},
                    "ib": {"port": second.port, "client_id": 3, "connect_timeout": 5}}
        with workbench.connect("ib", settings=settings) as broker:  # a fresh kernel after the restart
            frame = broker.get_orders_history()  # the adapter's order_id is the permId (IB's orderId is per client)
            assert frame.index.is_unique and sorted(frame.index) == sorted(str(p) for _, _, p, _ in before)
            order_id = next(i for ref, i, _, _ in before if ref == "wb-restart-1")
            assert broker.get_order(str(order_id)).client_order_id == "wb-restart-1"  # IB's orderId still finds it
    finally:
        second.stop_thread()
        engine.close()


def test_fresh_ledgers_never_share_exec_ids(engine_factory: Any, tmp_path: Path) -> None:
    """Identical clock and orders on two fresh ledgers: ib_async drops a fill whose exec id it has seen."""
    exec_ids = []
    for name in ("one.sqlite", "two.sqlite"):
        engine = engine_factory(db=tmp_path / name)
        emu = TwsEmulator(engine, port=0, tick_interval=None).start_in_thread()
        ib = IB()
        try:
            ib.connect("127.0.0.1", emu.port, clientId=1, timeout=3)
            (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
            trade = ib.placeOrder(contract, MarketOrder("BUY", 1, orderRef="same-ref"))
            ib_eventually(ib, lambda: trade.fills)
            exec_ids.append(trade.fills[0].execution.execId)
        finally:
            ib.disconnect()
            emu.stop_thread()
    assert exec_ids[0] != exec_ids[1]


@pytest.mark.parametrize("server_version", [157, 178])
def test_a_market_order_filled_at_once_is_reported_filled(engine_factory: Any, tmp_path: Path,
                                                         server_version: int) -> None:
    engine = engine_factory(db=tmp_path / "gw.sqlite")
    emu = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    settings = {"paper": {"db_path": str(tmp_path / "unused.sqlite")},
                "ib": {"port": emu.port, "client_id": 9, "connect_timeout": 5}}
    try:
        with workbench.connect("ib", settings=settings) as broker:
            statuses = Counter(str(broker.place_market_order("AAPL", 1, "buy" if i % 2 == 0 else "sell").status)
                               for i in range(40))
    finally:
        emu.stop_thread()
    assert statuses == {"FILLED": 40}
