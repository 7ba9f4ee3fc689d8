"""What-if pricing and the margin account (``--margin``) with the real ib_async 2.1.0 over loopback.

A what-if prices an order at what it would fill at: a market order and a marketable limit at the market
(with the engine's slippage, never beyond the limit), a resting limit at its limit. A margin account
refuses (201, nothing recorded) an order whose initial margin after it, with the open orders, would exceed
the equity with loan value after it; its BuyingPower never counts short proceeds as spendable.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest

from workbench.core.models import NeutralOrder

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import LimitOrder, MarketOrder, Stock, StopOrder  # noqa: E402

pytestmark = pytest.mark.timeout(90)
SLIP = Decimal("0.001")  # slippage_bps=10
MARGIN_REFUSAL = "must exceed the new total Initial Margin"


def qualified(ib: Any, symbol: str = "AAPL") -> Any:
    (contract,) = ib.qualifyContracts(Stock(symbol, "SMART", "USD"))
    return contract


def market(engine: Any, symbol: str = "AAPL") -> Decimal:
    return Decimal(engine.prices.get_market_price(symbol, engine.clock()))


def slipped(side: str, price: Decimal) -> Decimal:
    """The engine's fill price for ``price``: moved against the trader by the slippage, rounded against him."""
    if side == "BUY":
        return (price * (1 + SLIP)).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
    return (price * (1 - SLIP)).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)


def usd(ib: Any, tag: str) -> float:
    return next(float(v.value) for v in ib.accountValues() if (v.tag, v.currency) == (tag, "USD"))


def errors_of(ib: Any, code: int = 201) -> dict[int, str]:
    seen: dict[int, str] = {}
    ib.errorEvent += lambda req_id, c, msg, contract: seen.__setitem__(req_id, msg) if c == code else None
    return seen


# -- what-if prices at what the order would fill at ------------------------------------------


def test_what_if_prices_a_marketable_limit_at_the_market(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True, slippage_bps=10, commission=1)
    ib = client(emu)
    contract, price = qualified(ib), market(engine)
    fill = slipped("SELL", price)
    state = ib.whatIfOrder(contract, LimitOrder("SELL", 100, 1.11))  # the ordering notebook's order, smaller
    assert float(state.initMarginChange) == pytest.approx(float(Decimal("0.5") * 100 * price), abs=0.01)  # not 55.50
    assert float(state.maintMarginChange) == pytest.approx(float(Decimal("0.3") * 100 * price), abs=0.01)
    assert float(state.equityWithLoanChange) == pytest.approx(float(-1 - 100 * (price - fill)), abs=0.01)
    trade = ib.placeOrder(contract, LimitOrder("SELL", 100, 1.11))  # and it fills where the what-if said
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled")
    assert Decimal(repr(trade.orderStatus.avgFillPrice)) == fill

    buy = ib.whatIfOrder(contract, LimitOrder("BUY", 10, float(round(price * 2, 2))))  # marketable buy limit
    assert float(buy.equityWithLoanChange) == pytest.approx(float(-1 - 10 * (slipped("BUY", price) - price)), abs=0.01)


def test_what_if_prices_a_resting_limit_at_its_limit_and_a_market_order_at_the_market(
        gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True, slippage_bps=10, commission=1)
    ib = client(emu)
    contract, price = qualified(ib), market(engine)
    limit = (price * Decimal("0.8")).quantize(Decimal("0.01"))
    resting = ib.whatIfOrder(contract, LimitOrder("BUY", 100, float(limit)))
    assert float(resting.initMarginChange) == pytest.approx(float(Decimal("0.5") * 100 * limit), abs=0.01)
    assert float(resting.equityWithLoanChange) == pytest.approx(-1, abs=0.01)  # fills at its limit: no slippage
    mkt = ib.whatIfOrder(contract, MarketOrder("BUY", 100))
    assert float(mkt.initMarginChange) == pytest.approx(float(Decimal("0.5") * 100 * price), abs=0.01)
    assert float(mkt.equityWithLoanChange) == pytest.approx(float(-1 - 100 * (slipped("BUY", price) - price)),
                                                            abs=0.01)
    stop = (price * Decimal("1.1")).quantize(Decimal("0.01"))
    waiting = ib.whatIfOrder(contract, StopOrder("BUY", 100, float(stop)))  # executes from its stop, once triggered
    assert float(waiting.initMarginChange) == pytest.approx(float(Decimal("0.5") * 100 * stop), abs=0.01)
    assert float(waiting.equityWithLoanChange) == pytest.approx(float(-1 - 100 * (slipped("BUY", stop) - stop)),
                                                                abs=0.01)
    assert engine.orders() == []


# -- a margin account enforces its margin ---------------------------------------------------


def test_an_oversize_short_is_refused_with_201_and_nothing_recorded(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True)  # $100k; 20000 AAPL is about $2.9M
    ib = client(emu)
    refused = errors_of(ib)
    trade = ib.placeOrder(qualified(ib), MarketOrder("SELL", 20000))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Cancelled")
    reason = refused[trade.order.orderId]
    assert MARGIN_REFUSAL in reason and "Equity with Loan Value [100000.00 USD]" in reason
    assert engine.orders() == [] and engine.fills() == [] and engine.position("AAPL") is None
    assert ib.positions() == [] and engine.cash == 100_000


def test_what_if_of_an_oversize_order_gives_the_numbers_and_the_refusal(gateway: Any, client: Any,
                                                                          clock: Any) -> None:
    emu, engine = gateway(allow_short=True)
    ib = client(emu)
    refused = errors_of(ib)
    state = ib.whatIfOrder(qualified(ib), MarketOrder("SELL", 20000))  # as a real gateway: numbers and a 201
    assert float(state.initMarginAfter) > float(state.equityWithLoanAfter)
    ib_eventually(ib, lambda: any(MARGIN_REFUSAL in m for m in refused.values()))
    assert engine.orders() == []


def test_a_reasonable_short_fills_and_the_account_stays_consistent(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True)
    ib = client(emu)
    short = ib.placeOrder(qualified(ib), MarketOrder("SELL", 500))  # about $72k: initial margin about $36k
    ib_eventually(ib, lambda: short.orderStatus.status == "Filled")
    ib_eventually(ib, lambda: usd(ib, "GrossPositionValue") > 0)
    available, excess = usd(ib, "AvailableFunds"), usd(ib, "ExcessLiquidity")
    assert 0 <= available <= excess
    assert available == pytest.approx(usd(ib, "EquityWithLoanValue") - usd(ib, "InitMarginReq"), abs=0.01)
    power, cash = usd(ib, "BuyingPower"), usd(ib, "TotalCashValue")
    assert power == pytest.approx(2 * available, abs=0.01)  # Reg T: 50% initial, so twice the available funds
    assert power < cash  # the short sale's proceeds are not spendable


def test_short_proceeds_do_not_buy_beyond_the_margin(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True)
    ib = client(emu)
    short = ib.placeOrder(qualified(ib), MarketOrder("SELL", 1000))  # about $145k short: initial $72k of $100k
    ib_eventually(ib, lambda: short.orderStatus.status == "Filled")
    assert engine.cash > 200_000  # the engine would let the proceeds pay for a buy
    refused = errors_of(ib)
    msft = qualified(ib, "MSFT")
    qty = int(Decimal(90_000) / market(engine, "MSFT"))  # $90k long: initial $45k more, $117k > $100k
    buy = ib.placeOrder(msft, MarketOrder("BUY", qty))
    ib_eventually(ib, lambda: buy.orderStatus.status == "Cancelled")
    assert MARGIN_REFUSAL in refused[buy.order.orderId] and engine.position("MSFT") is None
    small = ib.placeOrder(msft, MarketOrder("BUY", qty // 3))  # $30k: initial $87k, within the equity
    ib_eventually(ib, lambda: small.orderStatus.status == "Filled")
    ib_eventually(ib, lambda: usd(ib, "GrossPositionValue") > 150_000)
    assert usd(ib, "AvailableFunds") >= 0


def test_resting_orders_count_towards_the_margin(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True)
    ib = client(emu)
    contract = qualified(ib)
    above = float((market(engine) * Decimal("1.05")).quantize(Decimal("0.01")))
    refused = errors_of(ib)
    first = ib.placeOrder(contract, LimitOrder("SELL", 1000, above))  # rests; would need about $76k
    ib_eventually(ib, lambda: first.orderStatus.status == "Submitted")
    second = ib.placeOrder(contract, LimitOrder("SELL", 1000, above))  # both would need about $152k
    ib_eventually(ib, lambda: second.orderStatus.status == "Cancelled")
    assert MARGIN_REFUSAL in refused[second.order.orderId] and len(engine.open_orders()) == 1
    first.order.totalQuantity = 2000  # a modification is checked too (without the order it replaces)
    ib.placeOrder(contract, first.order)
    ib_eventually(ib, lambda: any(e.errorCode == 321 and MARGIN_REFUSAL in e.message for e in first.log))
    assert [o.qty for o in engine.open_orders()] == [1000]
    first.order.totalQuantity = 1200  # about $91k: fits
    ib.placeOrder(contract, first.order)
    ib_eventually(ib, lambda: [o.qty for o in engine.open_orders()] == [1200])


def test_an_order_that_reduces_the_requirement_is_accepted_when_under_margined(
        gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(allow_short=True)
    engine.submit(NeutralOrder(symbol="AAPL", side="sell", qty=Decimal(2000), order_type="market"))  # ~$290k short,
    ib = client(emu)                                                          # placed behind the gateway's back
    assert usd(ib, "AvailableFunds") < 0
    refused = errors_of(ib)
    contract = qualified(ib)
    more = ib.placeOrder(contract, MarketOrder("SELL", 1))
    ib_eventually(ib, lambda: more.orderStatus.status == "Cancelled")
    assert MARGIN_REFUSAL in refused[more.order.orderId]
    cover = ib.placeOrder(contract, MarketOrder("BUY", 500))  # still under-margined after it, but less
    ib_eventually(ib, lambda: cover.orderStatus.status == "Filled")
    assert engine.position("AAPL").qty == -1500


def test_shrinking_a_working_order_is_accepted_when_under_margined(gateway: Any, client: Any, clock: Any) -> None:
    """A modification is compared with the order as it stands: one that lowers the requirement is accepted even
    on an account that is under margin (and would still be after it)."""
    emu, engine = gateway(allow_short=True)
    ib = client(emu)
    contract = qualified(ib)
    above = float((market(engine) * Decimal("1.05")).quantize(Decimal("0.01")))
    resting = ib.placeOrder(contract, LimitOrder("SELL", 600, above))  # rests; fits
    ib_eventually(ib, lambda: resting.orderStatus.status == "Submitted")
    engine.submit(NeutralOrder(symbol="AAPL", side="sell", qty=Decimal(1200), order_type="market"))  # behind the
    refused = errors_of(ib)                                                    # gateway's back
    more = ib.placeOrder(contract, MarketOrder("SELL", 1))
    ib_eventually(ib, lambda: more.orderStatus.status == "Cancelled")
    assert MARGIN_REFUSAL in refused[more.order.orderId]  # under margin now
    resting.order.totalQuantity = 300
    ib.placeOrder(contract, resting.order)
    ib_eventually(ib, lambda: [o.qty for o in engine.open_orders()] == [300])
    assert not any(e.errorCode == 321 for e in resting.log)


def test_a_cash_account_is_not_margin_checked(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway()
    ib = client(emu)
    buy = ib.placeOrder(qualified(ib), MarketOrder("BUY", 600))  # about $87k of $100k: a cash account pays in full
    ib_eventually(ib, lambda: buy.orderStatus.status == "Filled")
    ib_eventually(ib, lambda: usd(ib, "GrossPositionValue") > 0)
    assert usd(ib, "BuyingPower") == pytest.approx(float(engine.account().buying_power), abs=0.01)


def test_workbench_sees_a_margin_refusal_as_insufficient_funds(gateway: Any, clock: Any) -> None:
    import workbench
    from workbench.core.errors import InsufficientFunds

    emu, engine = gateway(allow_short=True)
    broker = workbench.connect("ib", settings={"ib": {**emu.settings(), "client_id": 3}})
    try:
        with pytest.raises(InsufficientFunds, match="Initial Margin"):
            broker.place_market_order("AAPL", 20000, "sell")
        assert engine.orders() == [] and broker.get_positions().empty
    finally:
        broker.close()
