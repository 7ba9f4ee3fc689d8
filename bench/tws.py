"""TWS emulator figures, with the real ib_async client over loopback (informational).

1. Connect: ``IB.connectAsync`` including the whole startup sync (positions, open and completed orders,
   account updates, executions), a fresh client id each time, disconnect after each. Median in ms.
2. ``reqHistoricalData`` of one year of daily bars (``"1 Y"``, ``"1 day"``) and of five days of one-minute
   bars (``"5 D"``, ``"1 min"``, ~1,600-1,950 bars), request to the last bar decoded, median in ms, after
   one warm-up request per symbol (the sim's first look at a symbol's year costs ~0.1 s more).

The emulator runs on its own thread over an in-memory paper ledger, sim prices and a fixed clock (a
Wednesday, 10:00 New York). Requests alternate symbols so no answer is cached by the emulator.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from .report import Result

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT", "AMD", "INTC", "SPY", "QQQ", "JPM", "XOM")
N_CONNECTS, N_REQUESTS = 30, 15


def _clock() -> datetime:
    return NOW


def _emulator() -> tuple[Any, Any]:
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=":memory:"), SimProvider(clock=_clock), clock=_clock)
    emu = TwsEmulator(engine, port=0, server_version=178, tick_interval=None).start_in_thread()
    return emu, engine


async def _connects(port: int, n: int, first_id: int) -> list[float]:
    from ib_async import IB

    out = []
    for i in range(n):
        ib = IB()
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=first_id + i, timeout=5)
        out.append((time.perf_counter() - t0) * 1000)
        ib.disconnect()
        await asyncio.sleep(0.01)  # let the emulator drop the session
    return out


async def _history(port: int, n: int, duration: str, bar_size: str) -> tuple[list[float], int]:
    from ib_async import IB, Stock

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=900, timeout=5)
    try:
        contracts = await ib.qualifyContractsAsync(*(Stock(s, "SMART", "USD") for s in SYMBOLS))
        out, count = [], 0
        for i in range(n):
            t0 = time.perf_counter()
            bars = await ib.reqHistoricalDataAsync(contracts[i % len(contracts)], "", duration, bar_size, "TRADES",
                                                   True, 2)
            out.append((time.perf_counter() - t0) * 1000)
            count = len(bars)
        return out, count
    finally:
        ib.disconnect()


def run(quick: bool = False) -> list[Result]:
    n_connect, n_requests = (5, 3) if quick else (N_CONNECTS, N_REQUESTS)
    emu, engine = _emulator()
    try:
        asyncio.run(_connects(emu.port, 2, 800))  # warm-up: imports, calendar, first session
        connects = asyncio.run(_connects(emu.port, n_connect, 100))
        for duration, bar_size in (("1 Y", "1 day"), ("5 D", "1 min")):  # warm-up: one request per symbol
            asyncio.run(_history(emu.port, len(SYMBOLS), duration, bar_size))
        daily, daily_bars = asyncio.run(_history(emu.port, n_requests, "1 Y", "1 day"))
        minutes, minute_bars = asyncio.run(_history(emu.port, n_requests, "5 D", "1 min"))
    finally:
        emu.stop_thread()
        engine.close()
    results = []
    for name, values, details in (("tws emulator connectAsync (startup sync) median", connects, {"n": n_connect}),
                                  ("tws reqHistoricalData 1 Y of 1 day bars median", daily,
                                   {"n": n_requests, "bars": daily_bars}),
                                  ("tws reqHistoricalData 5 D of 1 min bars median", minutes,
                                   {"n": n_requests, "bars": minute_bars})):
        med = statistics.median(values)
        print(f"  {name}: {med:.2f} ms (min {min(values):.2f}, max {max(values):.2f}, {details})")
        results.append(Result(name, round(med, 2), "ms", details={**details, "min": min(values), "max": max(values)}))
    return results
