"""Paper broker durable throughput: the path users call, the engine alone, and raw SQLite, in one run.

User path: ``workbench.connect("paper").place_market_order(symbol, 10, side)`` in a loop: the public
sync API with the default settings (wall clock, sim prices, WAL, ``synchronous=NORMAL``) on a temp
ledger. Each call returns only after its order and fill are committed (one transaction per order),
so every acknowledged order survives a crash of the process.

Engine only: N market orders through ``PaperEngine.submit(NeutralOrder(...))`` with a fixed clock
(Wed 2026-11-18 15:00 UTC); the NeutralOrder objects are built before the clock starts.

Raw SQLite: the very rows each side wrote (read back from its ledger, positions and cash replayed)
inserted straight into a fresh ledger file with the same schema and pragmas: one ``BEGIN IMMEDIATE``
... ``COMMIT`` per order with one orders INSERT, one fills INSERT, one positions upsert and one cash
UPDATE, parameters prepared before the clock starts. That is the cost of SQLite alone.

Both sides alternate BUY/SELL of 10 shares over a few symbols on top of a seeded position of 1,000
shares per symbol. Rounds interleave user path, engine and raw on fresh files; the headline is the best
round of each (other processes on the machine only ever add time), medians are kept in the details.
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
ROUNDS = 5  # NORMAL: user, engine and raw interleaved, best of the rounds (medians reported too)
FULL_ROUNDS = 2

ORDERS_PER_S_FLOOR = 5_000.0
USER_RATIO_FLOOR = 2.0
ENGINE_RATIO_FLOOR = 3.0


def _clock() -> datetime:
    return NOW


@dataclass
class Trial:
    n: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    @property
    def us_per_order(self) -> float:
        return self.seconds / self.n * 1e6


def _side(i: int) -> str:
    return "buy" if i % 2 == 0 else "sell"


def _symbol(i: int) -> str:
    return SYMBOLS[(i // 2) % len(SYMBOLS)]


def _check(db: Path, expected_orders: int) -> None:
    """Everything filled, one fill per order, positions back to the base."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        filled = conn.execute("SELECT count(*) FROM orders WHERE status = 'FILLED'").fetchone()[0]
        fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
        held = {s: Decimal(q) for s, q in conn.execute("SELECT symbol, qty FROM positions")}
    finally:
        conn.close()
    if filled != expected_orders or fills != expected_orders:
        raise RuntimeError(f"{filled} orders filled with {fills} fills, expected {expected_orders} of each")
    if held != {s: BASE_QTY for s in SYMBOLS}:
        raise RuntimeError(f"unexpected positions after the run: {held}")


# -- the user path --------------------------------------------------------------------------


def user_trial(db: Path, n: int, warmup: int) -> Trial:
    """``workbench.connect("paper").place_market_order`` in a loop (default settings, wall clock)."""
    import workbench

    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db), "starting_cash": STARTING_CASH}})
    try:
        for sym in SYMBOLS:
            broker.place_market_order(sym, BASE_QTY, "buy")
        place = broker.place_market_order
        for i in range(warmup):
            place(_symbol(i), QTY, _side(i))
        t0 = time.perf_counter()
        for i in range(warmup, warmup + n):
            place(_symbol(i), QTY, _side(i))
        seconds = time.perf_counter() - t0
    finally:
        broker.close()
    _check(db, len(SYMBOLS) + warmup + n)
    return Trial(n, seconds)


# -- the engine alone -----------------------------------------------------------------------


def _orders(start: int, n: int) -> list[Any]:
    from workbench.core.models import NeutralOrder

    return [NeutralOrder(symbol=_symbol(i), side=_side(i), qty=QTY, client_order_id=f"bench-{i:08d}")
            for i in range(start, start + n)]


def _engine(db: Path, sync: str) -> Any:
    from workbench.core.models import NeutralOrder
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    config = PaperConfig(db_path=str(db), starting_cash=STARTING_CASH, synchronous=sync)
    engine = PaperEngine(config, SimProvider(clock=_clock), clock=_clock)
    for sym in SYMBOLS:  # the base positions, so that the alternating orders never flatten one
        engine.submit(NeutralOrder(symbol=sym, side="BUY", qty=BASE_QTY, client_order_id=f"seed-{sym}"))
    return engine


def engine_trial(db: Path, sync: str, n: int, warmup: int) -> tuple[Trial, float]:
    """Run the engine; returns the timed trial and the NeutralOrder build cost in µs per order."""
    engine = _engine(db, sync)
    try:
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
    finally:
        engine.close()
    _check(db, len(SYMBOLS) + warmup + n)
    return Trial(n, seconds), build_us


# -- raw SQLite -----------------------------------------------------------------------------


def raw_rows(source_db: Path) -> list[tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]]:
    """Per order, in submit order: (orders params, fills params, positions params, cash params).

    Orders and fills are the rows the measured side wrote; positions and cash are replayed from the fills.
    """
    import sqlite3

    from workbench.paper.schema import ORDER_COLS

    conn = sqlite3.connect(source_db)
    try:
        orders = conn.execute(f"SELECT {', '.join(ORDER_COLS)} FROM orders ORDER BY rowid").fetchall()
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
    from workbench.paper.ledger import _INSERT_FILL, _INSERT_ORDER, _UPDATE_CASH, _UPSERT_POSITION, Ledger

    ledger = Ledger(db, STARTING_CASH, sync)  # same file, schema and pragmas (WAL, synchronous, foreign_keys)
    try:
        cur = ledger._conn.cursor()
        execute = cur.execute

        def write(batch: list[Any]) -> None:
            for order, fill, position, cash in batch:
                execute("BEGIN IMMEDIATE")
                execute(_INSERT_ORDER, order)
                execute(_INSERT_FILL, fill)
                execute(_UPSERT_POSITION, position)
                execute(_UPDATE_CASH, cash)
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
    return Trial(len(timed), seconds)


# -- the benchmark --------------------------------------------------------------------------


def _best(trials: list[Trial]) -> float:
    return min(t.us_per_order for t in trials)


def _median(trials: list[Trial]) -> float:
    return statistics.median(t.us_per_order for t in trials)


def measure(sync: str, n: int, warmup: int, rounds: int, tmp: Path, user: bool) -> dict[str, Any]:
    users: list[Trial] = []
    user_raws: list[Trial] = []
    engines: list[Trial] = []
    raws: list[Trial] = []
    builds: list[float] = []
    for r in range(rounds):
        line = f"  {sync:6s} round {r + 1}/{rounds}:"
        if user:
            udb = tmp / f"user-{sync}-{r}.sqlite"
            users.append(user_trial(udb, n, warmup))
            rows = raw_rows(udb)
            user_raws.append(raw_trial(tmp / f"raw-user-{r}.sqlite", sync, rows, len(rows) - n))
            line += f" user {users[-1].rate:7,.0f}/s (raw {user_raws[-1].rate:7,.0f}/s)"
        edb = tmp / f"engine-{sync}-{r}.sqlite"
        trial, build_us = engine_trial(edb, sync, n, warmup)
        engines.append(trial)
        builds.append(build_us)
        rows = raw_rows(edb)
        raws.append(raw_trial(tmp / f"raw-{sync}-{r}.sqlite", sync, rows, len(rows) - n))
        print(f"{line} engine {trial.rate:7,.0f}/s (raw {raws[-1].rate:7,.0f}/s)", flush=True)
    out: dict[str, Any] = {
        "synchronous": sync, "n": n, "warmup": warmup, "rounds": rounds, "statistic": "best of rounds",
        "engine_orders_per_s": 1e6 / _best(engines), "raw_orders_per_s": 1e6 / _best(raws),
        "engine_us_per_order": _best(engines), "raw_us_per_order": _best(raws),
        "ratio": _best(engines) / _best(raws), "median_ratio": _median(engines) / _median(raws),
        "median_engine_orders_per_s": 1e6 / _median(engines), "median_raw_orders_per_s": 1e6 / _median(raws),
        "neutral_order_build_us": statistics.median(builds),
        "engine_rounds_orders_per_s": [round(t.rate, 1) for t in engines],
        "raw_rounds_orders_per_s": [round(t.rate, 1) for t in raws],
    }
    if user:
        out.update({
            "user_orders_per_s": 1e6 / _best(users), "user_raw_orders_per_s": 1e6 / _best(user_raws),
            "user_us_per_order": _best(users), "user_raw_us_per_order": _best(user_raws),
            "user_ratio": _best(users) / _best(user_raws), "median_user_ratio": _median(users) / _median(user_raws),
            "median_user_orders_per_s": 1e6 / _median(users),
            "user_rounds_orders_per_s": [round(t.rate, 1) for t in users],
            "user_raw_rounds_orders_per_s": [round(t.rate, 1) for t in user_raws],
        })
    return out


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    n, warmup, rounds, full_rounds = (1_000, 100, 1, 1) if quick else (N_ORDERS, WARMUP, ROUNDS, FULL_ROUNDS)
    load = _loadavg()
    print(f"  load average before: {load}")
    print(f"  {n:,} market orders after {warmup} warm-up, {len(SYMBOLS)} symbols, WAL; user path: public sync API, "
          f"wall clock; engine: fixed clock {NOW:%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory(prefix="wb-bench-engine-") as d:
        tmp = Path(d)
        normal = measure("NORMAL", n, warmup, rounds, tmp, user=True)
        full = measure("FULL", n, warmup, full_rounds, tmp, user=False)
        if profile:
            _profile(tmp / "profile.sqlite", n, warmup)
    normal["load_average_before"] = full["load_average_before"] = load
    print(f"  user path: {normal['user_orders_per_s']:,.0f} orders/s, {normal['user_ratio']:.2f}x raw SQLite "
          f"({normal['user_us_per_order']:.1f} vs {normal['user_raw_us_per_order']:.1f} µs/order) [best of "
          f"{rounds}; medians {normal['median_user_orders_per_s']:,.0f}/s, {normal['median_user_ratio']:.2f}x]")
    for m in (normal, full):
        print(f"  engine (synchronous={m['synchronous']}): {m['engine_orders_per_s']:,.0f} orders/s, "
              f"{m['ratio']:.2f}x raw ({m['engine_us_per_order']:.1f} vs {m['raw_us_per_order']:.1f} µs/order) "
              f"[best of {m['rounds']}; median {m['median_ratio']:.2f}x]")
    print(f"  (information) building one NeutralOrder costs {normal['neutral_order_build_us']:.1f} µs")
    user_rate, user_ratio = normal["user_orders_per_s"], normal["user_ratio"]
    rate, ratio = normal["engine_orders_per_s"], normal["ratio"]
    return [
        Result("paper user path place_market_order (NORMAL)", user_rate, "orders/s",
               f">= {ORDERS_PER_S_FLOOR:,.0f} orders/s", user_rate >= ORDERS_PER_S_FLOOR, normal),
        Result("paper user path/raw SQLite cost (NORMAL)", user_ratio, "x", f"<= {USER_RATIO_FLOOR:g}x",
               user_ratio <= USER_RATIO_FLOOR, normal),
        Result("engine throughput (NORMAL)", rate, "orders/s", f">= {ORDERS_PER_S_FLOOR:,.0f} orders/s",
               rate >= ORDERS_PER_S_FLOOR, normal),
        Result("raw SQLite baseline (NORMAL)", normal["raw_orders_per_s"], "orders/s"),
        Result("engine/raw cost (NORMAL)", ratio, "x", f"<= {ENGINE_RATIO_FLOOR:g}x", ratio <= ENGINE_RATIO_FLOOR,
               normal),
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
    """cProfile the timed loop of one user-path trial (everything runs in this thread) and print the top."""
    import cProfile
    import pstats

    import workbench

    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db), "starting_cash": STARTING_CASH}})
    try:
        for sym in SYMBOLS:
            broker.place_market_order(sym, BASE_QTY, "buy")
        for i in range(warmup):
            broker.place_market_order(_symbol(i), QTY, _side(i))
        prof = cProfile.Profile()
        prof.enable()
        for i in range(warmup, warmup + n):
            broker.place_market_order(_symbol(i), QTY, _side(i))
        prof.disable()
    finally:
        broker.close()
    print(f"\n  cProfile of {n:,} user-path orders (sorted by own time):")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
