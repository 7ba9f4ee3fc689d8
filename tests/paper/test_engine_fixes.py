"""Issue 7 §2: replace checks, one-shot and DAY expiry, events after a failed commit, unambiguous ids,
per-order commission. Each test failed on the engine before the fix."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workbench.core.enums import OrderStatus
from workbench.core.errors import InsufficientFunds, InvalidOrder, OrderNotFound, OrderRejected, WorkbenchError
from workbench.core.models import NeutralOrder
from workbench.marketdata.sim import SimProvider
from workbench.paper.config import PaperConfig
from workbench.paper.engine import PaperEngine

D = Decimal
SYM = "AAPL"
T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # Wed 10:00 New York
WED_EVENING = datetime(2026, 11, 18, 23, 0, tzinfo=UTC)
THU_OPEN = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)
THU_CLOSE = datetime(2026, 11, 19, 21, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
CLOSE = datetime(2026, 11, 18, 21, 0, tzinfo=UTC)


def px(engine):
    return engine.prices.get_market_price(SYM, engine.clock())


def limit(side, qty, price, **kw):
    return NeutralOrder(symbol=SYM, side=side, qty=D(qty), order_type="limit", limit_price=D(price), **kw)


def rows(engine):
    return engine.ledger._query("SELECT * FROM orders ORDER BY order_id"), engine.ledger._query("SELECT * FROM fills")


# -- replace --------------------------------------------------------------------------------------

def test_replace_runs_the_no_short_check(engine_factory):
    engine = engine_factory()
    engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=10))
    sell = engine.submit(limit("sell", 10, px(engine) + 20, tif="GTC"))
    before = rows(engine)
    with pytest.raises(OrderRejected) as info:
        engine.replace(sell.order_id, qty=D(20))
    assert info.value.code == "short_not_allowed" and rows(engine) == before
    assert engine.replace(sell.order_id, qty=D(8)).qty == 8  # reducing is fine


def test_replace_runs_the_buying_power_check_including_commission(engine_factory):
    engine = engine_factory(starting_cash=1000, commission={"per_order": "5"})
    lim = D(90)
    order = engine.submit(limit("buy", 5, lim, tif="GTC"))  # 450 + 5
    assert engine.account().buying_power == 1000 - 455
    with pytest.raises(InsufficientFunds):
        engine.replace(order.order_id, qty=D(12))  # 1080 + 5 > 1000
    assert engine.replace(order.order_id, qty=D(10)).qty == 10  # 900 + 5
    assert engine.account().buying_power == 1000 - 905


class GatedPrices(SimProvider):
    """Sim prices; while armed, each price lookup waits until two callers are inside at once."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.barrier: threading.Barrier | None = None

    def get_market_price(self, symbol, at=None):
        if self.barrier is not None:
            self.barrier.wait(timeout=10)
        return super().get_market_price(symbol, at)


def test_concurrent_replaces_of_qty_and_price_both_stick(tmp_path, clock):
    prices = GatedPrices(clock=clock)
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "r.sqlite"), slippage_bps=0, commission=0), prices,
                         clock=clock)
    try:
        lim = (px(engine) * D("0.5")).quantize(D("0.01"))
        order = engine.submit(limit("buy", 10, lim, tif="GTC"))
        prices.barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(**change):
            try:
                engine.replace(order.order_id, **change)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, kwargs={"qty": D(20)}),
                   threading.Thread(target=run, kwargs={"limit_price": lim - 1})]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
        got = engine.get_order(order.order_id)
        assert (got.qty, got.limit_price) == (20, lim - 1)
        assert engine.ledger.order(order.order_id).qty == 20
    finally:
        prices.barrier = None
        engine.close()


# -- OPG / CLS / DAY -----------------------------------------------------------------------------

def test_opg_placed_wednesday_evening_never_fills_on_saturday(engine_factory, clock):
    engine = engine_factory()
    clock.set(WED_EVENING)
    opg = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, tif="OPG"))
    assert opg.status is OrderStatus.NEW
    clock.set(SATURDAY)  # the kernel was down from Wednesday night until Saturday
    engine.on_price(SYM, D(100), SATURDAY)
    got = engine.get_order(opg.order_id)
    assert got.status is OrderStatus.EXPIRED and engine.fills() == []
    assert engine.account().buying_power == engine.cash == D(100000)


def test_opg_expires_on_read_after_its_opening_window_without_any_price(engine_factory, clock):
    engine = engine_factory()
    clock.set(WED_EVENING)
    opg = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, tif="OPG"))
    clock.set(THU_OPEN + timedelta(minutes=30))
    assert engine.get_order(opg.order_id).status is OrderStatus.EXPIRED
    assert engine.open_orders() == []


def test_opg_fills_at_the_open_it_was_placed_for(engine_factory, clock):
    engine = engine_factory()
    clock.set(WED_EVENING)
    opg = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, tif="OPG"))
    engine.on_price(SYM, D(100), THU_OPEN + timedelta(seconds=3))
    assert engine.get_order(opg.order_id).status is OrderStatus.FILLED


def test_cls_after_its_closing_window_expires(engine_factory):
    engine = engine_factory()
    cls = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, tif="CLS"))
    engine.on_price(SYM, D(100), CLOSE + timedelta(hours=3))
    assert engine.get_order(cls.order_id).status is OrderStatus.EXPIRED and engine.fills() == []


def test_day_order_expires_at_the_close_with_no_price_and_frees_buying_power(engine_factory, clock):
    engine = engine_factory(starting_cash=10000, commission={"per_order": "1"})
    lim = px(engine) - 5
    day = engine.submit(limit("buy", 10, lim))
    assert engine.account().buying_power == 10000 - 10 * lim - 1
    clock.set(CLOSE + timedelta(minutes=1))
    assert engine.account().buying_power == 10000  # evaluated on read
    got = engine.get_order(day.order_id)
    assert got.status is OrderStatus.EXPIRED and got.updated_at == CLOSE


def test_day_order_expires_on_the_ticker_even_when_prices_fail(tmp_path, clock):
    class Down(SimProvider):
        broken = False

        def get_market_price(self, symbol, at=None):
            if self.broken:
                raise ConnectionError("no data")
            return super().get_market_price(symbol, at)

    prices = Down(clock=clock)
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "t.sqlite"), slippage_bps=0, commission=0), prices,
                         clock=clock)
    seen: list = []
    stop_listening = engine.add_order_listener(seen.append)
    try:
        lim = px(engine) - 5
        day = engine.submit(limit("buy", 1, lim))
        prices.broken = True
        assert engine.tick(CLOSE + timedelta(seconds=1)) == 1
        assert [o.status for o in seen] == [OrderStatus.NEW, OrderStatus.EXPIRED]
        assert engine.ledger.order(day.order_id).status is OrderStatus.EXPIRED
        prices.broken = False
        other = engine.submit(limit("buy", 1, lim, tif="DAY"))
        prices.broken = True
        stop_listening()  # with nobody listening, expiring still counts and commits
        assert engine.tick(THU_CLOSE) == 1
        assert engine.ledger.order(other.order_id).status is OrderStatus.EXPIRED
    finally:
        engine.close()


# -- events survive a failed commit ----------------------------------------------------------------

def test_a_failed_commit_in_on_price_keeps_the_events_of_what_did_commit(engine_factory):
    engine = engine_factory()
    lim = px(engine) - 4
    first = engine.submit(limit("buy", 1, lim, tif="GTC"))
    second = engine.submit(limit("buy", 1, lim, tif="GTC"))
    fills: list = []
    engine.add_fill_listener(fills.append)
    engine.ledger._conn.execute(
        f"CREATE TRIGGER boom BEFORE INSERT ON fills WHEN NEW.order_id = '{second.order_id}' "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END")
    with pytest.raises(WorkbenchError, match="boom"):
        engine.on_price(SYM, lim, T0)
    assert [f.broker_id for f in fills] == [first.order_id]
    assert [f.broker_id for f in engine.fills()] == [first.order_id]
    assert engine.get_order(second.order_id).status is OrderStatus.NEW


# -- unambiguous ids -----------------------------------------------------------------------------

def test_client_order_ids_shaped_like_engine_ids_are_refused(engine_factory):
    engine = engine_factory()
    with pytest.raises(InvalidOrder) as info:
        engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=1, client_order_id="P000000002"))
    assert info.value.field == "client_order_id" and engine.orders() == []


def test_cancel_by_id_never_hits_another_order_whose_client_id_it_is(engine_factory):
    engine = engine_factory()
    lim = px(engine) - 5
    mine = engine.submit(limit("buy", 1, lim, tif="GTC", client_order_id="P2"))
    other = engine.submit(limit("buy", 1, lim, tif="GTC"))
    assert other.order_id == "P000000002"
    assert engine.cancel("P2").order_id == mine.order_id  # "P2" is not an engine id: a client id
    assert engine.get_order(other.order_id).status is OrderStatus.NEW
    with pytest.raises(OrderNotFound):
        engine.get_order("P000000099")


# -- commission ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [D(0), D("0.1")], ids=["one-fill", "ten-fills"])
def test_per_order_and_minimum_commission_are_charged_once_per_order(engine_factory, fraction):
    engine = engine_factory(commission={"per_order": "1", "per_share": "0.005", "minimum": "1"},
                            partial_fill_fraction=fraction)
    order = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=100))
    p = px(engine)
    while engine.get_order(order.order_id).is_open:
        engine.on_price(SYM, p, T0)
    fills = engine.fills()
    assert len(fills) == (1 if not fraction else 10)
    assert sum(f.commission for f in fills) == D("1.5")  # 1 + 0.005 x 100, however it filled
    assert engine.cash == D(100000) - 100 * p - D("1.5")


def test_minimum_commission_is_reached_once(engine_factory):
    engine = engine_factory(commission={"per_share": "0.01", "minimum": "2"}, partial_fill_fraction=D("0.5"))
    order = engine.submit(NeutralOrder(symbol=SYM, side="buy", qty=100))
    engine.on_price(SYM, px(engine), T0)
    assert [f.commission for f in engine.fills(order_id=order.order_id)] == [D(2), D(0)]


# -- one transaction per acknowledged market order -------------------------------------------------

def test_a_market_order_that_fills_at_once_is_one_transaction_through_the_public_api(settings_dict):
    import workbench

    broker = workbench.connect("paper", settings=settings_dict)
    try:
        statements: list[str] = []
        broker.adapter.engine.ledger._conn.set_trace_callback(statements.append)
        order = broker.place_market_order("AAPL", 3, "buy")
        broker.adapter.engine.ledger._conn.set_trace_callback(None)
        assert order.status is OrderStatus.FILLED
        assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert sum(s.startswith("INSERT INTO orders") for s in statements) == 1
        assert sum(s.startswith("INSERT INTO fills") for s in statements) == 1
    finally:
        broker.close()
