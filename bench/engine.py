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

CHUNK = 250  # orders per alternation between the measured side and its raw replay
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


# -- raw SQLite: the same rows, replayed -----------------------------------------------------


class Replay:
    """Writes the rows another ledger holds into a fresh ledger with plain SQL, one transaction per order.

    Same file layout, schema and pragmas (a :class:`Ledger` creates the file; its connection then
    runs plain SQL): one orders INSERT, one fills INSERT, one positions upsert and one cash UPDATE per
    order, parameters prepared before the clock starts.
    """

    def __init__(self, source: Path, db: Path, sync: str) -> None:
        import sqlite3

        from workbench.paper.ledger import Ledger

        self.source = sqlite3.connect(source)
        self.ledger = Ledger(db, STARTING_CASH, sync)
        self.cur = self.ledger._conn.cursor()
        self.after = 0  # rowid of the last order replayed
        self.cash = STARTING_CASH
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}

    def pending(self) -> list[tuple[Any, ...]]:
        """The source's orders (with their one fill) not replayed yet, as ready parameters."""
        from workbench.paper.schema import ORDER_COLS

        orders = self.source.execute(f"SELECT rowid, {', '.join(ORDER_COLS)} FROM orders WHERE rowid > ? "
                                     "ORDER BY rowid", (self.after,)).fetchall()
        fills = {r[1]: r for r in self.source.execute(
            "SELECT exec_id, order_id, client_order_id, symbol, side, qty, price, commission, ts FROM fills "
            "WHERE order_id IN (SELECT order_id FROM orders WHERE rowid > ?)", (self.after,))}
        out = []
        for rowid, *order in orders:
            fill = fills[order[0]]
            sym, side, qty, price, commission = fill[3], fill[4], Decimal(fill[5]), Decimal(fill[6]), Decimal(fill[7])
            signed = qty if side == "BUY" else -qty
            held, avg = self.positions.get(sym, (Decimal(0), Decimal(0)))
            new_qty = held + signed
            if held == 0 or (held > 0) == (signed > 0):
                avg = ((held * avg + signed * price) / new_qty).quantize(Decimal("0.000001"))
            self.positions[sym] = (new_qty, avg)
            self.cash = self.cash - signed * price - commission
            out.append((tuple(order), tuple(fill), (sym, str(new_qty), str(avg)), (str(self.cash),)))
            self.after = rowid
        return out

    def write(self, rows: list[tuple[Any, ...]]) -> float:
        from workbench.paper.ledger import _INSERT_FILL, _INSERT_ORDER, _UPDATE_CASH, _UPSERT_POSITION

        execute = self.cur.execute
        t0 = time.perf_counter()
        for order, fill, position, cash in rows:
            execute("BEGIN IMMEDIATE")
            execute(_INSERT_ORDER, order)
            execute(_INSERT_FILL, fill)
            execute(_UPSERT_POSITION, position)
            execute(_UPDATE_CASH, cash)
            execute("COMMIT")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.source.close()
        self.ledger.close()


def paired(place: Any, source: Path, raw_db: Path, sync: str, start: int, n: int) -> tuple[Trial, Trial]:
    """Time ``place(i)`` for n orders and the raw replay of the same rows, chunk by chunk, alternating.

    Each chunk of orders is followed at once by the raw replay of exactly its rows, so both sides are
    measured under the same load on the machine (a busy second hurts both, not one).
    """
    replay = Replay(source, raw_db, sync)
    try:
        replay.write(replay.pending())  # the seed and warm-up rows, untimed
        side_s = raw_s = 0.0
        for first in range(start, start + n, CHUNK):
            t0 = time.perf_counter()
            for i in range(first, min(first + CHUNK, start + n)):
                place(i)
            side_s += time.perf_counter() - t0
            raw_s += replay.write(replay.pending())
    finally:
        replay.close()
    return Trial(n, side_s), Trial(n, raw_s)


# -- the user path --------------------------------------------------------------------------


def user_trial(db: Path, raw_db: Path, n: int, warmup: int) -> tuple[Trial, Trial]:
    """``workbench.connect("paper").place_market_order`` in a loop (default settings, wall clock), paired
    with the raw replay of its rows."""
    import workbench

    broker = workbench.connect("paper", settings={"paper": {"db_path": str(db), "starting_cash": STARTING_CASH}})
    try:
        for sym in SYMBOLS:
            broker.place_market_order(sym, BASE_QTY, "buy")
        place_market_order = broker.place_market_order
        for i in range(warmup):
            place_market_order(_symbol(i), QTY, _side(i))
        trials = paired(lambda i: place_market_order(_symbol(i), QTY, _side(i)), db, raw_db, "NORMAL", warmup, n)
    finally:
        broker.close()
    _check(db, len(SYMBOLS) + warmup + n)
    return trials


# -- the engine alone -----------------------------------------------------------------------


def _orders(start: int, n: int) -> list[Any]:
    from workbench.core.models import NeutralOrder

    return [NeutralOrder(symbol=_symbol(i), side=_side(i), qty=QTY, client_order_id=f"bench-{i:08d}")
            for i in range(start, start + n)]


def engine_trial(db: Path, raw_db: Path, sync: str, n: int, warmup: int) -> tuple[Trial, Trial, float]:
    """``PaperEngine.submit`` of prebuilt orders (fixed clock), paired with the raw replay of its rows;
    also returns the NeutralOrder build cost in µs per order."""
    from workbench.core.models import NeutralOrder
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
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
        side, raw = paired(lambda i: submit(timed[i - warmup]), db, raw_db, sync, warmup, n)
    finally:
        engine.close()
    _check(db, len(SYMBOLS) + warmup + n)
    return side, raw, build_us


# -- the benchmark --------------------------------------------------------------------------


def _best(trials: list[Trial]) -> float:
    return min(t.us_per_order for t in trials)


def _ratio(sides: list[Trial], raws: list[Trial]) -> float:
    """The median over rounds of the paired cost ratio (each round's side against its own raw replay)."""
    return statistics.median(s.us_per_order / r.us_per_order for s, r in zip(sides, raws, strict=True))


def measure(sync: str, n: int, warmup: int, rounds: int, tmp: Path, user: bool) -> dict[str, Any]:
    users: list[Trial] = []
    user_raws: list[Trial] = []
    engines: list[Trial] = []
    raws: list[Trial] = []
    builds: list[float] = []
    for r in range(rounds):
        line = f"  {sync:6s} round {r + 1}/{rounds}:"
        if user:
            u, ur = user_trial(tmp / f"user-{r}.sqlite", tmp / f"raw-user-{r}.sqlite", n, warmup)
            users.append(u)
            user_raws.append(ur)
            line += f" user {u.rate:7,.0f}/s (raw {ur.rate:7,.0f}/s, {u.seconds / ur.seconds:.2f}x)"
        e, er, build_us = engine_trial(tmp / f"engine-{sync}-{r}.sqlite", tmp / f"raw-{sync}-{r}.sqlite", sync, n,
                                       warmup)
        engines.append(e)
        raws.append(er)
        builds.append(build_us)
        print(f"{line} engine {e.rate:7,.0f}/s (raw {er.rate:7,.0f}/s, {e.seconds / er.seconds:.2f}x)", flush=True)
    out: dict[str, Any] = {
        "synchronous": sync, "n": n, "warmup": warmup, "rounds": rounds, "chunk": CHUNK,
        "statistic": "rates: best round; ratios: median over rounds of the paired ratio",
        "engine_orders_per_s": 1e6 / _best(engines), "raw_orders_per_s": 1e6 / _best(raws),
        "engine_us_per_order": _best(engines), "raw_us_per_order": _best(raws), "ratio": _ratio(engines, raws),
        "engine_rounds_orders_per_s": [round(t.rate, 1) for t in engines],
        "raw_rounds_orders_per_s": [round(t.rate, 1) for t in raws],
        "neutral_order_build_us": statistics.median(builds),
    }
    if user:
        out.update({
            "user_orders_per_s": 1e6 / _best(users), "user_raw_orders_per_s": 1e6 / _best(user_raws),
            "user_us_per_order": _best(users), "user_raw_us_per_order": _best(user_raws),
            "user_ratio": _ratio(users, user_raws), "best_user_ratio": min(
                u.seconds / r.seconds for u, r in zip(users, user_raws, strict=True)),
            "user_rounds_orders_per_s": [round(t.rate, 1) for t in users],
            "user_raw_rounds_orders_per_s": [round(t.rate, 1) for t in user_raws],
        })
    return out


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    n, warmup, rounds, full_rounds = (1_000, 100, 1, 1) if quick else (N_ORDERS, WARMUP, ROUNDS, FULL_ROUNDS)
    load = _loadavg()
    print(f"  load average before: {load}")
    print(f"  {n:,} market orders after {warmup} warm-up, {len(SYMBOLS)} symbols, WAL; user path: public sync API, "
          f"wall clock; engine: fixed clock {NOW:%Y-%m-%d %H:%M} UTC; raw replay every {CHUNK} orders")
    with tempfile.TemporaryDirectory(prefix="wb-bench-engine-") as d:
        tmp = Path(d)
        normal = measure("NORMAL", n, warmup, rounds, tmp, user=True)
        full = measure("FULL", n, warmup, full_rounds, tmp, user=False)
        if profile:
            _profile(tmp / "profile.sqlite", n, warmup)
    normal["load_average_before"] = full["load_average_before"] = load
    print(f"  user path: {normal['user_orders_per_s']:,.0f} orders/s (best round), {normal['user_ratio']:.2f}x the "
          f"raw SQLite cost (median of {rounds} paired rounds; best {normal['best_user_ratio']:.2f}x)")
    for m in (normal, full):
        print(f"  engine (synchronous={m['synchronous']}): {m['engine_orders_per_s']:,.0f} orders/s, "
              f"{m['ratio']:.2f}x raw (median of {m['rounds']} paired rounds)")
    print(f"  (information) building one NeutralOrder costs {normal['neutral_order_build_us']:.1f} µs")
    user_rate, user_ratio = normal["user_orders_per_s"], normal["user_ratio"]
    rate, ratio = normal["engine_orders_per_s"], normal["ratio"]
    return [
        Result("paper user path place_market_order (NORMAL)", user_rate, "orders/s",
               f">= {ORDERS_PER_S_FLOOR:,.0f} orders/s", user_rate >= ORDERS_PER_S_FLOOR, normal),
        Result("paper user path/raw SQLite cost (NORMAL)", user_ratio, "x", f"<= {USER_RATIO_FLOOR:g}x",
               user_ratio <= USER_RATIO_FLOOR, normal),
        Result("raw SQLite, same rows (NORMAL)", normal["user_raw_orders_per_s"], "orders/s"),
        Result("engine throughput (NORMAL)", rate, "orders/s", f">= {ORDERS_PER_S_FLOOR:,.0f} orders/s",
               rate >= ORDERS_PER_S_FLOOR, normal),
        Result("engine/raw cost (NORMAL)", ratio, "x", f"<= {ENGINE_RATIO_FLOOR:g}x", ratio <= ENGINE_RATIO_FLOOR,
               normal),
        Result("engine throughput (FULL)", full["engine_orders_per_s"], "orders/s", details=full),
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
