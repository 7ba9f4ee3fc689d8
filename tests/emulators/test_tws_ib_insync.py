"""ib_insync 0.9.86 (server versions up to 176) against the emulator: connect, a market order and a subset of
the stock recipes (history in exchange time, conIds, scanners, what-if, TRAIL, streaming quotes, P&L)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from workbench.emulators.tws import TwsEmulator

from .conftest import ACCOUNT, ib_eventually

ib_insync = pytest.importorskip("ib_insync")

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("configured, negotiated", [(157, 157), (178, 176)])
def test_ib_insync_connect_and_market_order(engine: Any, configured: int, negotiated: int) -> None:
    emu = TwsEmulator(engine, port=0, server_version=configured, tick_interval=None).start_in_thread()
    ib = ib_insync.IB()
    try:
        ib.connect("127.0.0.1", emu.port, clientId=21, timeout=3)
        assert ib.client.serverVersion() == negotiated
        assert ib.managedAccounts() == [ACCOUNT]
        assert any(v.tag == "NetLiquidation" for v in ib.accountValues())
        (contract,) = ib.qualifyContracts(ib_insync.Stock("MSFT", "SMART", "USD"))
        assert contract.primaryExchange == "NASDAQ"
        trade = ib.placeOrder(contract, ib_insync.MarketOrder("BUY", 2, orderRef="wb-insync-1"))
        ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills
                      and trade.fills[0].commissionReport.execId)
        assert trade.fills[0].execution.orderRef == "wb-insync-1"
        ib_eventually(ib, lambda: [(p.contract.symbol, p.position) for p in ib.positions()] == [("MSFT", 2.0)])
        assert engine.get_order("wb-insync-1").filled_qty == 2
    finally:
        ib.disconnect()
        emu.stop_thread()


@pytest.mark.parametrize("configured", [157, 178])
def test_ib_insync_runs_the_stock_recipes(engine_factory: Any, clock: Any, configured: int) -> None:
    from datetime import UTC, datetime

    engine = engine_factory(commission={"per_share": "0.005", "minimum": 1}, allow_short=True)
    emu = TwsEmulator(engine, port=0, server_version=configured, tick_interval=None).start_in_thread()
    ib = ib_insync.IB()
    try:
        ib.connect("127.0.0.1", emu.port, clientId=22, timeout=3)
        amd, intc = ib.qualifyContracts(ib_insync.Stock("AMD", "SMART", "USD"), ib_insync.Stock("INTC", "SMART", "USD"))
        assert ib.reqHeadTimeStamp(amd, "TRADES", True).replace(tzinfo=UTC) == datetime(2000, 1, 3, 14, 30, tzinfo=UTC)
        hourly = ib.reqHistoricalData(amd, "", "2 D", "1 hour", "TRADES", True, 2)
        assert [b.date.minute for b in hourly[:2]] == [30, 0]
        local = ib.reqHistoricalData(amd, "", "1 D", "1 hour", "TRADES", True, 1)  # exchange time, as a gateway
        assert str(local[0].date.tzinfo) == "US/Eastern" and (local[0].date.hour, local[0].date.minute) == (9, 30)
        (amd_by_id,) = ib.qualifyContracts(ib_insync.Contract(conId=4391))
        assert amd_by_id == amd
        scan = ib.reqScannerData(ib_insync.ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR",
                                                               scanCode="MOST_ACTIVE", numberOfRows=3))
        assert [sd.rank for sd in scan] == [0, 1, 2]
        assert ib.reqMatchingSymbols("intc")[0].contract.symbol == "INTC"
        assert len(ib.reqContractDetails(ib_insync.Stock("TSLA"))) > 10
        state = ib.whatIfOrder(intc, ib_insync.MarketOrder("SELL", 400))
        assert state.commission == 2.0 and float(state.initMarginChange) > 0 and engine.orders() == []
        ticker = ib.reqMktData(amd, "233", False, False)
        ib_eventually(ib, lambda: ticker.volume > 0 and ticker.bidSize > 0)
        volume = ticker.volume
        clock.advance(seconds=2)
        emu.tick()
        ib_eventually(ib, lambda: ticker.volume > volume)
        trade = ib.placeOrder(amd, ib_insync.MarketOrder("BUY", 300))
        ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills
                      and trade.fills[0].commissionReport.commission == 1.5)
        trail = ib.placeOrder(amd, ib_insync.Order(action="SELL", orderType="TRAIL", totalQuantity=300,
                                                   trailingPercent=1.5))
        ib_eventually(ib, lambda: trail.orderStatus.status == "PreSubmitted")
        assert engine.open_orders()[0].trail_percent == Decimal("1.5")
        pnl = ib.reqPnL(ACCOUNT)
        ib_eventually(ib, lambda: pnl.unrealizedPnL == pnl.unrealizedPnL)
        values = {(v.tag, v.currency) for v in ib.accountValues()}
        assert {("NetLiquidationByCurrency", "BASE"), ("TotalCashValue", "USD")} <= values
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
        ib.reqMktDepth(amd)  # not emulated: an error, not silence
        ib_eventually(ib, lambda: 10092 in errors)
    finally:
        ib.disconnect()
        emu.stop_thread()
