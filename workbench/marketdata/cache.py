"""On-disk Parquet history cache: one dataset per (symbol, interval, adjusted).

Layout (hive-partitioned, so pandas, pyarrow or DuckDB read the whole store at once)::

    <root>/interval=1d/adjusted=true/symbol=AAPL/data.parquet

Each file holds ``ts`` (UTC) and ``open high low close volume`` (float64). Its Parquet metadata
(key ``workbench``) records what was fetched: ``covered`` (final ``[start, end)`` ranges, epoch ns),
``provisional`` (a tail whose last bar may still change, with when it was fetched), ``fetched_at``
and per-symbol extras (e.g. the split history). Data and metadata are one file, written to a
temporary file in the same folder and ``os.replace``-d into place: a crash mid-write leaves the old
file intact, never a torn one.

    # read everything cached, with pandas or DuckDB
    pd.read_parquet("~/.workbench/cache/yfinance")
    duckdb.sql("SELECT * FROM read_parquet('~/.workbench/cache/yfinance/**/*.parquet', hive_partitioning=1)")
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from urllib.parse import quote, unquote
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.frames import HISTORY_COLUMNS, history_frame

__all__ = ["HistoryCache", "CacheEntry", "Ranges"]

_META_KEY = b"workbench"
_FILE = "data.parquet"

Ranges = list[tuple[int, int]]  # sorted, non-overlapping [start, end) in epoch ns


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sort and merge overlapping or touching ranges."""
    out: Ranges = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract_ranges(want: tuple[int, int], have: Sequence[tuple[int, int]]) -> Ranges:
    """The parts of ``want`` not covered by ``have``."""
    start, end = want
    missing: Ranges = []
    for h_start, h_end in merge_ranges(have):
        if h_end <= start or h_start >= end:
            continue
        if h_start > start:
            missing.append((start, h_start))
        start = max(start, h_end)
    if start < end:
        missing.append((start, end))
    return missing


@dataclass
class CacheEntry:
    """One cached dataset: its bars and what is known about them."""

    symbol: str
    interval: str
    adjusted: bool
    frame: pd.DataFrame
    covered: Ranges = field(default_factory=list)
    provisional: tuple[int, int, int] | None = None  # start, end, fetched_at (ns)
    fetched_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "interval": self.interval, "adjusted": self.adjusted,
                "covered": self.covered, "provisional": self.provisional, "fetched_at": self.fetched_at,
                "extra": self.extra}


class HistoryCache:
    """The Parquet store under ``root``. Thread-safe for concurrent use within one process."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._lock = threading.Lock()

    def path(self, symbol: str, interval: str, adjusted: bool) -> Path:
        # Quoted, so a symbol such as BTC/USD stays one folder (pyarrow unquotes hive values when reading).
        return (self.root / f"interval={interval}" / f"adjusted={'true' if adjusted else 'false'}"
                / f"symbol={quote(symbol, safe='')}" / _FILE)

    def read(self, symbol: str, interval: str, adjusted: bool) -> CacheEntry | None:
        """The cached entry, or None if nothing (or something unreadable) is there."""
        import pyarrow.parquet as pq

        path = self.path(symbol, interval, adjusted)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
        except Exception:  # unreadable files are treated as absent; the next write replaces them
            return None
        raw = (table.schema.metadata or {}).get(_META_KEY)
        meta = json.loads(raw) if raw else {}
        # Files are written sorted and unique, so the columns go straight into a frame (no re-validation).
        index = pd.DatetimeIndex(table.column("ts").to_numpy(), name="ts").tz_localize("UTC")
        frame = pd.DataFrame({c: table.column(c).to_numpy() for c in HISTORY_COLUMNS}, index=index, copy=False)
        return CacheEntry(symbol, interval, adjusted, frame,
                          covered=[tuple(r) for r in meta.get("covered", [])],  # type: ignore[misc]
                          provisional=tuple(meta["provisional"]) if meta.get("provisional") else None,  # type: ignore[arg-type]
                          fetched_at=int(meta.get("fetched_at", 0)), extra=meta.get("extra", {}))

    def read_meta(self, symbol: str, interval: str, adjusted: bool) -> dict[str, Any] | None:
        """Only the metadata (the Parquet footer, no bars), or None."""
        import pyarrow.parquet as pq

        path = self.path(symbol, interval, adjusted)
        try:
            raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
        except Exception:
            return None
        return json.loads(raw) if raw else None

    def write(self, entry: CacheEntry) -> None:
        """Atomically replace the dataset with ``entry``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(entry.symbol, entry.interval, entry.adjusted)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = entry.frame
        table = pa.table({"ts": pa.array(frame.index.as_unit("ns"), type=pa.timestamp("ns", tz="UTC")),
                          **{c: pa.array(frame[c].to_numpy(), type=pa.float64()) for c in HISTORY_COLUMNS}})
        table = table.replace_schema_metadata({_META_KEY: json.dumps(entry.meta()).encode()})
        tmp = path.with_name(f".{_FILE}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            with self._lock:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def read_many(self, symbols: Sequence[str], interval: str, adjusted: bool) -> pd.DataFrame:
        """Cached bars of many symbols as one long frame indexed by (symbol, ts)."""
        import pyarrow.dataset as ds

        paths = [str(p) for s in symbols if (p := self.path(s, interval, adjusted)).is_file()]
        if not paths:
            empty = history_frame([], [], [], [], [], [])
            return empty.set_index(pd.Index([], name="symbol", dtype="str"), append=True).swaplevel()
        dataset = ds.dataset(paths, format="parquet", partitioning=ds.partitioning(flavor="hive"),
                             partition_base_dir=str(self.root))
        df = dataset.to_table(columns=["symbol", "ts", *HISTORY_COLUMNS]).to_pandas()
        df["symbol"] = df["symbol"].astype("str")
        return df.set_index(["symbol", "ts"]).sort_index()

    def entries(self) -> pd.DataFrame:
        """What is cached: one row per dataset."""
        rows = []
        for path in sorted(self.root.glob(f"interval=*/adjusted=*/symbol=*/{_FILE}")):
            interval = path.parts[-4].split("=", 1)[1]
            adjusted = path.parts[-3].split("=", 1)[1] == "true"
            symbol = unquote(path.parts[-2].split("=", 1)[1])
            entry = self.read(symbol, interval, adjusted)
            if entry is None:
                continue
            idx = entry.frame.index
            rows.append({"symbol": symbol, "interval": interval, "adjusted": adjusted, "bars": len(idx),
                         "first": idx.min() if len(idx) else pd.NaT, "last": idx.max() if len(idx) else pd.NaT,
                         "fetched_at": pd.Timestamp(entry.fetched_at, tz="UTC") if entry.fetched_at else pd.NaT,
                         "bytes": path.stat().st_size})
        cols = ["symbol", "interval", "adjusted", "bars", "first", "last", "fetched_at", "bytes"]
        return pd.DataFrame(rows, columns=cols)

    def clear(self, symbol: str | None = None, interval: str | None = None) -> int:
        """Delete cached datasets (all, or those of ``symbol`` and/or ``interval``); returns how many."""
        count = 0
        pattern = f"interval={interval or '*'}/adjusted=*/symbol={quote(symbol, safe='') if symbol else '*'}"
        for folder in list(self.root.glob(pattern)):
            if (folder / _FILE).is_file():
                count += 1
            shutil.rmtree(folder, ignore_errors=True)
        return count
