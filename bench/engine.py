"""Paper engine durable throughput: ``PaperEngine.submit`` of market orders vs raw SQLite inserts.

Engine side: N market orders go through ``PaperEngine.submit(NeutralOrder(...))`` (submit -> fill ->
one committed ledger transaction each) on a temp file with the default durability (WAL,
``synchronous=NORMAL``). The orders alternate BUY/SELL of 10 shares over a few sim symbols, on top of a
seeded position of 1,000 shares per symbol, so every fill is an upsert of an open position and cash
stays ample. The clock is fixed (Wed 2026-11-18 15:00 UTC), so prices are deterministic.

Raw side: the very rows the engine wrote (read back from its ledger, then replayed positions and
cash) are inserted straight into a fresh ledger file with the same schema and pragmas (a
``Ledger`` is created for that, then written through its connection with plain SQL): one
``BEGIN IMMEDIATE`` ... ``COMMIT`` per order with one orders row (INSERT OR REPLACE), one fills row,
one positions upsert and one account cash UPDATE. The parameters are prepared before the clock
starts, so this is the cost of SQLite alone.

Each configuration runs several rounds (engine and raw interleaved, fresh files each round); the
headline is the best round of each, since other processes on the machine only ever add time; the
medians are reported alongside.

NeutralOrder objects are built before the timed loop (their pydantic validation is reported
separately as information): the timed section is ``submit`` only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .report import Result

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 New York: market open
SYMBOLS = ("AAPL", "MSFT", "SPY", "NVDA")
QTY = Decimal(10)
BASE_QTY = Decimal(1000)
STARTING_CASH = Decimal(1_000_000_000)

N_ORDERS = 5_000
WARMUP = 200
ROUNDS = 5  # NORMAL: engine and raw interleaved, best of the rounds (medians reported too)
FULL_ROUNDS = 2

ORDERS_PER_S_FLOOR = 5_000.0
RATIO_FLOOR = 3.0


def _clock() -> datetime:
    return NOW


@dataclass
class Trial:
    sync: str
    n: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def us_per_order(self) -> float:
        return self.seconds / self.n * 1e6


# -- engine ---------------------------------------------------------------------------------


def _orders(start: int, n: int) -> list[Any]:
    from workbench.core.models import NeutralOrder

    return [NeutralOrder(symbol=SYMBOLS[(i // 2) % len(SYMBOLS)], side="BUY" if i % 2 == 0 else "SELL", qty=QTY,
                         client_order_id=f"bench-{i:08d}")
            for i in range(start, start + n)]


def engine_trial(db: Path, sync: str, n: int, warmup: int) -> tuple[Trial, float]:
    """Run the engine; returns the timed trial and the NeutralOrder build cost in µs per order."""
    from workbench.paper.config import PaperConfig
    from workbench.core.enums import OrderStatus
    from workbench.core.models import NeutralOrder
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    config = PaperConfig(db_path=str(db), starting_cash=STARTING_CASH, synchronous=sync)
    engine = PaperEngine(config, SimProvider(clock=_clock), clock=_clock)
    try:
        for sym in SYMBOLS:  # the base positions, so that the alternating orders never flatten one
            engine.submit(NeutralOrder(symbol=sym, side="BUY", qty=BASE_QTY, client_order_id=f"seed-{sym}"))
        for order in _orders(0, warmup):
            engine.submit(order)
        t0 = time.perf_counter()
        timed = _orders(warmup, n)
        build_us = (time.perf_counter() - t0) / n * 1e6
        submit = engine.submit
        t0 = time.perf_counter()
        for order in timed:
            submit(order)
        seconds = time.perf_counter() - t0
        # Sanity: everything filled, positions back to the base.
        filled = engine.ledger._query("SELECT count(*) FROM orders WHERE status = ?", (OrderStatus.FILLED.value,))
        expected = len(SYMBOLS) + warmup + n
        if filled[0][0] != expected:
            raise RuntimeError(f"engine filled {filled[0][0]} orders, expected {expected}")
        held = {s: q for s, (q, _avg) in engine.ledger.positions().items()}
        if held != {s: BASE_QTY for s in SYMBOLS}:
            raise RuntimeError(f"unexpected positions after the run: {held}")
    finally:
        engine.close()
    return Trial(sync, n, seconds), build_us


# -- raw SQLite -----------------------------------------------------------------------------


def raw_rows(engine_db: Path) -> list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]]:
    """Per order, in submit order: (orders params, fills params, positions params, cash params).

    Orders and fills are the engine's own rows; positions and cash are replayed from the fills.
    """
    import sqlite3

    from workbench.paper.ledger import _ORDER_COLS

    conn = sqlite3.connect(engine_db)
    try:
        orders = conn.execute(f"SELECT {', '.join(_ORDER_COLS)} FROM orders ORDER BY rowid").fetchall()
        fills = conn.execute("SELECT exec_id, order_id, client_order_id, symbol, side, qty, price, commission, ts "
                             "FROM fills ORDER BY rowid").fetchall()
    finally:
        conn.close()
    if len(orders) != len(fills):
        raise RuntimeError("expected exactly one fill per order")
    cash = STARTING_CASH
    positions: dict[str, tuple[Decimal, Decimal]] = {}
    out = []
    for order, fill in zip(orders, fills, strict=True):
        if order[0] != fill[1]:
            raise RuntimeError("orders and fills are not in the same order")
        sym, side, qty, price, commission = fill[3], fill[4], Decimal(fill[5]), Decimal(fill[6]), Decimal(fill[7])
        signed = qty if side == "BUY" else -qty
        held, avg = positions.get(sym, (Decimal(0), Decimal(0)))
        new_qty = held + signed
        if held == 0 or (held > 0) == (signed > 0):
            avg = ((held * avg + signed * price) / new_qty).quantize(Decimal("0.000001"))
        positions[sym] = (new_qty, avg)
        cash = cash - signed * price - commission
        out.append((tuple(order), tuple(fill), (sym, str(new_qty), str(avg)), (str(cash),)))
    return out


def raw_trial(db: Path, sync: str, rows: list[Any], timed_from: int) -> Trial:
    """Insert ``rows`` one transaction each; times ``rows[timed_from:]`` (the rest is the warm-up)."""
    from workbench.paper.ledger import _INSERT_FILL, _UPSERT_ORDER, _UPSERT_POSITION, Ledger

    ledger = Ledger(db, STARTING_CASH, sync)  # same file, schema and pragmas (WAL, synchronous, foreign_keys)
    try:
        cur = ledger._conn.cursor()
        execute = cur.execute
        update_cash = "UPDATE account SET cash = ? WHERE id = 1"

        def write(batch: list[Any]) -> None:
            for order, fill, position, cash in batch:
                execute("BEGIN IMMEDIATE")
                execute(_UPSERT_ORDER, order)
                execute(_INSERT_FILL, fill)
                execute(_UPSERT_POSITION, position)
                execute(update_cash, cash)
                execute("COMMIT")

        write(rows[:timed_from])
        timed = rows[timed_from:]
        t0 = time.perf_counter()
        write(timed)
        seconds = time.perf_counter() - t0
        count = ledger._query("SELECT count(*) FROM fills")[0][0]
        if count != len(rows):
            raise RuntimeError(f"raw wrote {count} fills, expected {len(rows)}")
    finally:
        ledger.close()
    return Trial(sync, len(timed), seconds)


# -- the benchmark --------------------------------------------------------------------------


def measure(sync: str, n: int, warmup: int, rounds: int, tmp: Path) -> dict[str, Any]:
    engines: list[Trial] = []
    raws: list[Trial] = []
    builds: list[float] = []
    for r in range(rounds):
        edb = tmp / f"engine-{sync}-{r}.sqlite"
        trial, build_us = engine_trial(edb, sync, n, warmup)
        engines.append(trial)
        builds.append(build_us)
        rows = raw_rows(edb)
        raws.append(raw_trial(tmp / f"raw-{sync}-{r}.sqlite", sync, rows, len(rows) - n))
        print(f"  {sync:6s} round {r + 1}/{rounds}: engine {trial.rate:8,.0f} orders/s "
              f"({trial.us_per_order:6.1f} µs/order)   raw {raws[-1].rate:8,.0f} orders/s "
              f"({raws[-1].us_per_order:6.1f} µs/order)", flush=True)
    # Headline: the best round of each (interference from other processes only ever adds time); the
    # medians are kept in the details.
    engine_us = min(t.us_per_order for t in engines)
    raw_us = min(t.us_per_order for t in raws)
    engine_med = statistics.median(t.us_per_order for t in engines)
    raw_med = statistics.median(t.us_per_order for t in raws)
    return {
        "synchronous": sync, "n": n, "warmup": warmup, "rounds": rounds, "statistic": "best of rounds",
        "engine_orders_per_s": 1e6 / engine_us, "raw_orders_per_s": 1e6 / raw_us,
        "engine_us_per_order": engine_us, "raw_us_per_order": raw_us,
        "overhead_us_per_order": engine_us - raw_us, "ratio": engine_us / raw_us,
        "median_engine_orders_per_s": 1e6 / engine_med, "median_raw_orders_per_s": 1e6 / raw_med,
        "median_ratio": engine_med / raw_med,
        "neutral_order_build_us": statistics.median(builds),
        "engine_rounds_orders_per_s": [round(t.rate, 1) for t in engines],
        "raw_rounds_orders_per_s": [round(t.rate, 1) for t in raws],
    }


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    n, warmup, rounds, full_rounds = (1_000, 100, 1, 1) if quick else (N_ORDERS, WARMUP, ROUNDS, FULL_ROUNDS)
    load = _loadavg()
    print(f"  load average before: {load}")
    print(f"  {n:,} market orders after {warmup} warm-up, {len(SYMBOLS)} symbols, WAL, fixed clock {NOW:%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory(prefix="wb-bench-engine-") as d:
        tmp = Path(d)
        normal = measure("NORMAL", n, warmup, rounds, tmp)
        full = measure("FULL", n, warmup, full_rounds, tmp)
        if profile:
            _profile(tmp / "profile.sqlite", n, warmup)
    for m in (normal, full):
        print(f"  synchronous={m['synchronous']}: engine {m['engine_orders_per_s']:,.0f} orders/s, "
              f"raw {m['raw_orders_per_s']:,.0f} orders/s, engine/raw cost {m['ratio']:.2f}x "
              f"(+{m['overhead_us_per_order']:.1f} µs/order of Python) [best of {m['rounds']}; medians: "
              f"engine {m['median_engine_orders_per_s']:,.0f}, raw {m['median_raw_orders_per_s']:,.0f}, "
              f"{m['median_ratio']:.2f}x]")
    normal["load_average_before"] = full["load_average_before"] = load
    print(f"  (information) building one NeutralOrder costs {normal['neutral_order_build_us']:.1f} µs; "
          f"with it the engine does {1e6 / (normal['engine_us_per_order'] + normal['neutral_order_build_us']):,.0f} orders/s")
    rate, ratio = normal["engine_orders_per_s"], normal["ratio"]
    return [
        Result("engine throughput (NORMAL)", rate, "orders/s", f">= {ORDERS_PER_S_FLOOR:,.0f} orders/s",
               rate >= ORDERS_PER_S_FLOOR, normal),
        Result("raw SQLite baseline (NORMAL)", normal["raw_orders_per_s"], "orders/s"),
        Result("engine/raw cost (NORMAL)", ratio, "x", f"<= {RATIO_FLOOR:g}x", ratio <= RATIO_FLOOR, normal),
        Result("engine throughput (FULL)", full["engine_orders_per_s"], "orders/s", details=full),
        Result("raw SQLite baseline (FULL)", full["raw_orders_per_s"], "orders/s"),
        Result("engine/raw cost (FULL)", full["ratio"], "x", details=full),
    ]


def _loadavg() -> list[float] | None:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _profile(db: Path, n: int, warmup: int, top: int = 25) -> None:
    """cProfile the timed loop of one NORMAL engine trial and print the top functions."""
    import cProfile
    import pstats

    from workbench.paper.config import PaperConfig
    from workbench.core.models import NeutralOrder
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(db), starting_cash=STARTING_CASH), SimProvider(clock=_clock),
                         clock=_clock)
    try:
        for sym in SYMBOLS:
            engine.submit(NeutralOrder(symbol=sym, side="BUY", qty=BASE_QTY, client_order_id=f"seed-{sym}"))
        for order in _orders(0, warmup):
            engine.submit(order)
        timed = _orders(warmup, n)
        prof = cProfile.Profile()
        prof.enable()
        for order in timed:
            engine.submit(order)
        prof.disable()
    finally:
        engine.close()
    print(f"\n  cProfile of {n:,} submits (sorted by own time):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
