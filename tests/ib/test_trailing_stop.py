"""TRAILING_STOP on IB: the neutral order becomes IB's TRAIL (auxPrice = the trailing amount, or
trailingPercent), the gateway's stop follows the price and fills once; the order reads back as a trailing stop.
End to end through the TWS emulator's TRAIL support; prices reach its engine through ``on_price``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench import OrderStatus, OrderType

STILL = {"tick_interval": None}  # prices move only when the test says so


@pytest.mark.parametrize("gateway", [STILL], indirect=True)
def test_a_trailing_stop_by_amount_follows_the_price_and_fills_once(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    assert OrderType.TRAILING_STOP in broker.capabilities.order_types
    engine, emulator = gateway.engine, gateway.emulator
    price = engine.prices.get_market_price("AAPL")
    bought = broker.place_market_order("AAPL", 10, "buy")
    eventually(lambda: broker.get_order(bought.order_id).status is OrderStatus.FILLED)
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    trail = broker.place_order(workbench.NeutralOrder(symbol="AAPL", side="sell", qty=10, order_type="trailing_stop",
                                                      trail_price=Decimal(1), tif="gtc", client_order_id="trail"))
    assert (trail.order_type, trail.trail_price, trail.trail_percent) == (OrderType.TRAILING_STOP, 1, None)
    assert trail.status is OrderStatus.NEW and trail.raw_status == "PreSubmitted" and trail.tif == "GTC"
    wire = gateway.requests("3")[-1]  # placeOrder: orderType TRAIL, auxPrice the trailing amount
    assert wire[18:21] == ["TRAIL", "", "1.0"] and wire[21] == "GTC"
    (working,) = engine.open_orders()
    assert working.order_type is OrderType.TRAILING_STOP and working.trail_price == 1
    assert working.stop_price == price - 1
    emulator.call(engine.on_price, "AAPL", price + 5)  # a new high: the stop follows, to price + 4
    emulator.call(engine.on_price, "AAPL", price + Decimal("4.5"))  # above the stop: nothing
    assert engine.open_orders()[0].stop_price == price + 4
    assert broker.get_order("trail").status is OrderStatus.NEW
    emulator.call(engine.on_price, "AAPL", price + 3)  # through the stop: sold at the market
    eventually(lambda: broker.get_order("trail").status is OrderStatus.FILLED and fills)
    assert [(f.local_id, f.qty, f.price) for f in fills] == [("trail", 10, price + 3)]
    done = broker.get_order(trail.order_id)
    assert done.order_type is OrderType.TRAILING_STOP and done.trail_price == 1 and done.avg_fill_price == price + 3
    eventually(lambda: broker.get_positions().empty)


@pytest.mark.parametrize("gateway", [STILL], indirect=True)
def test_a_trailing_stop_by_percent_rests_and_cancels(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    engine = gateway.engine
    order = broker.place_order(workbench.NeutralOrder(symbol="AAPL", side="buy", qty=3, order_type="trailing_stop",
                                                      trail_percent=Decimal("2.5")))
    assert (order.trail_price, order.trail_percent) == (None, Decimal("2.5"))
    (working,) = engine.open_orders()
    assert (working.trail_percent, working.trail_price, working.side) == (Decimal("2.5"), None, workbench.Side.BUY)
    orders = broker.get_orders_history()
    assert orders.loc[order.order_id, "order_type"] == "TRAILING_STOP"
    assert orders.loc[order.order_id, "trail_percent"] == Decimal("2.5")
    assert broker.cancel_order(order.order_id).status is OrderStatus.CANCELLED
    assert not engine.open_orders()
