"""Behaviour of the paper matching engine (workbench.paper.engine.PaperEngine) over its SQLite ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workbench.core.enums import OrderStatus, Side
from workbench.core.errors import (InsufficientFunds, InvalidOrder, MarketClosed, OrderNotFound, OrderRejected,
                                   WorkbenchError)
from workbench.core.models import NeutralOrder

SYM = "AAPL"
D = Decimal
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # Wed, 10:00 New York
CLOSE = datetime(2026, 11, 18, 21, 0, tzinfo=UTC)  # Wed, 16:00 New York
NEXT_OPEN = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)  # Thu, 09:30 New York
SATURDAY = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
MONDAY_OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
START = D(100000)


def order(side="BUY", qty=10, **kw) -> NeutralOrder:
    return NeutralOrder(symbol=kw.pop("symbol", SYM), side=side, qty=D(qty), **kw)


def limit(side, qty, price, tif="GTC", **kw) -> NeutralOrder:
    return order(side, qty, order_type="LIMIT", limit_price=D(price), tif=tif, **kw)


def px(engine, symbol=SYM) -> Decimal:
    return engine.prices.get_market_price(symbol, engine.clock())


def count(engine, table: str) -> int:
    return engine.ledger._query(f"SELECT COUNT(*) FROM {table}")[0][0]


def pos(engine, symbol=SYM):
    p = engine.position(symbol)
    return None if p is None else (p.qty, p.avg_price)


def ledger_snapshot(engine):
    q = engine.ledger._query
    return (q("SELECT * FROM account"), q("SELECT * FROM orders ORDER BY order_id"),
            q("SELECT * FROM fills ORDER BY exec_id"), q("SELECT * FROM positions ORDER BY symbol"))


def memory_snapshot(engine):
    return (engine.cash, [p.model_dump() for p in engine.positions()],
            sorted((o.model_dump() for o in engine.open_orders()), key=lambda o: o["order_id"]))


def close_to(actual: Decimal, expected: Decimal, tol: str = "0.000001") -> bool:
    return abs(actual - expected) <= D(tol)


# -- market orders, slippage, commission, positions ---------------------------------------------

@pytest.mark.parametrize("bps", [0, 10, 25])
def test_market_buy_and_sell_fill_at_price_plus_minus_slippage_with_commission(engine_factory, clock, bps):
    engine = engine_factory(slippage_bps=bps, commission={"per_order": "1", "per_share": "0.01", "minimum": "1.5"})
    p = px(engine)
    buy = engine.submit(order("BUY", 100))
    assert buy.status is OrderStatus.FILLED and buy.filled_qty == 100
    [fill] = engine.fills(order_id=buy.order_id)
    assert fill.qty == 100 and fill.side is Side.BUY
    assert fill.price >= p and close_to(fill.price, p * (1 + D(bps) / 10000), "0.00005")
    assert fill.commission == D("2.00")  # max(1.5, 1 + 0.01 * 100)
    assert buy.avg_fill_price == fill.price
    assert engine.cash == START - 100 * fill.price - D(2)
    assert pos(engine) == (D(100), fill.price)

    clock.advance(minutes=30)
    q = px(engine)
    sell = engine.submit(order("SELL", 10))
    [sfill] = engine.fills(order_id=sell.order_id)
    assert sfill.price <= q and close_to(sfill.price, q * (1 - D(bps) / 10000), "0.00005")
    assert sfill.commission == D("1.5")  # the minimum: 1 + 0.01 * 10 < 1.5
    assert engine.cash == START - 100 * fill.price - D(2) + 10 * sfill.price - D("1.5")
    assert pos(engine) == (D(90), fill.price)  # reducing keeps the average
    assert engine.ledger.account()[0] == engine.cash


def test_flat_commission_number_is_charged_per_fill(engine_factory):
    engine = engine_factory(commission=D("4.95"))
    p = px(engine)
    engine.submit(order("BUY", 3))
    [fill] = engine.fills()
    assert fill.commission == D("4.95") and fill.price == p
    assert engine.cash == START - 3 * p - D("4.95")


def test_average_price_adding_reducing_and_crossing_through_zero(engine_factory, clock):
    engine = engine_factory(allow_short=True)
    cash = START
    p1 = px(engine)
    engine.submit(order("BUY", 10))
    cash -= 10 * p1
    clock.advance(minutes=37)
    p2 = px(engine)
    engine.submit(order("BUY", 5))
    cash -= 5 * p2
    qty, avg = pos(engine)
    assert qty == 15 and close_to(avg, (10 * p1 + 5 * p2) / 15)
    clock.advance(minutes=41)
    p3 = px(engine)
    engine.submit(order("SELL", 6))
    cash += 6 * p3
    assert pos(engine) == (D(9), avg)  # reducing: average unchanged
    clock.advance(minutes=43)
    p4 = px(engine)
    engine.submit(order("SELL", 20))  # 9 long -> 11 short
    cash += 20 * p4
    assert pos(engine) == (D(-11), p4)  # crossed through zero: the new side's price
    clock.advance(minutes=47)
    p5 = px(engine)
    engine.submit(order("SELL", 4))  # adding to the short
    cash += 4 * p5
    qty, savg = pos(engine)
    assert qty == -15 and close_to(savg, (11 * p4 + 4 * p5) / 15)
    engine.submit(order("BUY", 15))  # cover flat
    cash -= 15 * p5
    assert engine.position(SYM) is None and engine.ledger.positions() == {}
    assert engine.cash == cash and engine.ledger.account()[0] == cash


# -- limit / stop / stop-limit ------------------------------------------------------------------

def test_limit_rests_when_not_marketable_and_fills_when_crossed_never_worse(engine_factory, clock):
    engine = engine_factory(slippage_bps=50, allow_short=True)
    p = px(engine)
    lim = p - 2
    o = engine.submit(limit("BUY", 10, lim))
    assert o.status is OrderStatus.NEW and o.filled_qty == 0 and engine.fills() == []
    assert engine.cash == START and [x.order_id for x in engine.open_orders()] == [o.order_id]
    assert engine.on_price(SYM, lim + D("0.01"), T0) == 0
    assert engine.get_order(o.order_id).status is OrderStatus.NEW
    assert engine.on_price(SYM, lim, T0) == 1
    filled = engine.get_order(o.order_id)
    [fill] = engine.fills()
    assert filled.status is OrderStatus.FILLED and fill.price == lim  # slippage capped at the limit
    assert engine.cash == START - 10 * lim and engine.open_orders() == []
    # Price gaps well through the limit: fills at the (better) gapped price plus slippage, never above the limit.
    o2 = engine.submit(limit("BUY", 10, lim))
    assert engine.get_order(o2.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, lim - 10, T0)
    [fill2] = engine.fills(order_id=o2.order_id)
    assert fill2.price <= lim and close_to(fill2.price, (lim - 10) * D("1.005"), "0.00005")
    mkt = engine.submit(limit("BUY", 2, p + 5))  # marketable: fills at the market plus slippage, not the limit
    assert mkt.status is OrderStatus.FILLED and close_to(mkt.avg_fill_price, p * D("1.005"), "0.00005")
    cash, slim = engine.cash, p + 3
    sell = engine.submit(limit("SELL", 5, slim))
    engine.on_price(SYM, slim - D("0.01"), T0)
    assert engine.get_order(sell.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, slim + D("0.05"), T0)  # minus 50 bps would be below the limit: capped at it
    [sfill] = engine.fills(order_id=sell.order_id)
    assert engine.get_order(sell.order_id).status is OrderStatus.FILLED and sfill.price == slim
    assert engine.cash == cash + 5 * slim


def test_stop_triggers_only_when_crossed(engine_factory):
    engine = engine_factory()
    stop = px(engine) + 1
    o = engine.submit(order("BUY", 4, order_type="STOP", stop_price=stop))
    assert o.status is OrderStatus.NEW
    for price in (stop - D("0.01"), stop - 5):
        engine.on_price(SYM, price, T0)
        assert engine.get_order(o.order_id).status is OrderStatus.NEW and engine.fills() == []
    engine.on_price(SYM, stop, T0)
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and got.avg_fill_price == stop
    assert pos(engine) == (D(4), stop)
    stop = px(engine) - 1
    o = engine.submit(order("SELL", 4, order_type="STOP", stop_price=stop))
    engine.on_price(SYM, stop + D("0.01"), T0)
    engine.on_price(SYM, stop + 7, T0)
    assert engine.get_order(o.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, stop, T0)
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and got.avg_fill_price == stop
    assert engine.position(SYM) is None and len(engine.fills()) == 2


def test_stop_limit_triggers_then_behaves_as_limit(engine_factory):
    engine = engine_factory()
    p = px(engine)
    stop, lim = p + 1, p + 2
    o = engine.submit(order("BUY", 3, order_type="STOP_LIMIT", stop_price=stop, limit_price=lim))
    engine.on_price(SYM, stop - D("0.01"), T0)
    assert engine.get_order(o.order_id).raw_status == "new"
    engine.on_price(SYM, lim + D("0.5"), T0)  # crosses the stop but is above the limit
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.NEW and got.raw_status == "triggered" and engine.fills() == []
    engine.on_price(SYM, stop - D("0.5"), T0)  # below the stop, but the order is a live limit now
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and got.avg_fill_price == stop - D("0.5") <= lim


# -- IOC / FOK ----------------------------------------------------------------------------------

def test_ioc_fills_at_once_or_is_cancelled(engine_factory):
    engine = engine_factory()
    p = px(engine)
    assert engine.submit(order("BUY", 2, tif="IOC")).status is OrderStatus.FILLED
    o = engine.submit(limit("BUY", 2, p - 1, tif="IOC"))
    assert o.status is OrderStatus.CANCELLED and o.filled_qty == 0
    engine.on_price(SYM, p - 5, T0)
    assert len(engine.fills()) == 1 and engine.get_order(o.order_id).status is OrderStatus.CANCELLED


def test_ioc_with_partial_model_fills_one_chunk_and_cancels_rest(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.25"))
    p = px(engine)
    o = engine.submit(order("BUY", 8, tif="IOC"))
    assert o.status is OrderStatus.CANCELLED and o.filled_qty == 2
    [fill] = engine.fills()
    assert fill.qty == 2 and engine.cash == START - 2 * p and pos(engine) == (D(2), p)
    assert engine.open_orders() == []
    engine.on_price(SYM, p, T0)
    assert len(engine.fills()) == 1


@pytest.mark.parametrize("fraction", [0, D("0.25")])
def test_fok_fills_fully_or_not_at_all(engine_factory, fraction):
    engine = engine_factory(partial_fill_fraction=fraction)
    p = px(engine)
    miss = engine.submit(limit("BUY", 8, p - 1, tif="FOK"))
    assert miss.status is OrderStatus.CANCELLED and miss.filled_qty == 0 and engine.fills() == []
    o = engine.submit(order("BUY", 8, tif="FOK"))
    if fraction:
        assert o.status is OrderStatus.CANCELLED and o.filled_qty == 0
        assert engine.fills() == [] and engine.cash == START and engine.position(SYM) is None
    else:
        assert o.status is OrderStatus.FILLED and o.filled_qty == 8
        assert [f.qty for f in engine.fills()] == [D(8)] and engine.cash == START - 8 * p
    assert engine.open_orders() == []


# -- partial fills ------------------------------------------------------------------------------

def test_partial_fills_per_update_until_filled(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.25"))
    p = px(engine)
    lim = p - 1
    o = engine.submit(limit("BUY", 10, lim))
    assert o.status is OrderStatus.NEW
    prices = [lim - D("0.10") * i for i in range(10)]
    statuses, updates = [], 0
    for price in prices:
        engine.on_price(SYM, price, T0)
        updates += 1
        statuses.append(engine.get_order(o.order_id).status)
        if statuses[-1] is OrderStatus.FILLED:
            break
    assert statuses[0] is OrderStatus.PARTIALLY_FILLED and statuses[-1] is OrderStatus.FILLED
    fills = engine.fills(order_id=o.order_id)
    assert len(fills) == updates >= 4
    assert all(0 < f.qty <= D("2.5") for f in fills)  # each fill is that fill's qty, capped at 25 %
    assert [f.price for f in fills] == prices[:updates]
    got = engine.get_order(o.order_id)
    assert sum(f.qty for f in fills) == got.filled_qty == 10
    assert close_to(got.avg_fill_price, sum(f.qty * f.price for f in fills) / 10)
    assert engine.cash == START - sum(f.qty * f.price for f in fills)
    assert pos(engine)[0] == 10 and len({f.exec_id for f in fills}) == updates


def test_partial_market_order_first_chunk_at_submit(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.25"))
    p = px(engine)
    o = engine.submit(order("BUY", 8))
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.filled_qty == 2
    assert pos(engine) == (D(2), p)
    for _ in range(3):
        engine.on_price(SYM, p, T0)
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.FILLED and [f.qty for f in engine.fills()] == [D(2)] * 4
    assert engine.cash == START - 8 * p


# -- time in force ------------------------------------------------------------------------------

def test_day_expires_at_session_close_gtc_does_not(engine_factory, clock):
    engine = engine_factory()
    lim = px(engine) - 3
    day = engine.submit(limit("BUY", 1, lim, tif="DAY"))
    gtc = engine.submit(limit("BUY", 1, lim, tif="GTC"))
    engine.on_price(SYM, lim + 1, CLOSE - timedelta(seconds=1))
    assert engine.get_order(day.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, lim + 1, CLOSE + timedelta(minutes=1))
    assert engine.get_order(day.order_id).status is OrderStatus.EXPIRED
    assert engine.get_order(gtc.order_id).status is OrderStatus.NEW
    assert [o.order_id for o in engine.open_orders()] == [gtc.order_id]
    assert engine.account().buying_power == START - lim  # only the GTC still reserves
    engine.on_price(SYM, lim, NEXT_OPEN + timedelta(hours=1))
    assert engine.get_order(day.order_id).status is OrderStatus.EXPIRED
    assert engine.get_order(gtc.order_id).status is OrderStatus.FILLED
    assert [f.broker_id for f in engine.fills()] == [gtc.order_id]
    clock.set(NEXT_OPEN + timedelta(hours=1))
    late = engine.submit(limit("BUY", 1, px(engine) - 3, tif="DAY"))  # placed Thursday, crosses before its close
    engine.on_price(SYM, lim, NEXT_OPEN + timedelta(hours=6, minutes=29))
    assert engine.get_order(late.order_id).status is OrderStatus.FILLED


def test_opg_waits_for_next_open_and_gets_one_chance(engine_factory):
    engine = engine_factory()
    p = px(engine)
    mkt = engine.submit(order("BUY", 1, tif="OPG"))
    lim = engine.submit(limit("BUY", 1, p - 5, tif="OPG"))
    assert mkt.status is OrderStatus.NEW and engine.fills() == []
    engine.on_price(SYM, p - 10, CLOSE + timedelta(hours=2))  # before the next open: nothing
    assert {o.status for o in engine.open_orders()} == {OrderStatus.NEW} and engine.fills() == []
    engine.on_price(SYM, p, NEXT_OPEN)
    assert engine.get_order(mkt.order_id).status is OrderStatus.FILLED
    assert engine.get_order(mkt.order_id).avg_fill_price == p
    assert engine.get_order(lim.order_id).status is OrderStatus.EXPIRED  # its one chance missed
    engine.on_price(SYM, p - 10, NEXT_OPEN + timedelta(minutes=1))
    assert engine.get_order(lim.order_id).status is OrderStatus.EXPIRED and len(engine.fills()) == 1


def test_cls_executes_at_first_price_at_or_after_close(engine_factory):
    engine = engine_factory()
    p = px(engine)
    mkt = engine.submit(order("BUY", 1, tif="CLS"))
    lim = engine.submit(limit("BUY", 1, p - 5, tif="CLS"))
    engine.on_price(SYM, p - 10, CLOSE - timedelta(seconds=1))
    assert engine.fills() == [] and len(engine.open_orders()) == 2
    engine.on_price(SYM, p + 1, CLOSE)
    got = engine.get_order(mkt.order_id)
    assert got.status is OrderStatus.FILLED and got.avg_fill_price == p + 1
    assert engine.get_order(lim.order_id).status is OrderStatus.EXPIRED
    engine.on_price(SYM, p - 10, CLOSE + timedelta(minutes=5))
    assert len(engine.fills()) == 1


def test_one_shot_with_partial_model_fills_one_chunk_then_expires(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.25"))
    p = px(engine)
    o = engine.submit(order("BUY", 8, tif="CLS"))
    engine.on_price(SYM, p, CLOSE)
    got = engine.get_order(o.order_id)
    assert got.status is OrderStatus.EXPIRED and got.filled_qty == 2 and engine.open_orders() == []
    engine.on_price(SYM, p, CLOSE + timedelta(minutes=1))
    assert [f.qty for f in engine.fills()] == [D(2)] and engine.cash == START - 2 * p


# -- market hours (real XNYS calendar) ----------------------------------------------------------

@pytest.mark.parametrize("when", [SATURDAY, CLOSE, datetime(2026, 11, 26, 16, 0, tzinfo=UTC),
                                  datetime(2026, 11, 27, 18, 30, tzinfo=UTC)],
                         ids=["saturday", "close-minute", "thanksgiving", "after-early-close"])
def test_ioc_fok_refused_outside_session(engine_factory, clock, when):
    engine = engine_factory(enforce_market_hours=True)
    clock.set(when)
    p = px(engine)
    with pytest.raises(MarketClosed):
        engine.submit(order("BUY", 1, tif="IOC"))
    with pytest.raises(MarketClosed):
        engine.submit(limit("BUY", 1, p + 1, tif="FOK"))
    assert count(engine, "orders") == count(engine, "fills") == 0 and engine.cash == START


def test_day_market_order_rests_until_next_session(engine_factory, clock):
    engine = engine_factory(enforce_market_hours=True)
    clock.set(SATURDAY)
    o = engine.submit(order("BUY", 2))
    g = engine.submit(limit("BUY", 2, px(engine) + 50))  # marketable, but the market is closed
    assert o.status is OrderStatus.NEW and g.status is OrderStatus.NEW and engine.fills() == []
    engine.on_price(SYM, D(100), SATURDAY + timedelta(days=1))
    engine.on_price(SYM, D(100), MONDAY_OPEN - timedelta(minutes=1))
    assert engine.fills() == [] and len(engine.open_orders()) == 2
    engine.on_price(SYM, D(101), MONDAY_OPEN)
    assert engine.get_order(o.order_id).status is OrderStatus.FILLED
    assert engine.get_order(o.order_id).avg_fill_price == D(101)
    assert engine.get_order(g.order_id).status is OrderStatus.FILLED
    assert engine.cash == START - 4 * D(101)


def test_gtc_does_not_execute_after_close_when_hours_enforced(engine_factory):
    engine = engine_factory(enforce_market_hours=True)
    assert engine.submit(order("BUY", 1, tif="IOC")).status is OrderStatus.FILLED  # inside the session
    lim = px(engine) - 2
    o = engine.submit(limit("BUY", 1, lim))
    engine.on_price(SYM, lim - 1, CLOSE)  # the close minute is outside the session
    engine.on_price(SYM, lim - 1, NEXT_OPEN - timedelta(seconds=1))
    assert engine.get_order(o.order_id).status is OrderStatus.NEW and engine.fills(order_id=o.order_id) == []
    engine.on_price(SYM, lim - 1, NEXT_OPEN)
    assert engine.get_order(o.order_id).avg_fill_price == lim - 1


def test_thanksgiving_closed_for_resting_orders_tick_polls_at_clock(engine_factory, clock):
    engine = engine_factory(enforce_market_hours=True)
    clock.set(datetime(2026, 11, 25, 22, 0, tzinfo=UTC))  # Wed after the close
    o = engine.submit(order("BUY", 2))
    assert engine.tick() == 0
    clock.set(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))  # Thanksgiving, 11:00 New York: closed
    assert engine.tick() == 0 and engine.get_order(o.order_id).status is OrderStatus.NEW
    clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # Friday, open (early close)
    assert engine.tick() == 1
    assert engine.get_order(o.order_id).avg_fill_price == px(engine) and engine.cash == START - 2 * px(engine)


def test_day_order_on_early_close_day_expires_at_1300_new_york(engine_factory, clock):
    engine = engine_factory()
    clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # day after Thanksgiving, closes 13:00 NY
    lim = px(engine) - 3
    o = engine.submit(limit("BUY", 1, lim, tif="DAY"))
    engine.on_price(SYM, lim + 1, datetime(2026, 11, 27, 17, 59, tzinfo=UTC))
    assert engine.get_order(o.order_id).status is OrderStatus.NEW
    engine.on_price(SYM, lim + 1, datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    assert engine.get_order(o.order_id).status is OrderStatus.EXPIRED
    engine.on_price(SYM, lim - 1, datetime(2026, 11, 27, 19, 0, tzinfo=UTC))
    assert engine.fills() == []


# -- buying power / shorting --------------------------------------------------------------------

def test_buy_beyond_cash_raises_and_writes_nothing(engine_factory):
    engine = engine_factory(starting_cash=1000)
    before = ledger_snapshot(engine)
    qty = int(D(1000) / px(engine)) + 1
    with pytest.raises(InsufficientFunds):
        engine.submit(order("BUY", qty))
    with pytest.raises(InsufficientFunds):
        engine.submit(limit("BUY", 1, 1001))
    assert count(engine, "orders") == count(engine, "fills") == count(engine, "positions") == 0
    assert ledger_snapshot(engine) == before and engine.cash == 1000 and engine.open_orders() == []


def test_commission_counts_towards_buying_power(engine_factory):
    p_engine = engine_factory(starting_cash=1000, commission=5)
    p = px(p_engine)
    qty = int((D(1000) - 5) / p)
    with pytest.raises(InsufficientFunds):  # enough for the shares, not for shares + commission
        p_engine.submit(limit("BUY", 1, D(1000) - D("4.99")))
    assert p_engine.submit(order("BUY", qty)).status is OrderStatus.FILLED
    assert p_engine.cash == 1000 - qty * p - 5


def test_resting_buys_reserve_cash(engine_factory):
    engine = engine_factory(starting_cash=10000)
    lim = px(engine) - 2
    qty = int(D(6000) / lim)
    first = engine.submit(limit("BUY", qty, lim))
    acct = engine.account()
    assert acct.cash == 10000 and acct.buying_power == 10000 - qty * lim
    with pytest.raises(InsufficientFunds):
        engine.submit(limit("BUY", qty, lim))
    assert count(engine, "orders") == 1
    engine.cancel(first.order_id)
    assert engine.account().buying_power == 10000
    assert engine.submit(limit("BUY", qty, lim)).status is OrderStatus.NEW


def test_sell_beyond_position_rejected_unless_short_allowed(engine_factory, tmp_path):
    engine = engine_factory()
    with pytest.raises(OrderRejected):
        engine.submit(order("SELL", 1))
    assert count(engine, "orders") == 0
    engine.submit(order("BUY", 10))
    p = px(engine)
    engine.submit(limit("SELL", 6, p + 10))  # open sell: 6 of the 10 are spoken for
    with pytest.raises(OrderRejected):
        engine.submit(order("SELL", 5))
    assert count(engine, "orders") == 2
    assert engine.submit(order("SELL", 4)).status is OrderStatus.FILLED
    short = engine_factory(db=tmp_path / "short.sqlite", allow_short=True)
    o = short.submit(order("SELL", 3))
    assert o.status is OrderStatus.FILLED and pos(short) == (D(-3), p) and short.cash == START + 3 * p


# -- idempotency --------------------------------------------------------------------------------

def test_resubmitting_same_client_order_id_returns_same_order(engine_factory):
    engine = engine_factory()
    o = order("BUY", 5, client_order_id="my-order-1")
    first = engine.submit(o)
    cash = engine.cash
    again = engine.submit(o)
    again2 = engine.submit(order("BUY", 5, client_order_id="my-order-1"))
    assert again.order_id == again2.order_id == first.order_id and again.status is OrderStatus.FILLED
    assert len(engine.fills()) == 1 and engine.cash == cash and count(engine, "orders") == 1
    rest = limit("BUY", 1, px(engine) - 5, client_order_id="my-order-2")
    r1, r2 = engine.submit(rest), engine.submit(rest)
    assert r1.order_id == r2.order_id and len(engine.open_orders()) == 1


def test_same_client_order_id_with_different_fields_is_invalid(engine_factory):
    engine = engine_factory()
    engine.submit(order("BUY", 5, client_order_id="dup"))
    for other in (order("BUY", 6, client_order_id="dup"), order("SELL", 5, client_order_id="dup"),
                  limit("BUY", 5, 10, tif="DAY", client_order_id="dup")):
        with pytest.raises(InvalidOrder) as err:
            engine.submit(other)
        assert err.value.field == "client_order_id"
    assert count(engine, "orders") == 1 and len(engine.fills()) == 1


# -- cancel / get -------------------------------------------------------------------------------

def test_cancel_open_order_then_no_fill(engine_factory):
    engine = engine_factory()
    lim = px(engine) - 2
    o = engine.submit(limit("BUY", 3, lim, client_order_id="c-1"))
    assert engine.get_order("c-1").order_id == o.order_id
    c = engine.cancel(o.order_id)
    assert c.status is OrderStatus.CANCELLED and engine.open_orders() == []
    assert engine.on_price(SYM, lim - 1, T0) == 0
    assert engine.fills() == [] and engine.cash == START
    assert engine.ledger.order(o.order_id).status is OrderStatus.CANCELLED
    o2 = engine.submit(limit("BUY", 3, lim, client_order_id="c-2"))
    assert engine.cancel("c-2").status is OrderStatus.CANCELLED
    assert engine.get_order(o2.order_id).status is OrderStatus.CANCELLED


def test_cancel_partially_filled_keeps_filled_part(engine_factory):
    engine = engine_factory(partial_fill_fraction=D("0.25"))
    o = engine.submit(order("BUY", 8))
    c = engine.cancel(o.order_id)
    assert c.status is OrderStatus.CANCELLED and c.filled_qty == 2 and pos(engine)[0] == 2
    engine.on_price(SYM, px(engine), T0)
    assert len(engine.fills()) == 1


def test_order_history_is_most_recent_first_even_after_updates(engine_factory):
    # Both orders share created_at (the manual clock does not move); "most recent first" must still
    # put the later submission first after the older order is updated (cancelled).
    engine = engine_factory()
    lim = px(engine) - 5
    engine.submit(limit("BUY", 1, lim, client_order_id="older"))
    engine.submit(limit("BUY", 1, lim, client_order_id="newer"))
    assert [o.client_order_id for o in engine.orders()] == ["newer", "older"]
    engine.cancel("older")
    assert [o.client_order_id for o in engine.orders()] == ["newer", "older"]
    assert [o.client_order_id for o in engine.orders(limit=1)] == ["newer"]


def test_cancel_finished_order_returns_it_unchanged_and_unknown_id_raises(engine_factory):
    engine = engine_factory()
    o = engine.submit(order("BUY", 3))
    for key in (o.order_id, o.client_order_id):
        c = engine.cancel(key)
        assert c.status is OrderStatus.FILLED and c.filled_qty == 3 and c.model_dump() == o.model_dump()
    with pytest.raises(OrderNotFound):
        engine.cancel("nope")
    with pytest.raises(OrderNotFound):
        engine.get_order("nope")


# -- persistence --------------------------------------------------------------------------------

def test_reopen_restores_everything(engine_factory, clock, tmp_path):
    clock.set(T0 + timedelta(seconds=7, microseconds=123457))  # sub-second timestamps must round-trip too
    db = tmp_path / "persist.sqlite"
    engine = engine_factory(db=db, commission={"per_share": "0.005", "minimum": "1"}, allow_short=True,
                            partial_fill_fraction=D("0.5"))
    p = px(engine)
    engine.submit(order("BUY", 10))
    engine.on_price(SYM, p + 1, clock())
    engine.submit(order("SELL", 4, symbol="MSFT"))
    resting = engine.submit(limit("BUY", 4, p - 3, client_order_id="rest-1"))
    stop = engine.submit(order("BUY", 2, order_type="STOP_LIMIT", stop_price=p + 5, limit_price=p + 6))
    engine.on_price(SYM, p + 7, clock())  # triggers the stop-limit without filling it
    engine.cancel(engine.submit(limit("BUY", 1, p - 9)).order_id)
    state = memory_snapshot(engine), [o.model_dump() for o in engine.orders()], [f.model_dump() for f in engine.fills()]
    engine.close()

    again = engine_factory(db=db, allow_short=True, partial_fill_fraction=D("0.5"))
    assert (memory_snapshot(again), [o.model_dump() for o in again.orders()],
            [f.model_dump() for f in again.fills()]) == state
    assert len(state[0][2]) == 3 and len(state[2]) == 3  # rest-1, the triggered stop-limit, the MSFT remainder
    assert again.submit(limit("BUY", 4, p - 3, client_order_id="rest-1")).order_id == resting.order_id
    again.on_price(SYM, p - 3, clock())
    again.on_price(SYM, p - 3, clock())
    assert again.get_order(resting.order_id).status is OrderStatus.FILLED
    assert again.get_order(stop.order_id).status is OrderStatus.FILLED  # stayed triggered across reopen
    assert len({f.exec_id for f in again.fills()}) == len(again.fills())


# -- atomicity ----------------------------------------------------------------------------------

TRIGGERS = {
    "fills": "CREATE TRIGGER boom BEFORE INSERT ON fills BEGIN SELECT RAISE(ABORT, 'boom'); END",
    "positions": "CREATE TRIGGER boom BEFORE INSERT ON positions BEGIN SELECT RAISE(ABORT, 'boom'); END",
    "account": "CREATE TRIGGER boom BEFORE UPDATE ON account BEGIN SELECT RAISE(ABORT, 'boom'); END",
}


@pytest.mark.parametrize("table", sorted(TRIGGERS))
def test_failed_commit_on_submit_changes_nothing(engine_factory, table):
    engine = engine_factory()
    engine.submit(order("BUY", 3, symbol="MSFT"))
    engine.submit(limit("BUY", 2, px(engine) - 4))
    ledger_before, memory_before = ledger_snapshot(engine), memory_snapshot(engine)
    engine.ledger._conn.execute(TRIGGERS[table])
    o = order("BUY", 5, client_order_id="atomic-1")
    with pytest.raises(WorkbenchError, match="boom"):
        engine.submit(o)
    assert ledger_snapshot(engine) == ledger_before
    assert memory_snapshot(engine) == memory_before
    with pytest.raises(OrderNotFound):
        engine.get_order("atomic-1")
    engine.ledger._conn.execute("DROP TRIGGER boom")
    p = px(engine)
    done = engine.submit(o)
    assert done.status is OrderStatus.FILLED and pos(engine) == (D(5), p)
    assert engine.cash == memory_before[0] - 5 * p and engine.ledger.account()[0] == engine.cash


def test_failed_commit_on_price_update_changes_nothing(engine_factory):
    engine = engine_factory()
    lim = px(engine) - 4
    o = engine.submit(limit("BUY", 2, lim))
    ledger_before, memory_before = ledger_snapshot(engine), memory_snapshot(engine)
    engine.ledger._conn.execute(TRIGGERS["fills"])
    with pytest.raises(WorkbenchError, match="boom"):
        engine.on_price(SYM, lim, T0)
    assert ledger_snapshot(engine) == ledger_before and memory_snapshot(engine) == memory_before
    engine.ledger._conn.execute("DROP TRIGGER boom")
    assert engine.on_price(SYM, lim, T0) == 1
    assert engine.get_order(o.order_id).status is OrderStatus.FILLED and engine.cash == START - 2 * lim


# -- listeners ----------------------------------------------------------------------------------

def test_listeners_receive_events_after_commit(engine_factory):
    engine = engine_factory()
    fills, orders, seen_in_ledger = [], [], []

    def on_fill(f):
        fills.append(f)
        seen_in_ledger.append(engine.ledger._query("SELECT qty FROM fills WHERE exec_id = ?", (f.exec_id,)))

    def on_order(o):
        orders.append(o)
        seen_in_ledger.append(engine.ledger.order(o.order_id).status is o.status)

    engine.add_fill_listener(lambda f: 1 / 0)  # a broken listener must not break the engine or starve others
    unsub = engine.add_fill_listener(on_fill)
    engine.add_order_listener(on_order)
    lim = px(engine) - 2
    o = engine.submit(limit("BUY", 4, lim))
    assert [x.status for x in orders] == [OrderStatus.NEW] and fills == []
    engine.on_price(SYM, lim, T0)
    assert [x.status for x in orders] == [OrderStatus.NEW, OrderStatus.FILLED]
    assert [(f.broker_id, f.qty, f.price) for f in fills] == [(o.order_id, D(4), lim)]
    assert seen_in_ledger == [True, [("4",)], True]
    unsub()
    engine.submit(order("BUY", 1))
    assert len(fills) == 1 and len(orders) == 3


def test_replace_modifies_a_working_order_and_may_fill_it(engine_factory, clock):
    engine = engine_factory()
    price = engine.prices.get_market_price("AAPL", clock())
    far = (price * Decimal("0.5")).quantize(Decimal("0.01"))
    order = engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=10, order_type="limit", limit_price=far))
    bigger = engine.replace(order.order_id, qty=Decimal(20))
    assert bigger.qty == 20 and bigger.status is OrderStatus.NEW and bigger.raw_status == "replaced"
    with pytest.raises(InvalidOrder) as info:
        engine.replace(order.order_id, limit_price=Decimal("-1"))
    assert info.value.field == "limit_price"
    with pytest.raises(InvalidOrder):
        engine.replace(order.order_id, stop_price=Decimal("1"))  # a limit order takes no stop
    marketable = (price * Decimal("1.01")).quantize(Decimal("0.01"))
    filled = engine.replace(order.client_order_id, limit_price=marketable)
    assert filled.status is OrderStatus.FILLED and filled.filled_qty == 20 and filled.avg_fill_price <= marketable
    assert len(engine.fills()) == 1
    with pytest.raises(OrderRejected):
        engine.replace(order.order_id, qty=Decimal(30))
    assert engine.ledger.order(order.order_id).qty == 20  # persisted


def test_replace_down_to_the_filled_quantity_finishes_without_a_zero_fill(engine_factory, clock):
    engine = engine_factory(partial_fill_fraction="0.5")
    order = engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=10))
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == 5
    done = engine.replace(order.order_id, qty=Decimal(5))
    assert done.status is OrderStatus.FILLED and done.qty == 5
    assert [f.qty for f in engine.fills()] == [5]
