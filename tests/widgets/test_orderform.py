"""The ticket's pure rules: ticks, typed numbers, the fat-finger guard, buying power after a trade."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from workbench.core.enums import Side
from workbench.core.errors import InvalidInput
from workbench.core.models import NeutralOrder
from workbench.widgets.config import WidgetsConfig
from workbench.widgets.orderform import buying_power_after, guard_reason, parse_number, round_to_tick, tick_size

CFG = WidgetsConfig(confirm_notional=D(50000), confirm_away_pct=D(5))


@pytest.mark.parametrize("price, tick, rounded", [
    (D("145.127"), D("0.01"), D("145.13")), (D("1.005"), D("0.01"), D("1.00")), (D("0.43217"), D("0.0001"),
                                                                                  D("0.4322")),
    (D("0.99996"), D("0.0001"), D("1.0000")), (D("0.00004"), D("0.0001"), D("0.0000")),
])
def test_ticks_follow_rule_612(price: D, tick: D, rounded: D) -> None:
    assert tick_size(price) == tick and round_to_tick(price) == rounded


def test_typed_numbers() -> None:
    assert parse_number(10.0, "qty") == D(10) and str(parse_number(10.0, "qty")) == "10"
    assert parse_number(0.1, "limit_price") == D("0.1")  # repr, not binary float noise
    assert parse_number(0, "qty") is None and parse_number("", "qty") is None
    with pytest.raises(InvalidInput) as err:
        parse_number("ten", "qty")
    assert err.value.field == "qty"


def test_the_guard() -> None:
    small = NeutralOrder(symbol="AAPL", side="buy", qty=10)
    assert guard_reason(small, D(100), CFG) is None
    assert "no last price" in guard_reason(small, None, CFG)  # unpriced: fails safe
    assert "confirm_notional" in guard_reason(NeutralOrder(symbol="AAPL", side="buy", qty=501), D(100), CFG)
    cash = NeutralOrder(symbol="AAPL", side="buy", notional=60000)
    assert "confirm_notional" in guard_reason(cash, None, CFG)  # a cash amount needs no price to be checked
    limit = NeutralOrder(symbol="AAPL", side="sell", qty=1, order_type="limit", limit_price="106")
    assert "6.0% away" in guard_reason(limit, D(100), CFG)
    assert guard_reason(limit.model_copy(update={"limit_price": D("104.99")}), D(100), CFG) is None
    assert "no last price" in guard_reason(limit, None, CFG)  # the notional is known, the distance is not


def test_buying_power_after() -> None:
    bp = D(10000)
    # the paper ledger: cash in, cash out, whatever the position
    assert buying_power_after(bp, Side.BUY, D(10), D(50), D(1), D(0), cash_account=True) == D(9499)
    assert buying_power_after(bp, Side.SELL, D(10), D(50), D(1), D(0), cash_account=True) == D(10499)
    # margin brokers: what closes a position frees buying power, what opens one uses it
    assert buying_power_after(bp, Side.SELL, D(10), D(50), D(1), D(30), cash_account=False) == D(10499)
    assert buying_power_after(bp, Side.SELL, D(10), D(50), D(1), D(4), cash_account=False) == \
        bp + 4 * 50 - 6 * 50 - 1  # sells 4 held, shorts 6
    assert buying_power_after(bp, Side.SELL, D(10), D(50), D(1), D(0), cash_account=False) == D(9499)  # a short
    assert buying_power_after(bp, Side.BUY, D(10), D(50), D(1), D(-10), cash_account=False) == D(10499)  # a cover
