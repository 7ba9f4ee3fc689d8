"""Error 326 (client id in use) is a final ConfigError naming the id, at once and never retried; opt-in,
``ib.client_id_fallback`` tries the next ids instead (as NautilusTrader does)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

import workbench
from tests.conftest import eventually

from .conftest import hold_client_id


@pytest.mark.parametrize(("gateway", "sdk"), [({}, "ib_async"), ({"server_version": 176}, "ib_insync")],
                         indirect=["gateway"], ids=["ib_async", "ib_insync"])
def test_client_id_in_use_is_final_and_names_the_id(gateway: Any, ib_settings: Any, sdk: str) -> None:
    pytest.importorskip(sdk)
    other = hold_client_id(gateway.port, 5)  # another program holds client id 5
    eventually(lambda: gateway.requests("71"))
    adapter = workbench.get_adapter("ib", ib_settings(gateway.port, client_id=5, connect_timeout=8, sdk=sdk))
    second = workbench.Broker(adapter)
    started = time.monotonic()
    with pytest.raises(workbench.ConfigError) as info:
        second.connect()
    assert time.monotonic() - started < 2  # at once, not after the 8 s connect timeout
    error = info.value
    assert error.key == "ib.client_id" and error.code == 326 and "client id 5 " in str(error)
    assert not error.retryable and second.state == "disconnected" and adapter._reconnect is None
    assert len(gateway.requests("71")) == 2  # the other program's startApi and this one: no retry storm
    second.close()
    other.close()


def test_rerunning_the_connect_cell_replaces_the_broker_holding_the_id(gateway: Any, connect: Any) -> None:
    # broker = workbench.connect("ib") run twice: the Broker of the first run still held client id 5 at the
    # gateway, so the second run always failed with 326 until the kernel was restarted.
    first = connect(gateway.port, client_id=5)
    second = connect(gateway.port, client_id=5)
    assert second.is_connected() and second.adapter.client_id == 5 and first.state == "closed"
    with pytest.raises(workbench.BrokerClosed):
        first.get_account()
    assert second.get_account().cash > 0
    assert len([s for s in gateway.emulator.sessions if not s.closed]) == 1


def test_a_half_open_gateway_holding_our_id_stops_the_watchdog_after_the_grace(gateway: Any, proxy: Any,
                                                                            connect: Any) -> None:
    broker = connect(proxy.port, client_id=5, client_id_retry=1)
    proxy.cut(keep_gateway_side=True)  # we lost the connection; the gateway still thinks client 5 is here
    eventually(lambda: broker.state == "disconnected", timeout=5)  # 326 beyond the grace: the watchdog gives up
    with pytest.raises(workbench.BrokerUnavailable) as info:
        broker.get_account()
    assert "client id 5" in str(info.value)  # the reason, where the user looks next
    assert isinstance(broker.adapter.last_error, workbench.ConfigError)
    refused = len(gateway.requests("71"))
    with pytest.raises(AssertionError):  # and it stays stopped
        eventually(lambda: len(gateway.requests("71")) > refused, timeout=1.5)


def test_a_reconnect_outlasts_the_gateway_holding_our_old_connection(gateway: Any, proxy: Any,
                                                                     connect: Any) -> None:
    # A gateway frees the client id of a vanished connection only once it notices (a write times out, minutes on
    # a real network). The watchdog stopped at the first 326: an unattended session stayed down for good.
    broker = connect(proxy.port, client_id=5)
    proxy.cut(keep_gateway_side=True)
    eventually(lambda: len(gateway.requests("71")) >= 3, timeout=10)  # retried (refused: 326), not given up
    assert broker.state == "reconnecting"
    proxy.release_gateway_side()  # the gateway notices the old connection is gone
    eventually(lambda: broker.state == "connected", timeout=10)
    assert broker.adapter.client_id == 5 and broker.get_account().cash > 0


def test_client_id_fallback_connects_with_the_next_id_and_still_never_doubles(gateway: Any, proxy: Any,
                                                                             connect: Any) -> None:
    broker = connect(proxy.port, client_id=5, client_id_fallback=2)
    broker.place_market_order("AAPL", 1, "buy", client_order_id="before-fallback")
    eventually(lambda: broker.get_order("before-fallback").status is workbench.OrderStatus.FILLED)
    proxy.cut(keep_gateway_side=True)  # client 5 stays registered at the gateway
    eventually(lambda: broker.state == "connected" and broker.adapter.client_id == 6, timeout=10)
    again = broker.place_market_order("AAPL", 1, "buy", client_order_id="before-fallback")
    assert again.status is workbench.OrderStatus.FILLED and len(gateway.engine.orders()) == 1
    assert broker.get_account().cash > 0


def test_an_order_of_another_client_is_refused_at_once_on_cancel(gateway: Any, proxy: Any, connect: Any) -> None:
    # IB scopes cancelOrder(orderId) to the sending client: the cancel of client 5's order from client 6 found
    # nothing at the gateway (or, worse, an order of client 6 with that orderId) and waited out the timeout.
    broker = connect(proxy.port, client_id=5, client_id_fallback=1, connect_timeout=8)
    price = broker.get_market_price("AAPL")
    resting = broker.place_limit_order("AAPL", 1, "buy", (price / 2).quantize(Decimal("0.01")),
                                       client_order_id="theirs")
    proxy.cut(keep_gateway_side=True)  # client 5 stays registered at the gateway: we come back as 6
    eventually(lambda: broker.state == "connected" and broker.adapter.client_id == 6, timeout=10)
    started = time.monotonic()
    with pytest.raises(workbench.NotSupported) as info:
        broker.cancel_order(resting.order_id)
    assert time.monotonic() - started < 1 and "client 5" in str(info.value)
    assert broker.get_order("theirs").status is workbench.OrderStatus.NEW
    assert gateway.engine.get_order("theirs").status is workbench.OrderStatus.NEW and not gateway.requests("4")
