"""kill -9 of the paper broker mid-burst: nothing acknowledged is lost, nothing is doubled.

A child process places market orders through the public API as fast as it can and prints each one's
client order id *after* the call returned (acknowledged). The parent SIGKILLs it at a random point,
reopens the ledger and checks: every acknowledged order is there, filled, with exactly its fills; no
order exists without its fill; cash is starting cash minus the fills (and their commission); positions
are the fills' net; resubmitting the order that was in flight never fills twice; the file lock died
with the child.

``make test`` runs a handful of trials; ``make soak`` runs many (``WORKBENCH_SOAK_TRIALS``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

import workbench
from workbench.core.enums import OrderStatus, Side

TRIALS = int(os.environ.get("WORKBENCH_SOAK_TRIALS", "3"))
ROOT = Path(__file__).resolve().parents[2]
START = Decimal(1_000_000)
SETTINGS = {"starting_cash": str(START), "commission": {"per_share": "0.005", "minimum": "1"}, "slippage_bps": 2}

CHILD = textwrap.dedent("""
    import json, sys, workbench
    db, seed = sys.argv[1], int(sys.argv[2])
    settings = json.loads(sys.argv[3])
    broker = workbench.connect("paper", settings={"paper": {"db_path": db, **settings}})
    symbols = ("AAPL", "MSFT")
    for s in symbols:
        broker.place_market_order(s, 500, "buy", client_order_id=f"seed-{seed}-{s}")
    print("ready", flush=True)
    i = 0
    while True:
        coid = f"k-{seed}-{i:06d}"
        print("send", coid, flush=True)
        broker.place_market_order(symbols[i % 2], 1 + i % 7, "buy" if (i // 2) % 2 == 0 else "sell",
                                  client_order_id=coid)
        print("ack", coid, flush=True)
        i += 1
""")


def _trial(tmp_path: Path, seed: int) -> dict[str, int]:
    import json

    db = tmp_path / f"kill9-{seed}.sqlite"
    rng = random.Random(seed)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(seed), json.dumps(SETTINGS)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    acked: list[str] = []
    sent: list[str] = []
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        stop_after = rng.randint(5, 400)
        while len(acked) < stop_after:
            kind, _, coid = child.stdout.readline().strip().partition(" ")
            (acked if kind == "ack" else sent).append(coid)
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # acknowledgements already written before the kill count too
            kind, _, coid = line.strip().partition(" ")
            if coid:
                (acked if kind == "ack" else sent).append(coid)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db), **SETTINGS}})  # the lock died too
    try:
        engine = broker.adapter.engine
        orders = {o.client_order_id: o for o in engine.orders()}
        fills = engine.fills()
        by_order: dict[str, list] = defaultdict(list)
        for f in fills:
            by_order[f.broker_id].append(f)
        lost = [c for c in acked if c not in orders or orders[c].status is not OrderStatus.FILLED]
        assert lost == [], f"acknowledged orders lost: {lost[:5]}"
        assert len({f.exec_id for f in fills}) == len(fills), "a fill was recorded twice"
        for o in orders.values():  # every order is whole: market orders here fill at once, in one transaction
            mine = by_order.get(o.order_id, [])
            assert o.status is OrderStatus.FILLED and len(mine) == 1 and mine[0].qty == o.qty == o.filled_qty, o
        unacked = set(orders) - set(acked) - {c for c in orders if c.startswith("seed-")}
        assert unacked <= set(sent[-1:]), f"orders nobody sent: {unacked}"  # at most the one in flight
        cash = START + sum((-f.qty * f.price if f.side is Side.BUY else f.qty * f.price) - f.commission for f in fills)
        assert engine.cash == cash == broker.get_account().cash
        net: dict[str, Decimal] = defaultdict(Decimal)
        for f in fills:
            net[f.symbol] += f.qty * f.side.sign
        assert {s: p.qty for s, p in ((p.symbol, p) for p in engine.positions())} == {s: q for s, q in net.items() if q}
        in_flight = sent[-1]
        if in_flight not in acked:  # resubmitting what was in flight fills at most once
            n = int(in_flight.rsplit("-", 1)[1])
            side = "buy" if (n // 2) % 2 == 0 else "sell"
            again = broker.place_market_order(("AAPL", "MSFT")[n % 2], 1 + n % 7, side, client_order_id=in_flight)
            assert again.status is OrderStatus.FILLED
            assert len(engine.fills(order_id=again.order_id)) == 1
        return {"acked": len(acked), "orders": len(orders), "fills": len(fills),
                "in_flight_committed": int(in_flight in orders and in_flight not in acked)}
    finally:
        broker.close()


@pytest.mark.timeout(max(120, 5 * TRIALS))
def test_kill_9_mid_burst_loses_and_doubles_nothing(tmp_path: Path) -> None:
    figures = [_trial(tmp_path, seed) for seed in range(TRIALS)]
    total = {k: sum(f[k] for f in figures) for k in figures[0]}
    print(f"\nkill -9: {TRIALS} trials, {total['acked']} acknowledged orders, {total['fills']} fills, "
          f"0 lost, 0 doubled; in-flight order already committed at the kill: {total['in_flight_committed']} trials")


MID_TRANSACTION = textwrap.dedent("""
    import json, sys, workbench
    db, at, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    broker = workbench.connect("paper", settings={"paper": {"db_path": db, **settings}})
    for i in range(5):
        broker.place_market_order("AAPL", 1 + i, "buy", client_order_id=f"ok-{i}")
        print("ack", f"ok-{i}", flush=True)

    def trace(sql):  # SQLite calls this as each statement starts executing
        if sql.startswith(at):
            print("inside", flush=True)
            sys.stdin.read()  # the parent kills us here: the order's transaction is open

    broker.adapter.engine.ledger._conn.set_trace_callback(trace)
    broker.place_market_order("MSFT", 5, "buy", client_order_id="in-flight")
    print("ack", "in-flight", flush=True)  # never reached
""")


@pytest.mark.parametrize("at", ["INSERT INTO fills", "COMMIT"], ids=["after-the-order-row", "at-commit"])
def test_kill_9_inside_the_transaction_loses_only_the_unacknowledged_order(tmp_path: Path, at: str) -> None:
    """The burst above kills wherever the child happens to be; this kills it deterministically with the
    order's transaction open (its order row already written, or at the COMMIT statement itself)."""
    import json

    db = tmp_path / "mid.sqlite"
    child = subprocess.Popen([sys.executable, "-c", MID_TRANSACTION, str(db), at, json.dumps(SETTINGS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    acked = []
    try:
        for line in child.stdout:
            kind, _, coid = line.strip().partition(" ")
            if kind == "inside":
                os.kill(child.pid, signal.SIGKILL)
                break
            acked.append(coid)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL and acked == [f"ok-{i}" for i in range(5)], child.stderr.read()
    assert Path(f"{db}-wal").stat().st_size > 0  # the ledger was left mid-WAL, not cleanly closed

    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db), **SETTINGS}})
    try:
        engine = broker.adapter.engine
        assert sorted(o.client_order_id for o in engine.orders()) == acked  # the open transaction rolled back
        fills = engine.fills()
        assert [f.local_id for f in fills] == acked and engine.positions()[0].qty == 15
        assert engine.cash == START - sum(f.qty * f.price + f.commission for f in fills)
        again = broker.place_market_order("MSFT", 5, "buy", client_order_id="in-flight")  # resubmit: fills once
        assert again.status is OrderStatus.FILLED and len(engine.fills(order_id=again.order_id)) == 1
        assert engine.ledger._query("PRAGMA integrity_check") == [("ok",)]
    finally:
        broker.close()
