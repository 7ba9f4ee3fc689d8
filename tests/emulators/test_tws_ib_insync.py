"""ib_insync 0.9.86 (server versions up to 176) against the emulator: connect and a market order."""

from __future__ import annotations

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
