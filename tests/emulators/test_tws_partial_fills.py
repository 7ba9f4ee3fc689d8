"""Partial fills: the engine's partial_fill_fraction seen through ib_async."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workbench.emulators.tws import TwsEmulator

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def partial_emulator(engine_factory: Callable[..., Any]) -> Iterator[tuple[TwsEmulator, Any]]:
    engine = engine_factory(commission=1, partial_fill_fraction="0.5")
    emu = TwsEmulator(engine, port=0, server_version=178, tick_interval=None).start_in_thread()
    yield emu, engine
    emu.stop_thread()


def test_market_order_fills_in_two_parts(partial_emulator: tuple[TwsEmulator, Any], clock: Any) -> None:
    emu, engine = partial_emulator
    ib = ib_async.IB()
    try:
        ib.connect("127.0.0.1", emu.port, clientId=1, timeout=3)
        (contract,) = ib.qualifyContracts(ib_async.Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(contract, ib_async.MarketOrder("BUY", 10, orderRef="wb-partial-1"))
        ib_eventually(ib, lambda: trade.orderStatus.filled == 5 and len(trade.fills) == 1)
        assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 5
        clock.advance(minutes=1)
        emu.tick()
        ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 2
                      and all(f.commissionReport.execId for f in trade.fills))
        assert [f.execution.cumQty for f in trade.fills] == [5.0, 10.0]
        assert trade.orderStatus.remaining == 0
        expected = sum(f.execution.shares * f.execution.price for f in trade.fills) / 10
        assert trade.orderStatus.avgFillPrice == pytest.approx(expected)
        ib_eventually(ib, lambda: [p.position for p in ib.positions()] == [10.0])
        assert engine.get_order("wb-partial-1").filled_qty == 10
    finally:
        ib.disconnect()
