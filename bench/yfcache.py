"""yfinance history cache: warm cache vs cold fetch (through the loopback Yahoo stand-in), and
reading 500 symbols x 10 years of daily bars from the cache into one frame.

Both go through the public ``YFinanceProvider.get_history``. The stand-in is the one the tests use
(tests/yahoo/standin.py): real yfinance code, real HTTP over 127.0.0.1, no internet.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .report import Result

NOW = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
N_SYMBOLS = 500
YEARS = 10
READ_FLOOR_S = 1.0
WARM_FLOOR_X = 20.0


def _synthetic_store(root: Path, symbols: list[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Write 10 years of weekday bars per symbol straight into the cache, marked fully covered and checked
    today for dividends and splits (each symbol's events record too), as a warm cache is."""
    from workbench.core.frames import history_frame
    from workbench.marketdata.cache import CacheEntry, EventsRecord, HistoryCache
    from workbench.marketdata.events import day_of, empty_events

    cache = HistoryCache(root)
    now = pd.Timestamp(NOW).value
    end = pd.Timestamp(NOW).normalize()
    start = end - pd.DateOffset(years=YEARS)
    days = pd.bdate_range(start, end, inclusive="left", tz="UTC")
    rng = np.random.default_rng(1)
    basis = {"day": day_of(now), "at": now, "events": []}
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        frame = history_frame(days, close, close * 1.01, close * 0.99, close, np.full(len(days), 1e6))
        cache.write(CacheEntry(sym, "1d", True, frame, covered=[(start.value, end.value)],
                               provisional=(end.value, now, now), fetched_at=now, extra={"basis": basis}))
        cache.write_events(EventsRecord(sym, empty_events(), [(start.value, now)], now, "America/New_York"))
    return start, end


def read_many(quick: bool = False) -> list[Result]:
    from workbench.marketdata.yahoo import YFinanceProvider

    n = 50 if quick else N_SYMBOLS
    symbols = [f"S{i:03d}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        start, _ = _synthetic_store(Path(tmp), symbols)
        provider = YFinanceProvider(cache_dir=tmp, clock=lambda: NOW, progress=False, session=_NoNetwork())
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            frame = provider.get_history(symbols, start=start, end=NOW)
            times.append(time.perf_counter() - t0)
        assert frame.index.get_level_values("symbol").nunique() == n and frame.attrs["cached"]
        best, median = min(times), statistics.median(times)
    rows = len(frame)
    print(f"  {n} symbols x {YEARS} years daily = {rows:,} rows from the cache: best {best * 1000:.0f} ms, "
          f"median {median * 1000:.0f} ms (runs: {', '.join(f'{t * 1000:.0f}' for t in times)})")
    return [Result(f"cache read {n} sym x {YEARS}y daily", best, "s", f"<= {READ_FLOOR_S:g} s",
                   best <= READ_FLOOR_S, {"median_s": median, "rows": rows})]


class _NoNetwork:
    """A session placeholder: the read benchmark must be answered by the cache alone."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError("the cache-read benchmark tried to use the network")


def warm_vs_cold(quick: bool = False) -> list[Result]:
    """The same request (AAPL, 10 years daily) cold (empty cache, through the stand-in) vs warm (cache)."""
    import sys

    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.yahoo.fixtures import reset_yfinance_state
    from tests.yahoo.standin import LoopbackCurlSession, YahooStandin
    from workbench.marketdata.yahoo import YFinanceProvider

    runs = 3 if quick else 7
    cold_times, warm_times = [], []
    with YahooStandin() as yahoo, tempfile.TemporaryDirectory() as tmp:
        session = LoopbackCurlSession(yahoo.target)
        for i in range(runs):
            reset_yfinance_state(session, Path(tmp) / f"yf-state-{i}")
            provider = YFinanceProvider(session=session, cache_dir=Path(tmp) / f"cache-{i}", clock=lambda: yahoo.now,
                                        progress=False, requests_per_second=1000)
            t0 = time.perf_counter()
            cold = provider.get_history("AAPL", start="2016-11-01", end="2026-11-01")
            cold_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            warm = provider.get_history("AAPL", start="2016-11-01", end="2026-11-01")
            warm_times.append(time.perf_counter() - t0)
            assert warm.attrs["cached"] and not cold.attrs["cached"] and warm.equals(cold)
        session.close()
    cold_s, warm_s = statistics.median(cold_times), statistics.median(warm_times)
    ratio = cold_s / warm_s
    print(f"  AAPL 10y daily ({len(cold):,} bars): cold (stand-in over loopback) median {cold_s * 1000:.1f} ms, "
          f"warm (cache) median {warm_s * 1000:.1f} ms -> {ratio:.1f}x")
    return [Result("yfinance cold fetch (stand-in)", cold_s, "s"),
            Result("yfinance warm cache read", warm_s, "s"),
            Result("warm vs cold speed-up", ratio, "x", f">= {WARM_FLOOR_X:g}x", ratio >= WARM_FLOOR_X,
                   {"cold_runs_s": cold_times, "warm_runs_s": warm_times})]


def run(quick: bool = False) -> list[Result]:
    return warm_vs_cold(quick) + read_many(quick)
