"""The Parquet history cache: range arithmetic, round trips, atomic writes, whole-store reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.core.frames import history_frame
from workbench.marketdata.cache import CacheEntry, HistoryCache, merge_ranges, subtract_ranges


def _bars(start: str, n: int, base: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="D", tz="UTC")
    close = base + np.arange(n, dtype=float)
    return history_frame(ts, close, close + 1, close - 1, close, np.full(n, 1e6))


def test_range_arithmetic() -> None:
    assert merge_ranges([(5, 9), (1, 3), (3, 4), (8, 12)]) == [(1, 4), (5, 12)]
    assert subtract_ranges((0, 10), [(2, 4), (6, 8)]) == [(0, 2), (4, 6), (8, 10)]
    assert subtract_ranges((0, 10), [(0, 10)]) == []
    assert subtract_ranges((0, 10), []) == [(0, 10)]
    assert subtract_ranges((3, 5), [(0, 4), (4, 9)]) == []


def test_round_trip_keeps_bars_and_metadata(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path)
    frame = _bars("2024-01-01", 30)
    entry = CacheEntry("AAPL", "1d", True, frame, covered=[(1, 2)], provisional=(2, 3, 4), fetched_at=99,
                       extra={"splits": {"fetched_at": 1, "dates": [[5, 4.0]]}})
    cache.write(entry)
    back = cache.read("AAPL", "1d", True)
    assert back is not None
    pd.testing.assert_frame_equal(back.frame, frame, check_freq=False)
    assert back.covered == [(1, 2)] and back.provisional == (2, 3, 4) and back.fetched_at == 99
    assert back.extra["splits"]["dates"] == [[5, 4.0]]
    assert cache.read("AAPL", "1d", False) is None  # adjusted and unadjusted are separate datasets
    assert cache.path("AAPL", "1d", True).relative_to(tmp_path).as_posix() == \
        "interval=1d/adjusted=true/symbol=AAPL/data.parquet"


def test_whole_store_reads_with_pandas_and_read_many(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path)
    for i, sym in enumerate(["AAPL", "MSFT", "SPY"]):
        cache.write(CacheEntry(sym, "1d", True, _bars("2024-01-01", 10 + i, 100 * (i + 1))))
    everything = pd.read_parquet(tmp_path)  # hive partitions become columns
    assert len(everything) == 10 + 11 + 12 and set(everything["symbol"].astype(str)) == {"AAPL", "MSFT", "SPY"}
    long = cache.read_many(["SPY", "AAPL"], "1d", True)
    assert list(long.index.names) == ["symbol", "ts"] and set(long.index.get_level_values(0)) == {"AAPL", "SPY"}
    assert len(long.loc["SPY"]) == 12 and str(long.loc["AAPL"].index.tz) == "UTC"
    listing = cache.entries()
    assert list(listing["symbol"]) == ["AAPL", "MSFT", "SPY"] and list(listing["bars"]) == [10, 11, 12]
    assert cache.clear(symbol="MSFT") == 1 and list(cache.entries()["symbol"]) == ["AAPL", "SPY"]
    assert cache.clear() == 2 and cache.entries().empty


def test_a_crash_during_a_write_leaves_the_old_data_readable(tmp_path: Path) -> None:
    """Kill a writer process (SIGKILL) after it wrote the new bytes but before it swapped them in."""
    cache = HistoryCache(tmp_path)
    old = _bars("2024-01-01", 20)
    cache.write(CacheEntry("AAPL", "1d", True, old, covered=[(0, 1)]))
    code = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from workbench.core.frames import history_frame
        from workbench.marketdata.cache import CacheEntry, HistoryCache
        import pandas as pd
        ts = pd.date_range("2020-01-01", periods=5000, freq="D", tz="UTC")
        x = np.arange(5000, dtype=float)
        new = history_frame(ts, x, x, x, x, x)
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # the crash, between write and replace
        HistoryCache({str(tmp_path)!r}).write(CacheEntry("AAPL", "1d", True, new, covered=[(0, 2)]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    back = cache.read("AAPL", "1d", True)
    assert back is not None and back.covered == [(0, 1)]
    pd.testing.assert_frame_equal(back.frame, old, check_freq=False)
    leftovers = list(cache.path("AAPL", "1d", True).parent.glob(".*.tmp"))
    assert leftovers, "the killed writer should have left its temp file (and only that) behind"
    cache.write(CacheEntry("AAPL", "1d", True, _bars("2024-02-01", 3)))  # the next write still works
    assert len(cache.read("AAPL", "1d", True).frame) == 3


def test_unreadable_file_counts_as_absent(tmp_path: Path) -> None:
    cache = HistoryCache(tmp_path)
    path = cache.path("AAPL", "1d", True)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    assert cache.read("AAPL", "1d", True) is None
