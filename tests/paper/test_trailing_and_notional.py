"""TRAILING_STOP and notional (cash-sized) market orders in the paper engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workbench.core.enums import OrderStatus, OrderType
from workbench.core.errors import InsufficientFunds, InvalidOrder, OrderRejected
from workbench.core.models import NeutralOrder

D = Decimal
SYM = "AAPL"
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
START = D(100000)


def px(engine):
    return engine.prices.get_market_price(SYM, engine.clock())


def buy(engine, qty):
    return engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=qty))


# -- trailing stops -----------------------------------------------------------------------------

def test_sell_trailing_stop_follows_the_high_and_fills_when_the_price_falls_back(engine_factory, tmp_path):
    db = tmp_path / "trail.sqlite"
    engine = engine_factory(db=db)
    p = px(engine)
    buy(engine, 10)
    order = engine.submit(NeutralOrder(symbol=SYM, side="sell", qty=10, order_type="trailing_stop", trail_price=2,
                                       tif="GTC"))
    assert order.status is OrderStatus.NEW and order.stop_price == p - 2 and order.trail_price == 2
    engine.on_price(SYM, p + 5, T0)  # a new high: the stop follows
    assert engine.get_order(order.order_id).stop_price == p + 3
    engine.on_price(SYM, p + 4, T0)  # lower, above the stop: the stop stays
    assert engine.get_order(order.order_id).stop_price == p + 3
    assert engine.get_order(order.order_id).status is OrderStatus.NEW
    engine.close()
    engine = engine_factory(db=db)  # the high-water mark is persisted
    assert engine.ledger.order(order.order_id).best_price == p + 5
    engine.on_price(SYM, p + D("3.01"), T0)
    assert engine.get_order(order.order_id).stop_price == p + 3
    engine.on_price(SYM, p + 3, T0)  # touches the stop: triggers, fills as a market order
    done = engine.get_order(order.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == p + 3 and engine.position(SYM) is None


def test_buy_trailing_stop_in_percent_follows_the_low(engine_factory):
    engine = engine_factory()
    order = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, order_type="trail", trail_percent=10))
    engine.on_price(SYM, D(100), T0)
    assert engine.get_order(order.order_id).stop_price == D(110)  # the low so far plus 10 %
    engine.on_price(SYM, D(80), T0)
    assert engine.get_order(order.order_id).stop_price == D(88)
    engine.on_price(SYM, D(87.99).quantize(D("0.01")), T0)
    assert engine.get_order(order.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, D(88), T0)
    got = engine.get_order(order.order_id)
    assert got.status is OrderStatus.FILLED and got.avg_fill_price == D(88) and got.trail_percent == 10


def test_trailing_stop_reserves_at_its_trigger_and_is_checked_for_shorts(engine_factory):
    engine = engine_factory(starting_cash=1000)
    p = px(engine)
    with pytest.raises(OrderRejected):  # nothing held
        engine.submit(NeutralOrder(symbol=SYM, side="sell", qty=1, order_type="trail", trail_price=1))
    qty = int(D(1000) / (p + 10))
    engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=qty, order_type="trail", trail_price=10))
    assert engine.account().buying_power == 1000 - qty * (p + 10)
    with pytest.raises(InsufficientFunds):
        engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, order_type="trail", trail_price=10))


def test_replacing_the_trail_recomputes_the_stop_from_the_high_water_mark(engine_factory):
    engine = engine_factory()
    p = px(engine)
    buy(engine, 5)
    order = engine.submit(NeutralOrder(symbol=SYM, side="sell", qty=5, order_type="trail", trail_price=2))
    engine.on_price(SYM, p + 1, T0)
    changed = engine.replace(order.order_id, trail_percent=D(1))  # at the provider's price p: not triggered
    assert changed.trail_percent == 1 and changed.trail_price is None and changed.status is OrderStatus.NEW
    assert changed.stop_price == ((p + 1) * D("0.99")).quantize(D("0.0001"))
    with pytest.raises(InvalidOrder) as info:
        engine.replace(order.order_id, stop_price=D(100))  # a trailing stop's trigger is not set by hand
    assert info.value.field == "stop_price"


def test_resubmitting_a_trailing_stop_returns_it_even_after_its_stop_moved(engine_factory):
    engine = engine_factory()
    p = px(engine)
    buy(engine, 5)
    request = NeutralOrder(symbol=SYM, side="sell", qty=5, order_type="trail", trail_price=2, client_order_id="t-1")
    first = engine.submit(request)
    engine.on_price(SYM, p + 3, T0)
    again = engine.submit(request)
    assert again.order_id == first.order_id and again.stop_price == p + 1 and len(engine.orders()) == 2


def test_ioc_trailing_stop_that_does_not_trigger_is_cancelled(engine_factory):
    engine = engine_factory()
    buy(engine, 1)
    o = engine.submit(NeutralOrder(symbol=SYM, side="sell", qty=1, order_type="trail", trail_price=1, tif="IOC"))
    assert o.status is OrderStatus.CANCELLED and engine.fills(order_id=o.order_id) == []


# -- notional orders ----------------------------------------------------------------------------

def test_notional_buy_is_sized_at_the_fill_price_and_keeps_its_notional(engine_factory):
    engine = engine_factory(slippage_bps=10, commission={"per_order": "1"})
    p = px(engine)
    o = engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(1000)))
    fill_price = (p * D("1.001")).quantize(D("0.0001"))
    qty = (D(1000) / fill_price).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    assert o.status is OrderStatus.FILLED and o.notional == 1000 and o.qty == qty == o.filled_qty
    assert o.avg_fill_price == fill_price and qty * fill_price <= 1000
    [fill] = engine.fills()
    assert fill.qty == qty and engine.cash == START - qty * fill_price - 1
    assert engine.position(SYM).qty == qty


def test_notional_sell_is_checked_against_the_position(engine_factory):
    engine = engine_factory()
    p = px(engine)
    buy(engine, 2)
    with pytest.raises(OrderRejected):
        engine.submit(NeutralOrder(symbol=SYM, side="sell", notional=(3 * p).quantize(D("0.01"))))
    o = engine.submit(NeutralOrder(symbol=SYM, side="sell", notional=p.quantize(D("0.01"))))
    assert o.status is OrderStatus.FILLED and o.qty <= 1 and engine.position(SYM).qty == 2 - o.qty


def test_notional_buy_beyond_buying_power_including_commission_is_refused(engine_factory):
    engine = engine_factory(starting_cash=1000, commission={"per_order": "5"})
    with pytest.raises(InsufficientFunds):
        engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(996)))
    assert engine.orders() == []
    assert engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(995))).status is OrderStatus.FILLED


def test_resting_notional_order_has_no_qty_until_it_fills(engine_factory, clock):
    engine = engine_factory(starting_cash=10000)
    o = engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(5000), tif="OPG"))
    assert o.status is OrderStatus.NEW and o.qty is None and o.remaining_qty is None
    assert engine.account().buying_power == 10000 - 5000  # the notional is reserved
    opening = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)
    engine.on_price(SYM, D(100), opening)
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and got.qty == 50 and got.notional == 5000


def test_notional_order_with_partial_fills_is_sized_once(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.5"))
    p = px(engine)
    o = engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(1000)))
    qty = (D(1000) / p).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.qty == qty and o.filled_qty == qty / 2
    engine.on_price(SYM, p + 20, T0)  # a later price does not resize the order
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and got.qty == qty and sum(f.qty for f in engine.fills()) == qty


def test_resubmitting_a_notional_order_never_fills_twice(engine_factory):
    engine = engine_factory()
    request = NeutralOrder(symbol=SYM, side="buy", notional=D(500), client_order_id="n-1")
    first = engine.submit(request)
    assert engine.submit(request).order_id == first.order_id and len(engine.fills()) == 1
    resting = engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D(500), tif="CLS"))
    with pytest.raises(InvalidOrder) as info:
        engine.replace(resting.order_id, qty=D(1))
    assert info.value.field == "qty"


def test_a_notional_too_small_for_one_billionth_share_is_rejected(engine_factory):
    engine = engine_factory()
    o = engine.submit(NeutralOrder(symbol=SYM, side="buy", notional=D("0.0000001")))
    assert o.status is OrderStatus.REJECTED and o.raw_status == "notional_too_small" and engine.fills() == []
    assert o.order_type is OrderType.MARKET


def test_trailing_stop_on_a_day_order_still_expires(engine_factory):
    engine = engine_factory()
    buy(engine, 1)
    o = engine.submit(NeutralOrder(symbol=SYM, side="sell", qty=1, order_type="trail", trail_price=50))
    engine.on_price(SYM, px(engine), datetime(2026, 11, 18, 21, 0, tzinfo=UTC) + timedelta(seconds=1))
    assert engine.get_order(o.order_id).status is OrderStatus.EXPIRED
