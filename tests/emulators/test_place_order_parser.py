"""The sequential placeOrder parser against frames serialized by ib_async's own Client (no socket)."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.emulators.tws.orders import parse_place_order

ib_async = pytest.importorskip("ib_async")
from ib_async import (  # noqa: E402
    Bag,
    ComboLeg,
    Contract,
    LimitOrder,
    MarketOrder,
    Order,
    PriceCondition,
    Stock,
    StopLimitOrder,
    StopOrder,
    TagValue,
    TimeCondition,
)
from ib_async.client import Client  # noqa: E402

VERSIONS = [157, 160, 166, 170, 176, 177, 178]


def serialize(sv: int, order_id: int, contract: Contract, order: Order) -> list[str]:
    client = Client(ib_async.Wrapper(ib_async.IB()))
    client.connState = Client.CONNECTED
    client._serverVersion = sv
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(order_id, contract, order)
    (msg,) = sent
    fields = msg.split("\0")
    assert fields[-1] == ""
    return fields[:-1]


AAPL = Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")


@pytest.mark.parametrize("sv", VERSIONS)
def test_plain_orders(sv: int) -> None:
    cases = [
        (MarketOrder("BUY", 10, orderRef="wb-1"), "MKT", None, None, ""),
        (LimitOrder("SELL", 5.5, 185.25, tif="GTC"), "LMT", 185.25, None, "GTC"),
        (StopOrder("BUY", 1, 300.0, tif="IOC"), "STP", None, 300.0, "IOC"),
        (StopLimitOrder("BUY", 2, 301.0, 300.0, tif="OPG"), "STP LMT", 301.0, 300.0, "OPG"),
    ]
    for i, (order, kind, lmt, aux, tif) in enumerate(cases, start=7):
        parsed = parse_place_order(serialize(sv, i, AAPL, order), sv)
        assert parsed.order_id == i
        assert parsed.contract["symbol"] == "AAPL" and parsed.contract["primaryExchange"] == "NASDAQ"
        assert parsed.action == order.action and float(parsed.total_quantity) == order.totalQuantity
        assert (parsed.order_type, parsed.lmt_price, parsed.aux_price, parsed.tif) == (kind, lmt, aux, tif)
        assert parsed.order_ref == order.orderRef and parsed.transmit and not parsed.what_if


@pytest.mark.parametrize("sv", VERSIONS)
def test_variable_blocks(sv: int) -> None:
    what_if = LimitOrder("BUY", 1, 10.0, whatIf=True)
    assert parse_place_order(serialize(sv, 1, AAPL, what_if), sv).what_if

    algo = LimitOrder("BUY", 1, 10.0, algoStrategy="Adaptive",
                      algoParams=[TagValue("adaptivePriority", "Normal")], orderRef="after-algo")
    parsed = parse_place_order(serialize(sv, 2, AAPL, algo), sv)
    assert parsed.algo_strategy == "Adaptive" and parsed.order_ref == "after-algo"

    cond = MarketOrder("BUY", 1, conditions=[PriceCondition(price=200.0, conId=1, exch="SMART"),
                                             TimeCondition(time="20261118 15:00:00 UTC")])
    assert parse_place_order(serialize(sv, 3, AAPL, cond), sv).conditions == 2

    child = LimitOrder("SELL", 1, 11.0, parentId=4, transmit=False)
    parsed = parse_place_order(serialize(sv, 5, AAPL, child), sv)
    assert parsed.parent_id == 4 and not parsed.transmit

    bag = Bag(symbol="AAPL", exchange="SMART", currency="USD",
              comboLegs=[ComboLeg(conId=1, ratio=1, action="BUY", exchange="SMART"),
                         ComboLeg(conId=2, ratio=1, action="SELL", exchange="SMART")])
    assert parse_place_order(serialize(sv, 6, bag, LimitOrder("BUY", 1, 1.0)), sv).combo_legs == 2

    hedge = MarketOrder("BUY", 1, hedgeType="D", hedgeParam="0.5", scalePriceIncrement=0.05)
    assert parse_place_order(serialize(sv, 7, AAPL, hedge), sv).hedge_type == "D"


def test_malformed_requests_are_detected() -> None:
    fields = serialize(157, 1, AAPL, MarketOrder("BUY", 1))
    with pytest.raises(ValueError):
        parse_place_order(fields[:-3], 157)
    with pytest.raises(ValueError):
        parse_place_order(fields + ["x"], 157)
    with pytest.raises(ValueError):
        parse_place_order(fields, 178)  # a 157 layout read as 178 does not add up


def test_unsupported_orders_are_rejected_over_the_wire(ib: Any, engine: Any) -> None:
    from .conftest import ib_eventually

    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    parent = LimitOrder("BUY", 1, 10.0, transmit=False)
    trade = ib.placeOrder(contract, parent)
    cond = ib.placeOrder(contract, MarketOrder("BUY", 1, conditions=[PriceCondition(price=1.0, conId=1)]))
    trail = ib.placeOrder(contract, Order(action="BUY", totalQuantity=1, orderType="TRAIL LIMIT", auxPrice=1.0,
                                          lmtPriceOffset=0.1))
    ib_eventually(ib, lambda: {(trade.order.orderId, 201), (cond.order.orderId, 201),
                               (trail.order.orderId, 201)} <= set(errors))
    assert engine.orders() == []
