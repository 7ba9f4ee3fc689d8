"""The neutral order contract: notional and trailing-stop orders, capabilities, the order-update stream."""

from __future__ import annotations

from decimal import Decimal

import pytest

import workbench
from workbench import Feature, InvalidOrder, NeutralOrder, NotSupported, OrderStatus, OrderType
from workbench.adapters.base import Capabilities
from workbench.core.enums import TimeInForce

from tests.conftest import eventually


def test_notional_market_order_needs_no_qty():
    order = NeutralOrder(symbol="AAPL", side="buy", notional="250.50")
    assert order.qty is None and order.notional == Decimal("250.50")


@pytest.mark.parametrize(("payload", "field"), [
    ({"symbol": "AAPL", "side": "buy"}, "qty"),
    ({"symbol": "AAPL", "side": "buy", "qty": 1, "notional": 100}, "notional"),
    ({"symbol": "AAPL", "side": "buy", "notional": 100, "order_type": "limit", "limit_price": 1}, "notional"),
    ({"symbol": "AAPL", "side": "buy", "notional": 0}, "notional"),
    ({"symbol": "AAPL", "side": "sell", "qty": 1, "order_type": "trail"}, "trail_price"),
    ({"symbol": "AAPL", "side": "sell", "qty": 1, "order_type": "trail", "trail_price": 1, "trail_percent": 1},
     "trail_percent"),
    ({"symbol": "AAPL", "side": "sell", "qty": 1, "order_type": "trail", "trail_percent": 100}, "trail_percent"),
    ({"symbol": "AAPL", "side": "sell", "qty": 1, "order_type": "stop", "stop_price": 5, "trail_price": 1},
     "trail_price"),
])
def test_bad_notional_and_trailing_orders_name_the_field(payload, field):
    with pytest.raises(InvalidOrder) as info:
        NeutralOrder(**payload)
    assert info.value.field == field


def test_trailing_stop_spellings():
    order = NeutralOrder(symbol="AAPL", side="sell", qty=5, order_type="TRAIL", trail_percent="2.5")
    assert order.order_type is OrderType.TRAILING_STOP and order.trail_percent == Decimal("2.5")
    assert OrderType("trailing-stop") is OrderType.TRAILING_STOP


def test_capabilities_refuse_notional_without_the_feature():
    caps = Capabilities(order_types=frozenset(OrderType), tifs=frozenset(TimeInForce))
    with pytest.raises(NotSupported) as info:
        caps.check(NeutralOrder(symbol="AAPL", side="buy", notional=100), "x")
    assert info.value.field == "notional"
    Capabilities(order_types=frozenset(OrderType), tifs=frozenset(TimeInForce),
                 features=frozenset({Feature.NOTIONAL})).check(NeutralOrder(symbol="AAPL", side="buy", notional=100),
                                                                "x")


def test_orders_frame_carries_the_new_columns():
    broker = workbench.connect("paper")
    try:
        broker.place_market_order("AAPL", 1, "buy")
        frame = broker.get_orders_history()
        for column in ("notional", "trail_price", "trail_percent"):
            assert column in frame.columns and frame[column].isna().all()
    finally:
        broker.close()


def test_on_order_follows_a_resting_order_to_cancelled():
    broker = workbench.connect("paper")
    seen: list[workbench.Order] = []
    stop = broker.on_order(seen.append)
    try:
        price = broker.get_market_price("AAPL")
        order = broker.place_limit_order("AAPL", 1, "buy", (price * Decimal("0.5")).quantize(Decimal("0.01")))
        broker.cancel_order(order.order_id)
        eventually(lambda: [o.status for o in seen if o.order_id == order.order_id]
                   == [OrderStatus.NEW, OrderStatus.CANCELLED])
        assert all(isinstance(o, workbench.Order) for o in seen)
    finally:
        stop()
        broker.close()


def test_paper_carries_notional_and_trailing_stop_orders():
    broker = workbench.connect("paper")
    try:
        assert {Feature.NOTIONAL} <= broker.capabilities.features
        notional = broker.place_order(symbol="AAPL", side="buy", notional=100)
        assert notional.status is OrderStatus.FILLED and notional.notional == 100 and 0 < notional.qty < 1
        trail = broker.place_order(symbol="AAPL", side="sell", qty=notional.qty, order_type="trail", trail_percent=1)
        assert trail.is_open and trail.trail_percent == 1 and trail.stop_price < broker.get_market_price("AAPL")
        assert len(broker.get_orders_history()) == 2
    finally:
        broker.close()
