"""IB orders as neutral models: stable ids across restarts, the gateway's times, immutable raw, refusals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench import OrderStatus


def _filled(broker: workbench.Broker, key: str) -> workbench.Order:
    return eventually(lambda: (o := broker.get_order(key)).status is OrderStatus.FILLED and o)


def test_order_ids_survive_a_gateway_restart(gateway: Any, connect: Any) -> None:
    # IB's completedOrder message carries no orderId (ib_async reads 0), so after a restart every finished order
    # came back as '0'. The stable id is the gateway's permId.
    broker = connect(gateway.port)
    ids = [broker.place_market_order("AAPL", 1, "buy", client_order_id=f"id-{n}").order_id for n in range(3)]
    for n in range(3):
        _filled(broker, f"id-{n}")
    gateway.restart(broker)
    history = broker.get_orders_history()
    assert history.index.is_unique and sorted(history.index) == sorted(ids) and "0" not in history.index
    assert [broker.get_order(i).client_order_id for i in ids] == ["id-0", "id-1", "id-2"]
    assert set(broker.get_fills()["order_id"]) == set(ids)


def test_created_at_is_not_when_this_session_first_saw_the_order(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    placed = broker.place_market_order("AAPL", 1, "buy", client_order_id="when")
    _filled(broker, "when")
    before_restart = datetime.now(UTC)
    gateway.restart(broker)
    assert broker.get_order("when").created_at == placed.created_at <= before_restart
    fill_ts = broker.get_fills().index[0]
    later = connect(gateway.port, client_id=6)  # a new session (a restarted kernel) sees the old order...
    assert later.get_order("when").created_at <= fill_ts.to_pydatetime()  # ...at the gateway's execution time


def test_raw_is_an_immutable_snapshot_not_the_live_trade(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    price = broker.get_market_price("AAPL")
    order = broker.place_limit_order("AAPL", 1, "buy", (price / 2).quantize(Decimal("0.01")))  # rests
    assert isinstance(order.raw, dict) and order.raw["orderStatus"]["status"] == "Submitted"
    assert order.raw["order"]["orderRef"] == order.client_order_id
    gateway.engine.replace(gateway.engine.get_order(order.client_order_id).order_id,
                           limit_price=(price * 2).quantize(Decimal("0.01")))  # now it fills at the gateway
    _filled(broker, order.order_id)
    assert order.raw["orderStatus"]["status"] == "Submitted"  # the live Trade moved on; the snapshot did not
    eventually(lambda: fills)
    position = broker.get_position("AAPL")
    assert isinstance(fills[0].raw, dict) and fills[0].raw["execution"]["execId"] == fills[0].exec_id
    assert isinstance(position.raw, dict) and position.raw["position"] == 1


def test_a_refused_order_raises_on_every_resubmit_and_is_not_recorded(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    request = workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1_000_000, client_order_id="too-big")
    for _ in range(2):  # it used to come back CANCELLED without raising the second time
        with pytest.raises(workbench.InsufficientFunds):
            broker.place_order(request)
    assert len(gateway.requests("3")) == 2  # sent again (and refused again): paper re-checks a resubmit too
    with pytest.raises(workbench.OrderNotFound):
        broker.get_order("too-big")
    assert broker.get_orders_history().empty and not gateway.engine.orders()


def test_place_order_returns_the_perm_id_when_a_warning_arrives_first(gateway: Any, proxy: Any,
                                                                        connect: Any) -> None:
    # A real gateway often answers a placement with a warning before the order itself (399 "your order will not
    # be placed at the exchange until 09:30", outside regular hours). ib_async marks the Trade "ValidationError"
    # at once, which ended the wait for the acknowledgement: place_order returned IB's orderId ("7") as the
    # order_id, and every later event, get_order and fill carried the permId instead.
    from workbench.emulators.tws import messages as m

    broker = connect(proxy.port)
    broker.get_market_price("AAPL")
    orders: list[workbench.Order] = []
    broker.on_order(orders.append)
    held: list[list[str]] = []

    def warning_first(fields: list[str]) -> list[list[str]]:
        if fields[0] == "5" and not held:  # the order's first openOrder: a 399 goes ahead, the rest waits
            held.append(fields)
            warning = "Order Message:\nBUY 1 AAPL NASDAQ.NMS\nWarning: your order will not be placed at the exchange"
            return [[str(f) for f in m.error(gateway.emulator.server_version, int(fields[1]), 399, warning)]]
        if held:
            held.append(fields)
            return []
        return [fields]

    proxy.on_down(warning_first)
    placed: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: placed.update(order=broker.place_market_order(
        "AAPL", 1, "buy", client_order_id="warned")))
    thread.start()
    eventually(lambda: held)
    proxy.on_down(None, send_first=held)
    thread.join(10)
    order = placed["order"]
    filled = _filled(broker, "warned")
    perm = filled.raw["order"]["permId"]
    assert perm and order.order_id == filled.order_id == str(perm)
    assert broker.get_order(order.order_id).client_order_id == "warned"
    eventually(lambda: any(o.status is OrderStatus.FILLED for o in orders))
    assert {o.order_id for o in orders} == {order.order_id}
    assert set(broker.get_fills()["order_id"]) == {order.order_id}


def test_a_refusal_outside_the_error_table_still_raises(gateway: Any, proxy: Any, connect: Any) -> None:
    # Error 110 (price increment) or 460 (no trading permission) refuses a new order; ib_async marks it Cancelled.
    # Only codes in a short table counted as refusals, so place_order returned a CANCELLED order, no reason given,
    # and recorded it.
    from workbench.emulators.tws import messages as m

    broker = connect(proxy.port)
    price = broker.get_market_price("AAPL")
    text = "The price does not conform to the minimum price variation for this contract."
    answered: list[str] = []

    def refuse(fields: list[str]) -> list[list[str]]:  # the gateway's answer to the order: 110 instead
        if fields[0] in ("5", "3") and (not answered or fields[1] == answered[0]):
            if answered:
                return []
            answered.append(fields[1])
            return [[str(f) for f in m.error(gateway.emulator.server_version, int(fields[1]), 110, text)]]
        return [fields]

    proxy.on_down(refuse)
    with pytest.raises(workbench.OrderRejected) as info:
        broker.place_limit_order("AAPL", 1, "buy", (price / 2).quantize(Decimal("0.01")), client_order_id="tick")
    assert info.value.code == 110 and "minimum price variation" in str(info.value)
    with pytest.raises(workbench.OrderNotFound):
        broker.get_order("tick")


def test_a_cancel_the_gateway_refuses_raises_at_once(gateway: Any, proxy: Any, connect: Any) -> None:
    # The cancel waited for the order to finish whatever the gateway answered: 10147 ("order to cancel not
    # found") or 10148 ("cannot be cancelled") surfaced as a RequestTimeout after the whole connect timeout.
    from workbench.emulators.tws import messages as m

    broker = connect(proxy.port, connect_timeout=8)
    price = broker.get_market_price("AAPL")
    order = broker.place_limit_order("AAPL", 1, "buy", (price / 2).quantize(Decimal("0.01")))
    text = "OrderId that needs to be cancelled cannot be cancelled, state: PendingCancel."

    def refuse(fields: list[str]) -> list[list[str]]:  # the gateway's answer to the cancel: 10148 instead
        if fields[0] in ("3", "5") and "Cancelled" in fields:
            return [[str(f) for f in m.error(gateway.emulator.server_version, int(fields[1]), 10148, text)]]
        return [fields]

    proxy.on_down(refuse)
    started = datetime.now(UTC)
    with pytest.raises(workbench.OrderRejected) as info:
        broker.cancel_order(order.order_id)
    assert info.value.code == 10148 and (datetime.now(UTC) - started).total_seconds() < 2
    assert broker.get_order(order.order_id).status is OrderStatus.NEW  # still working (ib_async says Cancelled)


def test_orders_of_types_the_adapter_does_not_place_are_still_shown(gateway: Any, proxy: Any, connect: Any) -> None:
    # An account's orders include what TWS or other tools placed (REL, MIDPRICE, MOC...). Converting one raised a
    # raw KeyError from get_orders_history, and from the resync after every reconnect, which then never finished
    # (no fills delivered, no quote stream restored).
    owner = connect(gateway.port, client_id=5)
    price = owner.get_market_price("AAPL")
    order = owner.place_limit_order("AAPL", 1, "buy", (price / 2).quantize(Decimal("0.01")))
    owner.cancel_order(order.order_id)
    proxy.on_down(lambda fields: [["REL" if f == "LMT" else f for f in fields]])  # as if TWS had placed a REL
    broker = connect(proxy.port, client_id=6)
    orders: list[workbench.Order] = []
    broker.on_order(orders.append)
    shown = broker.get_order(order.order_id)
    assert shown.order_type is workbench.OrderType.LIMIT and shown.raw_status == "Cancelled (REL)"
    assert shown.status is OrderStatus.CANCELLED and shown.raw["order"]["orderType"] == "REL"
    proxy.cut()
    eventually(lambda: proxy.connections == 2 and broker.state == "connected", timeout=10)  # resynced
    broker.place_market_order("AAPL", 1, "buy", client_order_id="after")
    eventually(lambda: any(o.client_order_id == "after" and o.status is OrderStatus.FILLED for o in orders))
    assert len(broker.get_orders_history()) == 2


def test_an_unknown_message_about_an_order_the_gateway_accepts_is_no_refusal(gateway: Any, proxy: Any,
                                                                             connect: Any) -> None:
    # ib_async marks a Trade Cancelled on any error code it does not know as a warning. Only the gateway's own
    # order status says whether the order lives: reporting a live order refused invites a second order.
    from workbench.emulators.tws import messages as m

    broker = connect(proxy.port)
    broker.get_market_price("AAPL")
    held: list[list[str]] = []

    def note_first(fields: list[str]) -> list[list[str]]:  # the notice first; the order's answer a moment later
        if held or fields[0] == "5":
            held.append(fields)
            if len(held) == 1:
                return [[str(f) for f in m.error(gateway.emulator.server_version, int(fields[1]), 10999,
                                                 "Some order information.")]]
            return []
        return [fields]

    proxy.on_down(note_first)
    placed: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: placed.update(order=broker.place_market_order(
        "AAPL", 1, "buy", client_order_id="noted")))
    thread.start()
    eventually(lambda: held, interval=0.001)
    proxy.on_down(None, send_first=held)  # within the second the adapter gives the gateway to answer
    thread.join(10)
    order = placed["order"]  # accepted (it was OrderRejected, for an order the gateway went on to fill)
    shown = broker.get_order("noted")
    assert order.order_id == shown.order_id == str(shown.raw["order"]["permId"])
    eventually(lambda: broker.get_order("noted").status is OrderStatus.FILLED)
    assert len(gateway.engine.orders()) == 1
