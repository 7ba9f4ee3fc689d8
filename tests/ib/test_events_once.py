"""on_fill / on_order deliver each fill and each order change once per Broker, across gateway restarts, and
what happened while the gateway was away arrives after the resync (nothing repeated, nothing missed)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench import OrderStatus


@pytest.mark.parametrize(("gateway", "sdk"), [({}, "ib_async"), ({"server_version": 176}, "ib_insync")],
                         indirect=["gateway"], ids=["ib_async", "ib_insync"])
def test_each_fill_is_delivered_once_across_restarts(gateway: Any, connect: Any, sdk: str) -> None:
    pytest.importorskip(sdk)
    broker = connect(gateway.port, sdk=sdk)
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    first = broker.place_market_order("AAPL", 1, "buy", client_order_id="before")
    eventually(lambda: len(fills) == 1)
    for _ in range(3):  # ib_async resends every commission report on each resync: one fill became four
        gateway.restart(broker)
    broker.place_market_order("AAPL", 2, "buy", client_order_id="after")
    eventually(lambda: len(fills) == 2)
    assert len(broker.get_fills()) == len(gateway.engine.fills()) == 2
    assert [f.local_id for f in fills] == ["before", "after"] and len({f.exec_id for f in fills}) == 2
    assert fills[0].broker_id == first.order_id and all(f.commission == 1 for f in fills)
    broker.place_market_order("AAPL", 1, "sell", client_order_id="later")  # still live, still once
    eventually(lambda: len(fills) == 3)
    assert len(fills) == len({f.exec_id for f in fills})


def test_a_fill_made_while_the_gateway_was_away_arrives_once(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    fills: list[workbench.FillEvent] = []
    orders: list[workbench.Order] = []
    broker.on_fill(fills.append)
    broker.on_order(orders.append)
    price = broker.get_market_price("AAPL")
    resting = broker.place_limit_order("AAPL", 4, "buy", (price * Decimal("0.5")).quantize(Decimal("0.01")),
                                       client_order_id="resting")
    eventually(lambda: [o.status for o in orders] == [OrderStatus.NEW])
    gateway.stop()
    eventually(lambda: broker.state == "reconnecting")
    engine_id = gateway.engine.get_order("resting").order_id  # the order fills while nobody is connected
    gateway.engine.replace(engine_id, limit_price=(price * Decimal("1.5")).quantize(Decimal("0.01")))
    assert gateway.engine.get_order("resting").status is OrderStatus.FILLED
    gateway.start()
    eventually(lambda: broker.state == "connected", timeout=10)
    eventually(lambda: len(fills) == 1 and orders[-1].status is OrderStatus.FILLED)
    gateway.restart(broker)  # and once more: nothing is repeated
    broker.place_market_order("MSFT", 1, "buy", client_order_id="marker")  # events after the restart...
    eventually(lambda: any(f.local_id == "marker" for f in fills))  # ...arrive, so earlier ones had their chance
    eventually(lambda: any(o.client_order_id == "marker" and o.status is OrderStatus.FILLED for o in orders))
    assert [f.local_id for f in fills] == ["resting", "marker"] and sum(f.qty for f in fills) == 5
    mine = [(o.status, o.filled_qty) for o in orders if o.client_order_id == "resting"]
    assert mine == [(OrderStatus.NEW, 0), (OrderStatus.FILLED, 4)]
    assert broker.get_order("resting").order_id == resting.order_id  # same id after two restarts


def test_stream_orders_follows_the_canonical_status_machine(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    assert workbench.Feature.STREAM_ORDERS in broker.capabilities.features
    orders: list[workbench.Order] = []
    broker.on_order(orders.append)
    with pytest.raises(workbench.OrderRejected):  # refused on placement: raised, and no order event
        broker.place_market_order("AAPL", 1_000_000, "buy")
    filled = broker.place_market_order("AAPL", 3, "buy")
    eventually(lambda: any(o.order_id == filled.order_id and o.status is OrderStatus.FILLED for o in orders))
    statuses = [o.status for o in orders if o.order_id == filled.order_id]
    assert statuses[-1] is OrderStatus.FILLED and len(statuses) == len(set(statuses))
    assert all(a.can_become(b) for a, b in zip(statuses, statuses[1:]))
    assert {o.order_id for o in orders} == {filled.order_id}
    last = [o for o in orders if o.order_id == filled.order_id][-1]
    assert last.filled_qty == 3 and isinstance(last.raw, dict)


def test_the_exactly_once_memory_is_bounded() -> None:
    # Every exec id and order mark was kept for the Broker's life: a kernel trading for weeks (the gateway's daily
    # restart is a resync each day) only ever grew it. IB reports executions of the last 7 days at most.
    from datetime import UTC, datetime, timedelta

    from ib_async import CommissionReport, Execution, Fill, Stock

    from workbench.adapters.ib.events import RETENTION, Journal

    def fill(n: int, when: datetime) -> Fill:
        execution = Execution(execId=f"e.{n}", time=when, side="BOT", shares=1.0, price=10.0, permId=n, orderRef="x")
        return Fill(Stock("AAPL", "SMART", "USD"), execution, CommissionReport(execId=f"e.{n}", commission=1.0), when)

    now = datetime.now(UTC)
    old = [fill(n, now - RETENTION - timedelta(days=n + 1)) for n in range(50)]
    recent = [fill(100 + n, now - timedelta(hours=n)) for n in range(5)]
    journal = Journal()
    journal.sweep([], old + recent, lambda t: t, publish=False)  # a resync that still reports last week
    journal.sweep([], recent, lambda t: t, publish=False)  # the next day's resync
    assert len(journal) == len(recent)

    async def next_delivered() -> str:  # what is remembered is still never repeated
        stream = journal.fills.stream()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # the consumer is registered
        journal.sweep([], recent, lambda t: t, publish=True)  # (a repeat would be delivered first)
        journal.fill(fill(999, now))
        event = await asyncio.wait_for(first, 5)
        await stream.aclose()
        return event.exec_id

    assert asyncio.run(next_delivered()) == "e.999"


def test_a_new_broker_is_not_sent_old_fills_whose_commission_comes_late(gateway: Any, proxy: Any,
                                                                       connect: Any) -> None:
    # The first resync only seeded executions whose commission report had already arrived. A report that came
    # after the startup sync (a gateway may send them after execDetailsEnd) made an old fill look new: a Broker
    # created again in the same kernel got it as a live fill.
    first = connect(gateway.port, client_id=5)
    first.place_market_order("AAPL", 1, "buy", client_order_id="old")
    eventually(lambda: first.get_order("old").status is OrderStatus.FILLED)
    held: list[list[str]] = []
    proxy.on_down(lambda fields: held.append(fields) or [] if fields[0] == "59" else [fields])  # commissions
    broker = connect(proxy.port, client_id=6)
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    proxy.on_down(None, send_first=held)  # the startup sync's commission reports, late
    broker.place_market_order("AAPL", 1, "buy", client_order_id="new")
    eventually(lambda: any(f.local_id == "new" for f in fills))
    assert [f.local_id for f in fills] == ["new"] and held
