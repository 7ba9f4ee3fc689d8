"""IB adapter benchmarks against workbench's TWS emulator (loopback, ib_async).

1. Adapter overhead: a small market order, place -> filled, through ``IBAdapter.place_order`` versus raw
   ib_async ``ib.placeOrder`` on the same emulator in the same run. Both clients live on one event loop
   (the emulator runs on its own thread), the two are alternated order by order (which goes first swaps
   every order), BUY/SELL alternate so positions stay bounded, and both wait for the fill with the same
   ``await asyncio.sleep(0.001)`` polls on ``trade.isDone()``. Order objects (NeutralOrder / MarketOrder)
   are built inside the timed section on both sides. Medians in ms; floor adapter/raw <= 1.05x.
2. 100k one-minute ``BarData`` -> DataFrame: the adapter's own ``bars_frame`` (what ``get_history`` uses:
   one vectorised timestamp conversion, ``np.fromiter`` per column, ``history_frame``) versus
   ``ib_async.util.df(bars)``. Best of 5; floor: faster than util.df.
3. Emulator connect time: ``IB.connectAsync`` (full startup sync) with distinct client ids, disconnect
   after each. Informational.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from .report import Result

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 New York: market open
SYMBOL = "AAPL"
QTY = Decimal(10)
STARTING_CASH = Decimal(1_000_000_000)
N_ORDERS, WARMUP = 200, 30
N_BARS, BAR_ROUNDS = 100_000, 5
N_CONNECTS = 20
OVERHEAD_FLOOR = 1.05
POLL = 0.001


def _clock() -> datetime:
    return NOW


class _Emulator:
    """A fresh PaperEngine (fixed clock, no slippage/commission) behind a TwsEmulator on its own thread."""

    def __init__(self, tmp: Path) -> None:
        from workbench.paper.config import PaperConfig
        from workbench.emulators.tws import TwsEmulator
        from workbench.marketdata.sim import SimProvider
        from workbench.paper.engine import PaperEngine

        self.db = tmp / "gateway.sqlite"
        self.engine = PaperEngine(PaperConfig(db_path=str(self.db), slippage_bps=0, commission=0,
                                              starting_cash=STARTING_CASH), SimProvider(clock=_clock), clock=_clock)
        self.emu = TwsEmulator(self.engine, port=0, server_version=178, tick_interval=None).start_in_thread()
        self.port = self.emu.port

    def close(self) -> None:
        self.emu.stop_thread()
        self.engine.close()


# -- 1. adapter overhead --------------------------------------------------------------------


async def _overhead(port: int, tmp: Path, n: int, warmup: int) -> tuple[list[float], list[float]]:
    from ib_async import IB, MarketOrder, Stock

    import workbench
    from workbench.core.models import NeutralOrder

    settings = {"paper": {"db_path": str(tmp / "unused-paper.sqlite"), "slippage_bps": 0, "commission": 0},
                "ib": {"port": port, "client_id": 7, "sdk": "ib_async", "connect_timeout": 5}}
    adapter = workbench.get_adapter("ib", settings)
    await adapter.connect()
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=8, timeout=5)
    contract = (await ib.qualifyContractsAsync(Stock(SYMBOL, "SMART", "USD")))[0]
    await adapter._contract(SYMBOL)  # qualify once up front on both sides (the adapter caches it)

    async def via_adapter(i: int, side: str) -> float:
        t0 = time.perf_counter()
        order = await adapter.place_order(NeutralOrder(symbol=SYMBOL, side=side, qty=QTY,
                                                       client_order_id=f"bench-ib-{i:06d}"))
        trade = adapter._trade(order.client_order_id)  # the live Trade (order.raw is a snapshot)
        while not trade.isDone():
            await asyncio.sleep(POLL)
        dt = time.perf_counter() - t0
        if trade.orderStatus.status != "Filled":
            raise RuntimeError(f"adapter order {i} ended {trade.orderStatus.status}")
        return dt

    async def via_raw(i: int, side: str) -> float:
        t0 = time.perf_counter()
        trade = ib.placeOrder(contract, MarketOrder(side, float(QTY)))
        while not trade.isDone():
            await asyncio.sleep(POLL)
        dt = time.perf_counter() - t0
        if trade.orderStatus.status != "Filled":
            raise RuntimeError(f"raw order {i} ended {trade.orderStatus.status}")
        return dt

    adapter_ms: list[float] = []
    raw_ms: list[float] = []
    try:
        for i in range(warmup + n):
            side = "BUY" if i % 2 == 0 else "SELL"
            if i % 4 < 2:
                a, r = await via_adapter(i, side), await via_raw(i, side)
            else:
                r, a = await via_raw(i, side), await via_adapter(i, side)
            if i >= warmup:
                adapter_ms.append(a * 1000)
                raw_ms.append(r * 1000)
    finally:
        ib.disconnect()
        await adapter.disconnect()
    return adapter_ms, raw_ms


def bench_overhead(quick: bool) -> list[Result]:
    n, warmup = (40, 10) if quick else (N_ORDERS, WARMUP)
    with tempfile.TemporaryDirectory(prefix="bench-ib-") as tmp:
        emu = _Emulator(Path(tmp))
        try:
            adapter_ms, raw_ms = asyncio.run(_overhead(emu.port, Path(tmp), n, warmup))
        finally:
            emu.close()
    a, r = statistics.median(adapter_ms), statistics.median(raw_ms)
    ratio = a / r
    met = ratio <= OVERHEAD_FLOOR
    q = lambda xs: statistics.quantiles(xs, n=10)  # noqa: E731
    print(f"  place -> fill, {n} orders each (after {warmup} warm-up), alternated, {POLL * 1000:g} ms polls")
    print(f"  adapter median {a:.3f} ms (p10 {q(adapter_ms)[0]:.3f}, p90 {q(adapter_ms)[-1]:.3f})")
    print(f"  raw     median {r:.3f} ms (p10 {q(raw_ms)[0]:.3f}, p90 {q(raw_ms)[-1]:.3f})")
    print(f"  adapter/raw {ratio:.2f}x (floor <= {OVERHEAD_FLOOR}x: {'met' if met else 'NOT met'})")
    return [
        Result("ib adapter place->fill median", round(a, 3), "ms", details={"n": n, "p90": q(adapter_ms)[-1]}),
        Result("ib raw ib_async place->fill median", round(r, 3), "ms", details={"n": n, "p90": q(raw_ms)[-1]}),
        Result("ib adapter overhead (adapter/raw)", ratio, "x", f"<= {OVERHEAD_FLOOR}x", met),
    ]


# -- 2. bars -> DataFrame -------------------------------------------------------------------


def _bars(n: int) -> list[Any]:
    from ib_async.objects import BarData

    start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    minute = timedelta(minutes=1)
    return [BarData(date=start + i * minute, open=100.0 + i * 1e-4, high=100.5 + i * 1e-4, low=99.5 + i * 1e-4,
                    close=100.1 + i * 1e-4, volume=float(1000 + i % 97), average=100.05, barCount=10)
            for i in range(n)]


def _workbench_frame(rows: list[Any]) -> Any:
    """The adapter's own conversion (``workbench.adapters.ib.adapter.bars_frame``), attrs as it sets them."""
    from workbench.adapters.ib.adapter import bars_frame

    return bars_frame(rows, broker="ib", source="ib", symbol=SYMBOL, interval="1m", adjusted=False)


def _best(fn: Any, arg: Any, rounds: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_bars(quick: bool) -> list[Result]:
    from ib_async import util

    n, rounds = (20_000, 2) if quick else (N_BARS, BAR_ROUNDS)
    bars = _bars(n)
    wb_s, frame = _best(_workbench_frame, bars, rounds)
    df_s, df = _best(util.df, bars, rounds)
    if len(frame) != n or len(df) != n:
        raise RuntimeError(f"frames have {len(frame)} / {len(df)} rows, expected {n}")
    speedup = df_s / wb_s
    met = wb_s < df_s
    print(f"  {n:,} one-minute BarData -> DataFrame, best of {rounds}")
    print(f"  workbench (get_history lines) {wb_s * 1000:.1f} ms; ib_async.util.df {df_s * 1000:.1f} ms")
    print(f"  speed-up util.df/workbench {speedup:.2f}x (floor: faster than util.df: {'met' if met else 'NOT met'})")
    return [
        Result(f"ib bars->frame workbench ({n // 1000}k)", wb_s, "s"),
        Result(f"ib bars->frame util.df ({n // 1000}k)", df_s, "s"),
        Result("ib bars->frame speed-up vs util.df", speedup, "x", "> 1.00x", met),
    ]


# -- 3. connect time ------------------------------------------------------------------------


async def _connects(port: int, n: int) -> list[float]:
    from ib_async import IB

    out = []
    for i in range(n):
        ib = IB()
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=100 + i, timeout=5)
        out.append((time.perf_counter() - t0) * 1000)
        ib.disconnect()
        await asyncio.sleep(0.01)  # let the emulator drop the session
    return out


def bench_connect(quick: bool) -> list[Result]:
    n = 5 if quick else N_CONNECTS
    with tempfile.TemporaryDirectory(prefix="bench-ib-") as tmp:
        emu = _Emulator(Path(tmp))
        try:
            asyncio.run(_connects(emu.port, 1))  # warm-up (imports, first session)
            ms = asyncio.run(_connects(emu.port, n))
        finally:
            emu.close()
    med = statistics.median(ms)
    print(f"  connectAsync (startup sync) x{n}: median {med:.2f} ms, min {min(ms):.2f}, max {max(ms):.2f}")
    return [Result("ib emulator connectAsync median", round(med, 3), "ms", details={"n": n, "min": min(ms), "max": max(ms)})]


def run(quick: bool = False) -> list[Result]:
    results: list[Result] = []
    for title, fn in (("adapter overhead", bench_overhead), ("bars -> DataFrame", bench_bars),
                      ("emulator connect", bench_connect)):
        print(f"- {title}", flush=True)
        results += fn(quick)
    return results
