"""The TWS emulator restarted again and again while orders flow: no order is placed twice, and on_fill /
on_order deliver every fill and every order's completion exactly once (nothing repeated, nothing missed).

``WORKBENCH_SOAK_IB_RESTARTS`` sets the number of restarts (default 5, a few seconds; ``make soak`` can raise it).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench import OrderStatus

RESTARTS = int(os.environ.get("WORKBENCH_SOAK_IB_RESTARTS", "5"))


def _place_until_acknowledged(broker: workbench.Broker, request: workbench.NeutralOrder, retries: Counter) -> None:
    """What a user does with the in-flight error: wait for the connection, resubmit the same client_order_id."""
    while True:
        try:
            broker.place_order(request)
            return
        except workbench.BrokerUnavailable as exc:
            retries[type(exc).__name__] += 1
            eventually(lambda: broker.state == "connected", timeout=30)


@pytest.mark.parametrize("gateway", [{"starting_cash": 10**9, "commission": 0}], indirect=True)
def test_restart_loop_under_order_flow(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port, connect_timeout=5)
    fills: list[workbench.FillEvent] = []
    updates: list[workbench.Order] = []
    broker.on_fill(fills.append)
    broker.on_order(updates.append)
    placed: list[str] = []
    retries: Counter = Counter()
    stop = threading.Event()

    def flow() -> None:
        n = 0
        while not stop.is_set():
            request = workbench.NeutralOrder(symbol=("AAPL", "MSFT", "SPY")[n % 3], side="buy", qty=1 + n % 3,
                                             client_order_id=f"flow-{n:05d}")
            placed.append(request.client_order_id)
            _place_until_acknowledged(broker, request, retries)
            n += 1

    started = time.monotonic()
    worker = threading.Thread(target=flow, name="order-flow")
    worker.start()
    try:
        for _ in range(RESTARTS):
            count = len(placed)
            eventually(lambda: len(placed) >= count + 3, timeout=30)  # orders flow between restarts...
            gateway.restart(broker)  # ...and one is usually in flight when the gateway goes
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    engine = gateway.engine
    eventually(lambda: len(engine.fills()) == len(placed) and len(fills) == len(placed), timeout=30)
    broker.place_market_order("AAPL", 1, "buy", client_order_id="marker")  # events queued behind it...
    eventually(lambda: fills[-1].local_id == "marker" and updates and any(o.client_order_id == "marker"
                                                                         and o.status is OrderStatus.FILLED
                                                                         for o in updates))
    wanted = sorted([*placed, "marker"])
    # No duplicate orders: the gateway saw each client_order_id once.
    assert sorted(o.client_order_id for o in engine.orders()) == wanted
    # No repeated and no missed fill events (each order fills once, in full).
    assert len({f.exec_id for f in fills}) == len(fills) == len(wanted)
    assert sorted(f.local_id for f in fills) == wanted
    assert {f.exec_id for f in fills} == set(broker.get_fills()["exec_id"])
    # Each order's completion was announced exactly once, and every order's updates move forward only.
    completions = Counter(o.client_order_id for o in updates if o.status is OrderStatus.FILLED)
    assert sorted(completions) == wanted and set(completions.values()) == {1}
    for coid in wanted:
        statuses = [o.status for o in updates if o.client_order_id == coid]
        assert all(a.can_become(b) for a, b in zip(statuses, statuses[1:])), (coid, statuses)
    history = broker.get_orders_history(limit=None)
    assert history.index.is_unique and len(history) == len(wanted)
    print(f"\nIB restart loop: {RESTARTS} restarts, {len(wanted)} orders, {len(fills)} fill events, "
          f"{sum(retries.values())} in-flight failures resubmitted ({dict(retries)}), "
          f"{time.monotonic() - started:.1f} s")
