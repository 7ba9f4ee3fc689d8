"""IB's TRAIL order, written with ib_async's own ``Order(orderType="TRAIL", ...)``, on the paper engine's
trailing stop: ``auxPrice`` is the trailing amount, ``trailingPercent`` the trail in percent, and
``trailStopPrice`` an initial stop (honoured at or beyond the trail). Prices reach the engine through its
public ``on_price``, so every move is exact."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from workbench.core.enums import OrderType

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, MarketOrder, Order, Stock  # noqa: E402

pytestmark = pytest.mark.timeout(60)
UNSET = 1.7976931348623157e308
_CLIENT_IDS = itertools.count(50)


def _setup(gateway: Any, client: Any, **config: Any) -> tuple[Any, Any, Any, Any, Decimal]:
    emu, engine = gateway(slippage_bps=0, **config)
    ib = client(emu)
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    return emu, engine, ib, contract, engine.prices.get_market_price("AAPL")


def _price(emu: Any, engine: Any, price: Decimal) -> None:
    emu.call(engine.on_price, "AAPL", price)


def _others_view(emu: Any, client: Any) -> dict[int, Any]:
    """What another, fresh client sees of every working order (reqAllOpenOrders), by permId. (ib_async
    keeps a known trade's order as it first saw it, but for a few fields: a fresh client shows the current.)"""
    other: IB = client(emu, client_id=next(_CLIENT_IDS))
    return {t.order.permId: t for t in other.reqAllOpenOrders()}


def test_trail_by_amount_follows_the_price_then_fills(gateway: Any, client: Any) -> None:
    emu, engine, ib, contract, price = _setup(gateway, client, commission=1)
    buy = ib.placeOrder(contract, MarketOrder("BUY", 10))
    ib_eventually(ib, lambda: buy.orderStatus.status == "Filled")
    trade = ib.placeOrder(contract, Order(action="SELL", orderType="TRAIL", totalQuantity=10, auxPrice=1.0))
    ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")  # a stop waits, as IB shows it
    (working,) = engine.open_orders()
    assert working.order_type is OrderType.TRAILING_STOP and working.trail_price == 1
    assert working.stop_price == price - 1
    seen = _others_view(emu, client)[trade.order.permId].order
    assert (seen.orderType, seen.auxPrice, seen.trailStopPrice) == ("TRAIL", 1.0, float(price - 1))
    assert seen.trailingPercent == UNSET

    _price(emu, engine, price + 5)  # a new high: the stop follows it
    assert engine.open_orders()[0].stop_price == price + 4
    assert _others_view(emu, client)[trade.order.permId].order.trailStopPrice == float(price + 4)
    _price(emu, engine, price + Decimal("4.50"))  # above the stop: nothing happens
    assert engine.open_orders()[0].stop_price == price + 4 and trade.orderStatus.status == "PreSubmitted"
    _price(emu, engine, price + 3)  # through the stop: a market sell
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills
                  and trade.fills[0].commissionReport.execId)
    assert trade.fills[0].execution.price == float(price + 3) and trade.fills[0].commissionReport.commission == 1
    assert engine.position("AAPL") is None
    done = [t for t in ib.reqCompletedOrders(False) if t.order.permId == trade.order.permId]
    assert done[0].order.orderType == "TRAIL" and done[0].order.trailStopPrice == float(price + 4)


def test_trail_by_percent_and_an_initial_stop(gateway: Any, client: Any) -> None:
    emu, engine, ib, contract, price = _setup(gateway, client, allow_short=True)
    start = (price * Decimal("0.98")).quantize(Decimal("0.0001"))  # the engine's first stop for 2 %
    loose = float((start - 1).quantize(Decimal("0.01")))
    trade = ib.placeOrder(contract, Order(action="SELL", orderType="TRAIL", totalQuantity=5, trailingPercent=2.0,
                                          trailStopPrice=loose, orderRef="sell"))  # beyond the trail: as IB
    ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    (working,) = engine.open_orders()
    assert (working.trail_percent, working.trail_price, working.stop_price) == (2, None, start)
    seen = _others_view(emu, client)[trade.order.permId].order
    assert (seen.trailingPercent, seen.auxPrice, seen.trailStopPrice) == (2.0, UNSET, float(start))
    buy = ib.placeOrder(contract, Order(action="BUY", orderType="TRAIL", totalQuantity=5, auxPrice=0.5,
                                        orderRef="buy"))
    ib_eventually(ib, lambda: buy.orderStatus.status == "PreSubmitted")
    assert engine.get_order("buy").stop_price == price + Decimal("0.5")  # a buy stop sits above the price
    _price(emu, engine, price - 2)  # a new low: the buy stop follows it down; the sell stop stays
    assert engine.get_order("buy").stop_price == price - Decimal("1.5") and engine.get_order("sell").stop_price == start


def test_trail_orders_the_engine_cannot_honour_are_rejected_with_201(gateway: Any, client: Any) -> None:
    emu, engine, ib, contract, price = _setup(gateway, client, allow_short=True)
    errors: dict[int, str] = {}
    ib.errorEvent += lambda req_id, code, msg, c: errors.__setitem__(req_id, msg) if code == 201 else None
    tight = float((price - Decimal("0.10")).quantize(Decimal("0.01")))  # a stop inside a 1.00 trail
    orders = {
        "inside": Order(action="SELL", orderType="TRAIL", totalQuantity=1, auxPrice=1.0, trailStopPrice=tight),
        "both": Order(action="SELL", orderType="TRAIL", totalQuantity=1, auxPrice=1.0, trailingPercent=1.0),
        "neither": Order(action="SELL", orderType="TRAIL", totalQuantity=1),
        "trail limit": Order(action="SELL", orderType="TRAIL LIMIT", totalQuantity=1, auxPrice=1.0,
                             lmtPriceOffset=0.1),
    }
    trades = {name: ib.placeOrder(contract, order) for name, order in orders.items()}
    ib_eventually(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in trades.values()))
    text = {name: errors[t.order.orderId] for name, t in trades.items()}
    assert "trailStopPrice" in text["inside"] and "inside the trail" in text["inside"]
    assert "exactly one of auxPrice" in text["both"] and "exactly one of auxPrice" in text["neither"]
    assert "TRAIL LIMIT orders are not supported" in text["trail limit"]
    assert engine.orders() == []


def test_modify_a_trail_order(gateway: Any, client: Any) -> None:
    emu, engine, ib, contract, price = _setup(gateway, client, allow_short=True)
    order = Order(action="SELL", orderType="TRAIL", totalQuantity=5, auxPrice=1.0)
    trade = ib.placeOrder(contract, order)
    ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    order.auxPrice, order.totalQuantity = 2.0, 7
    ib.placeOrder(contract, order)  # modify: the trail and the quantity
    ib_eventually(ib, lambda: engine.open_orders()[0].trail_price == 2)
    working = engine.open_orders()[0]
    assert (working.qty, working.stop_price) == (7, price - 2)
    refusals: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, c: refusals.append((code, msg))
    order.trailStopPrice = float(price - 10)
    ib.placeOrder(contract, order)  # the stop already follows the price: its start cannot change
    ib_eventually(ib, lambda: any(code == 321 and "trailStopPrice" in msg for code, msg in refusals))
    ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")  # still working, unchanged
    assert engine.open_orders()[0].stop_price == price - 2


def test_what_if_of_a_trail_order(gateway: Any, client: Any) -> None:
    emu, engine, ib, contract, price = _setup(gateway, client, allow_short=True, commission=1)
    state = ib.whatIfOrder(contract, Order(action="SELL", orderType="TRAIL", totalQuantity=10, trailingPercent=1.5))
    assert state.commission == 1 and float(state.initMarginChange) == pytest.approx(float(price) * 10 * 0.5, abs=0.01)
    assert engine.orders() == []


def test_a_trail_order_survives_a_gateway_restart(engine_factory: Any, client: Any, tmp_path: Any,
                                                 server_version: int) -> None:
    from workbench.emulators.tws import TwsEmulator

    engine = engine_factory(db=tmp_path / "gw.sqlite", allow_short=True, slippage_bps=0)
    first = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    try:
        ib = client(first, client_id=3)
        (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(contract, Order(action="SELL", orderType="TRAIL", totalQuantity=4, trailingPercent=3.0))
        ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")
        ib.disconnect()
    finally:
        first.stop_thread()
    second = TwsEmulator(engine, port=0, server_version=server_version, tick_interval=None).start_in_thread()
    try:
        again = client(second, client_id=3)
        (restored,) = again.openTrades()
        assert restored.order.orderId == trade.order.orderId and restored.order.permId == trade.order.permId
        assert (restored.order.orderType, restored.order.trailingPercent) == ("TRAIL", 3.0)
        assert restored.order.trailStopPrice == float(engine.open_orders()[0].stop_price)
        assert restored.orderStatus.status == "PreSubmitted"
    finally:
        second.stop_thread()

