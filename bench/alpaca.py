"""Alpaca adapter benchmarks against workbench's Alpaca emulator (loopback, alpaca-py 0.44.0).

1. Adapter overhead: a small market order, submit -> its fill event, through the adapter
   (``place_order``, then the FillEvent from ``stream_fills()``) versus raw alpaca-py
   (``TradingClient.submit_order`` in a worker thread, since it blocks, then the ``fill`` TradeUpdate from
   alpaca-py's own ``TradingStream``; both with alpaca-py's defaults, its typed models, as plain alpaca-py code
   runs), on the same emulator, in the same run, on one event loop. Both streams
   stay connected, but only the side being timed listens to trade_updates (a ``listen`` message switches,
   untimed): the account-wide stream would otherwise make each side parse the other's events on the shared
   loop, and the emulator would always write to one socket first. Which side goes first swaps every two
   rounds and BUY/SELL every round (positions stay bounded), so each side goes first equally often on each
   side of the book; the loop settles 2 ms between orders, untimed.
   Request objects are built inside the timed section on both sides. Each round times one order per side, back
   to back, so the figure is the median of the per-round ratios adapter/raw (drift between rounds cancels);
   the ratio of the two medians is printed too. Floor: adapter/raw <= 1.05x.
2. Stream fill latency: the engine commits a fill (a listener stamps it) -> the FillEvent comes out of
   ``adapter.stream_fills()``. Median in ms (informational).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from .report import Result

SYMBOL = "AAPL"
QTY = Decimal(10)
STARTING_CASH = Decimal(1_000_000_000)
N_ORDERS, WARMUP = 400, 40
N_LATENCY = 100
OVERHEAD_FLOOR = 1.05
SETTLE = 0.002
KEY, SECRET = "PKBENCH00000001", "bench-secret-not-real"


class _Emulator:
    """A fresh PaperEngine (no slippage/commission) behind an AlpacaEmulator on its own thread."""

    def __init__(self, tmp: Path) -> None:
        from workbench.emulators.alpaca import AlpacaEmulator
        from workbench.marketdata.sim import SimProvider
        from workbench.paper.config import PaperConfig
        from workbench.paper.engine import PaperEngine

        self.engine = PaperEngine(PaperConfig(db_path=str(tmp / "alpaca.sqlite"), slippage_bps=0, commission=0,
                                              starting_cash=STARTING_CASH, allow_short=True), SimProvider())
        self.emu = AlpacaEmulator(self.engine, key=KEY, secret=SECRET, tick_interval=None).start_in_thread()

    def close(self) -> None:
        self.emu.stop_thread()
        self.engine.close()


async def _adapter(emu: Any, tmp: Path) -> Any:
    import workbench

    os.environ.update(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET)
    settings = {"paper": {"db_path": str(tmp / "unused-paper.sqlite")}, "alpaca": emu.settings()}
    adapter = workbench.get_adapter("alpaca", settings)
    await adapter.connect()
    return adapter


# -- 1. adapter overhead --------------------------------------------------------------------


async def _overhead(emu: Any, tmp: Path, n: int, warmup: int) -> tuple[list[float], list[float]]:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import MarketOrderRequest
    from alpaca.trading.stream import TradingStream

    from workbench.core.models import NeutralOrder

    adapter = await _adapter(emu, tmp)
    adapter_fills: dict[str, asyncio.Future[Any]] = {}
    raw_fills: dict[str, asyncio.Future[Any]] = {}

    async def adapter_consumer() -> None:
        async for fill in adapter.stream_fills():
            future = adapter_fills.pop(fill.local_id, None)
            if future is not None:
                future.set_result(fill)

    async def on_update(update: Any) -> None:  # raw alpaca-py: its own TradingStream on the same loop
        if update.event == "fill":
            future = raw_fills.pop(update.order.client_order_id, None)
            if future is not None:
                future.set_result(update)

    stream = TradingStream(KEY, SECRET, url_override=emu.stream_url)
    stream.subscribe_trade_updates(on_update)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(stream._run_forever()), loop.create_task(adapter_consumer())]
    while emu.call(lambda: len(emu._listeners)) < 2:
        await asyncio.sleep(0.01)
    client = TradingClient(KEY, SECRET, url_override=emu.base_url)
    streams = {"adapter": adapter._stream, "raw": stream}
    listening = {"adapter", "raw"}

    async def only(side: str) -> None:
        """Let only ``side``'s stream listen: first the other way round adds, then removes (counts say when)."""
        for name, on in ((side, True), *((other, False) for other in streams if other != side)):
            if (name in listening) is on:
                continue
            message = {"action": "listen", "data": {"streams": ["trade_updates"] if on else []}}
            await streams[name]._ws.send(json.dumps(message))
            listening.add(name) if on else listening.discard(name)
            while emu.call(lambda: len(emu._listeners)) != len(listening):
                await asyncio.sleep(0.0005)

    async def via_adapter(i: int, side: str) -> float:
        coid = f"bench-a-{i:06d}"
        future = adapter_fills[coid] = loop.create_future()
        t0 = time.perf_counter()
        await adapter.place_order(NeutralOrder(symbol=SYMBOL, side=side, qty=QTY, client_order_id=coid))
        await future
        return time.perf_counter() - t0

    async def via_raw(i: int, side: str) -> float:
        coid = f"bench-r-{i:06d}"
        future = raw_fills[coid] = loop.create_future()
        t0 = time.perf_counter()
        request = MarketOrderRequest(symbol=SYMBOL, qty=float(QTY), side=side.lower(), time_in_force="day",
                                     client_order_id=coid)
        await asyncio.to_thread(client.submit_order, request)  # alpaca-py's REST is blocking: off the loop
        await future
        return time.perf_counter() - t0

    adapter_ms: list[float] = []
    raw_ms: list[float] = []
    try:
        for i in range(warmup + n):
            side = "BUY" if i % 2 == 0 else "SELL"
            first, second = ("adapter", "raw") if i % 4 < 2 else ("raw", "adapter")
            timed = {}
            for name in (first, second):
                await only(name)
                await asyncio.sleep(SETTLE)
                timed[name] = await (via_adapter if name == "adapter" else via_raw)(i, side)
            a, r = timed["adapter"], timed["raw"]
            await asyncio.sleep(SETTLE)
            if i >= warmup:
                adapter_ms.append(a * 1000)
                raw_ms.append(r * 1000)
    finally:
        await stream.stop_ws()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.close()
        await adapter.disconnect()
    return adapter_ms, raw_ms


def _q(xs: list[float]) -> list[float]:
    return statistics.quantiles(xs, n=10)


def bench_overhead(quick: bool) -> list[Result]:
    n, warmup = (40, 10) if quick else (N_ORDERS, WARMUP)
    with tempfile.TemporaryDirectory(prefix="bench-alpaca-") as tmp:
        emu = _Emulator(Path(tmp))
        try:
            adapter_ms, raw_ms = asyncio.run(_overhead(emu.emu, Path(tmp), n, warmup))
        finally:
            emu.close()
    a, r = statistics.median(adapter_ms), statistics.median(raw_ms)
    ratios = [x / y for x, y in zip(adapter_ms, raw_ms, strict=True)]
    ratio = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4)
    met = ratio <= OVERHEAD_FLOOR
    print(f"  submit -> fill event, {n} rounds of one order each (after {warmup} warm-up), alternated")
    print(f"  adapter       median {a:.3f} ms (p10 {_q(adapter_ms)[0]:.3f}, p90 {_q(adapter_ms)[-1]:.3f})")
    print(f"  raw alpaca-py median {r:.3f} ms (p10 {_q(raw_ms)[0]:.3f}, p90 {_q(raw_ms)[-1]:.3f})")
    print(f"  adapter/raw per round: median {ratio:.3f}x (quartiles {quartiles[0]:.3f}-{quartiles[-1]:.3f}); "
          f"ratio of the medians {a / r:.3f}x (floor <= {OVERHEAD_FLOOR}x: {'met' if met else 'NOT met'})")
    return [
        Result("alpaca adapter submit->fill median", round(a, 3), "ms", details={"n": n, "p90": _q(adapter_ms)[-1]}),
        Result("alpaca raw alpaca-py submit->fill median", round(r, 3), "ms", details={"n": n, "p90": _q(raw_ms)[-1]}),
        Result("alpaca adapter overhead (adapter/raw)", ratio, "x", f"<= {OVERHEAD_FLOOR}x", met,
               details={"n": n, "q1": quartiles[0], "q3": quartiles[-1], "ratio_of_medians": a / r}),
    ]


# -- 2. stream fill latency -----------------------------------------------------------------


async def _latency(emu: Any, tmp: Path, n: int) -> list[float]:
    from workbench.adapters.alpaca.parse import fill_key
    from workbench.core.models import NeutralOrder

    adapter = await _adapter(emu, tmp)
    committed: dict[str, int] = {}
    unsubscribe = emu.engine.add_fill_listener(
        lambda f: committed.setdefault(fill_key(emu.book.alpaca_id(f.broker_id), f.qty), time.perf_counter_ns()))
    received: dict[str, int] = {}
    done = asyncio.Event()

    async def consume() -> None:
        async for fill in adapter.stream_fills():
            received[fill.exec_id] = time.perf_counter_ns()
            if len(received) >= n:
                done.set()

    task = asyncio.get_running_loop().create_task(consume())
    await asyncio.sleep(0)
    try:
        for i in range(n):
            got = len(received)
            await adapter.place_order(NeutralOrder(symbol=SYMBOL, side="BUY" if i % 2 == 0 else "SELL", qty=QTY))
            while len(received) == got:  # one order at a time, so each fill's latency is measured unloaded
                await asyncio.sleep(0.0005)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
        unsubscribe()
        await adapter.disconnect()
    return [(received[k] - committed[k]) / 1e6 for k in received if k in committed]


def bench_latency(quick: bool) -> list[Result]:
    n = 20 if quick else N_LATENCY
    with tempfile.TemporaryDirectory(prefix="bench-alpaca-") as tmp:
        emu = _Emulator(Path(tmp))
        try:
            ms = asyncio.run(_latency(emu.emu, Path(tmp), n))
        finally:
            emu.close()
    med = statistics.median(ms)
    print(f"  engine fill -> stream_fills() x{len(ms)}: median {med:.3f} ms, p90 {_q(ms)[-1]:.3f}, max {max(ms):.3f}")
    return [Result("alpaca stream fill latency median", round(med, 3), "ms",
                   details={"n": len(ms), "p90": _q(ms)[-1], "max": max(ms)})]


def run(quick: bool = False) -> list[Result]:
    warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
    results: list[Result] = []
    with mock.patch.dict(os.environ):  # the emulator's key pair (set by _adapter) is gone again afterwards
        for title, fn in (("adapter overhead", bench_overhead), ("stream fill latency", bench_latency)):
            print(f"- {title}", flush=True)
            results += fn(quick)
    return results
