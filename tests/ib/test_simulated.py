"""Rule 5: data from workbench's TWS emulator is simulated and says so. The emulator announces itself at connect
with a notice a real gateway never sends; the adapter then labels every quote, subscription quote and bar of the
session simulated, and the Broker card says so (and shows the account in use)."""

from __future__ import annotations

from typing import Any

import workbench
from tests.conftest import eventually


def test_emulator_data_is_labelled_simulated(gateway: Any, connect: Any) -> None:
    # The quotes and bars were labelled plain IB data, and the Broker card showed no account.
    broker = connect(gateway.port)
    assert broker.get_quote("AAPL").simulated
    assert broker.get_history("AAPL", days=5).attrs["simulated"] is True
    assert broker.get_history(["AAPL", "MSFT"], days=5).attrs["simulated"] is True
    quotes: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
    eventually(lambda: quotes)
    assert all(q.simulated for q in quotes)
    subscription.cancel()
    assert "account=DU1234567" in repr(broker) and "data=ib market data (simulated)" in repr(broker)
    html = broker._repr_html_()
    assert "DU1234567" in html and "wb-sim" in html


def test_a_gateway_that_does_not_announce_itself_is_not_labelled(gateway: Any, proxy: Any, connect: Any) -> None:
    from workbench.adapters.ib.parse import SIMULATED_TEXT, announces_simulated
    from workbench.emulators.tws.server import SIMULATED_NOTICE

    assert announces_simulated(-1, SIMULATED_NOTICE[1]) and SIMULATED_NOTICE[1].startswith(SIMULATED_TEXT)
    proxy.on_down(lambda fields: [] if fields[0] == "4" and SIMULATED_TEXT in fields else [fields])  # a real one
    broker = connect(proxy.port)
    assert not broker.get_quote("AAPL").simulated
    assert broker.get_history("AAPL", days=5).attrs["simulated"] is False
    assert "simulated" not in repr(broker) and "account=DU1234567" in repr(broker)
