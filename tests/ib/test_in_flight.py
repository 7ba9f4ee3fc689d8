"""An order in flight when the gateway dies fails fast with BrokerUnavailable naming its client_order_id, and
resubmitting that id after the reconnect sends it at most once (whether or not it had reached the gateway)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench import OrderStatus


def _place_in_background(broker: workbench.Broker, request: workbench.NeutralOrder) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["order"] = broker.place_order(request)
        except Exception as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    outcome["thread"] = threading.Thread(target=run)
    outcome["thread"].start()
    return outcome


@pytest.mark.parametrize("lost", ["up", "down"], ids=["never-reached-the-gateway", "ack-never-came-back"])
@pytest.mark.parametrize(("gateway", "sdk"), [({}, "ib_async"), ({"server_version": 176}, "ib_insync")],
                         indirect=["gateway"], ids=["ib_async", "ib_insync"])
def test_in_flight_order_fails_fast_and_resubmits_once(gateway: Any, proxy: Any, connect: Any, lost: str,
                                                       sdk: str) -> None:
    pytest.importorskip(sdk)
    broker = connect(proxy.port, connect_timeout=8, sdk=sdk)
    broker.get_market_price("AAPL")  # contract qualified: placing sends only the order
    request = workbench.NeutralOrder(symbol="AAPL", side="buy", qty=2, client_order_id=f"in-flight-{lost}")
    proxy.blackhole(lost)
    outcome = _place_in_background(broker, request)
    if lost == "up":
        eventually(lambda: proxy.dropped["up"] > 0)  # the placeOrder message is swallowed
    else:
        eventually(lambda: gateway.engine.orders())  # the gateway has the order; its answer is swallowed
    proxy.cut()  # the gateway vanishes while the order waits for its acknowledgement
    outcome["thread"].join(10)
    error = outcome.get("error")
    assert isinstance(error, workbench.BrokerUnavailable) and not isinstance(error, workbench.RequestTimeout)
    assert request.client_order_id in str(error) and error.raw == request.client_order_id
    assert outcome["seconds"] < 2  # not the 8 s connect timeout

    eventually(lambda: broker.state == "connected", timeout=10)
    again = broker.place_order(request)  # the idempotent resubmit the error asked for
    eventually(lambda: broker.get_order(again.order_id).status is OrderStatus.FILLED)
    assert len(gateway.engine.orders()) == 1 and gateway.engine.position("AAPL").qty == 2


def test_an_unanswered_order_times_out_naming_what_to_resubmit(gateway: Any, proxy: Any, connect: Any) -> None:
    broker = connect(proxy.port, connect_timeout=1)
    broker.get_market_price("AAPL")
    proxy.blackhole("down")  # the gateway takes the order; its answers never come back (the socket stays up)
    request = workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1, client_order_id="unanswered")
    with pytest.raises(workbench.RequestTimeout) as info:
        broker.place_order(request)
    assert "'unanswered'" in str(info.value) and "resubmit the same client_order_id" in str(info.value)
    assert info.value.raw == "unanswered"
