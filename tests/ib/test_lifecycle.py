"""close() / disconnect() stop all background work in every state, including while reconnecting; use after
close is a typed error."""

from __future__ import annotations

from typing import Any

import pytest

import workbench
from tests.conftest import eventually


def test_close_while_reconnecting_stops_the_watchdog(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port, client_id=5)
    quotes: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
    gateway.stop()
    eventually(lambda: broker.state == "reconnecting")
    watchdog = broker.adapter._reconnect
    broker.close()
    assert broker.state == "closed" and watchdog.done() and not subscription.active
    with pytest.raises(workbench.BrokerClosed):  # typed, also straight on the adapter
        broker.adapter.stream_fills()
    gateway.start()
    fresh = connect(gateway.port, client_id=5)  # the same client id is free: no zombie grabbed it
    assert fresh.is_connected()
    with pytest.raises(AssertionError):  # and the closed broker never comes back
        eventually(lambda: len(gateway.requests("71")) > 1, timeout=1.5)
    assert broker.state == "closed"


def test_close_during_a_stuck_handshake_closes_the_socket(gateway: Any, proxy: Any, connect: Any) -> None:
    broker = connect(proxy.port, connect_timeout=30)
    proxy.blackhole("down", new_connections=True)  # reconnects reach the gateway, which never answers
    proxy.cut()
    eventually(lambda: proxy.connections > 1 and broker.state == "reconnecting", timeout=5)
    broker.close()
    assert broker.adapter.ib.client.connState == 0  # DISCONNECTED: no socket left half-open
    assert broker.adapter._reconnect is None and broker.state == "closed"


def test_use_after_disconnect_is_a_typed_error(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    order = broker.place_market_order("AAPL", 1, "buy")
    broker.disconnect()
    for call in (lambda: broker.get_order(order.order_id), broker.get_orders_history, broker.get_fills,
                 broker.get_positions, broker.get_account, lambda: broker.get_quote("AAPL"),
                 lambda: broker.subscribe_market_data(["AAPL"], print), broker.adapter.stream_fills,
                 broker.adapter.stream_orders):
        with pytest.raises(workbench.BrokerUnavailable):  # not stale data, not an SDK exception
            call()
    broker.connect()
    assert broker.get_order(order.order_id).client_order_id == order.client_order_id
