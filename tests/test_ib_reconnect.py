"""Gateway restart during order flow: no duplicate orders, every fill reconciled, outage reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.conftest import eventually

pytest.importorskip("ib_async")


def test_gateway_restart_during_order_flow(settings_dict: dict[str, Any], tmp_path: Path) -> None:
    from workbench.paper.config import PaperConfig
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gw.sqlite"), slippage_bps=0, commission=0), SimProvider())
    gateway = TwsEmulator(engine, port=0, server_version=178, tick_interval=0.05).start_in_thread()
    port = gateway.port
    settings = {**settings_dict, "ib": {"port": port, "client_id": 9, "connect_timeout": 2, "reconnect_max_delay": 0.5}}
    broker = workbench.connect("ib", settings=settings)
    try:
        quotes: list[workbench.Quote] = []
        broker.subscribe_market_data(["MSFT"], quotes.append)
        eventually(lambda: quotes)
        first = workbench.NeutralOrder(symbol="AAPL", side="buy", qty=3, client_order_id="before-outage")
        broker.place_order(first)  # returns once acknowledged; the fill follows
        eventually(lambda: broker.get_order("before-outage").status is workbench.OrderStatus.FILLED)

        gateway.stop_thread()  # the gateway goes away (nightly restart)
        eventually(lambda: broker.state == "reconnecting")
        with pytest.raises(workbench.BrokerUnavailable):
            broker.place_market_order("AAPL", 1, "buy")

        gateway = TwsEmulator(engine, port=port, server_version=178, tick_interval=0.05).start_in_thread()
        eventually(lambda: broker.state == "connected", timeout=10)
        seen = len(quotes)
        eventually(lambda: len(quotes) > seen, timeout=10)  # the subscription was restored

        again = broker.place_order(first)  # resubmitted after the outage: found by orderRef, not sent twice
        assert again.client_order_id == "before-outage" and again.status is workbench.OrderStatus.FILLED
        broker.place_market_order("AAPL", 2, "buy", client_order_id="after-outage")
        eventually(lambda: broker.get_order("after-outage").status is workbench.OrderStatus.FILLED)
        eventually(lambda: len(broker.get_fills()) == 2)
        fills = broker.get_fills()
        assert sorted(fills["client_order_id"]) == ["after-outage", "before-outage"]
        assert fills["qty"].sum() == 5
        assert len(engine.orders()) == 2  # the gateway saw exactly two orders: no duplicate
        assert broker.get_positions().loc["AAPL", "qty"] == 5
    finally:
        broker.close()
        gateway.stop_thread()
        engine.close()
