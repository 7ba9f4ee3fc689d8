"""On-disk Parquet history cache: one dataset per (symbol, interval, adjusted), one events record per symbol.

Layout (hive-partitioned, so pandas, pyarrow or DuckDB read the whole store at once)::

    <root>/interval=1d/adjusted=true/symbol=AAPL/data.parquet
    <root>/_events/symbol=AAPL/events.parquet

Each bars file holds ``ts`` (UTC) and ``open high low close volume`` (float64). Its Parquet metadata
(key ``workbench``) records what was fetched: ``covered`` (final ``[start, end)`` ranges, epoch ns),
``provisional`` (a tail whose last bar may still change, with when it was fetched), ``fetched_at``
and per-dataset extras (e.g. which dividends/splits an adjusted series reflects).

The events record holds a symbol's split and dividend history (``ts`` = ex-date, ``split`` ratio,
``dividend`` per share as traded), shared by all of its datasets, with the ranges it is complete
for and when it was last checked. The ``_`` prefix keeps it out of ``pd.read_parquet(root)``.

Every file is written to a temporary file in the same folder and ``os.replace``-d into place: a crash
mid-write leaves the old file intact, never a torn one. A file that cannot be read (truncated,
corrupted, foreign) counts as absent, so the provider fetches it again and replaces it.

    # read everything cached, with pandas or DuckDB
    pd.read_parquet("~/.workbench/cache/yfinance")
    duckdb.sql("SELECT * FROM read_parquet('~/.workbench/cache/yfinance/interval=*/*/*/*.parquet', "
               "hive_partitioning=1)")
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from workbench.core.frames import HISTORY_COLUMNS, history_frame
from workbench.core.log import get_logger

__all__ = ["HistoryCache", "CacheEntry", "EventsRecord", "CacheReadError", "Ranges", "EVENT_COLUMNS"]

log = get_logger(__name__)

_META_KEY = b"workbench"
_FILE = "data.parquet"
_EVENTS_DIR = "_events"
_EVENTS_FILE = "events.parquet"
EVENT_COLUMNS = ("split", "dividend")

Ranges = list[tuple[int, int]]  # sorted, non-overlapping [start, end) in epoch ns


class CacheReadError(Exception):
    """Cached files could not be read together (internal: the provider then reads them one by one)."""


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


@dataclass(frozen=True)
class EventsRecord:
    """A symbol's split and dividend history, complete over ``covered``; ``checked_at`` = last look up to now.

    ``frame``: index ``ts`` (ex-date, labelled like daily bars: the exchange-local date at 00:00 UTC),
    float64 ``split`` (ratio, e.g. 4.0; 0 = none) and ``dividend`` (per share as traded; 0 = none).
    Treat it as immutable: it may be shared by every reader in the process.
    """

    symbol: str
    frame: pd.DataFrame
    covered: Ranges = field(default_factory=list)
    checked_at: int = 0
    tz: str | None = None  # the exchange's timezone, for the local date of intraday bars

    def meta(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "covered": self.covered, "checked_at": self.checked_at, "tz": self.tz}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class HistoryCache:
    """The Parquet store under ``root``. Thread-safe for concurrent use within one process."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._lock = threading.Lock()
        self._events_memo: dict[str, tuple[tuple[int, int, int], EventsRecord]] = {}

    def path(self, symbol: str, interval: str, adjusted: bool) -> Path:
        # Quoted, so a symbol such as BTC/USD stays one folder (pyarrow unquotes hive values when reading).
        return (self.root / f"interval={interval}" / f"adjusted={'true' if adjusted else 'false'}"
                / f"symbol={quote(symbol, safe='')}" / _FILE)

    def events_path(self, symbol: str) -> Path:
        return self.root / _EVENTS_DIR / f"symbol={quote(symbol, safe='')}" / _EVENTS_FILE

    # -- bars ---------------------------------------------------------------------------------

    def read(self, symbol: str, interval: str, adjusted: bool) -> CacheEntry | None:
        """The cached entry, or None if nothing (or something unreadable) is there."""
        path = self.path(symbol, interval, adjusted)
        if not path.is_file():
            return None
        try:
            table = _read_table(path)
            meta = _decode_meta(table.schema.metadata)
            # Written sorted and unique: the columns go straight into a frame (only checked, not re-validated).
            index = pd.DatetimeIndex(table.column("ts").to_numpy(), name="ts").tz_localize("UTC")
            values = np.column_stack([table.column(c).to_numpy() for c in HISTORY_COLUMNS]).astype("float64")
            frame = pd.DataFrame(values, index=index, columns=list(HISTORY_COLUMNS))  # one block: fast to slice
            if not (index.is_monotonic_increasing and index.is_unique):
                raise ValueError("timestamps are not sorted and unique")
            return CacheEntry(symbol, interval, adjusted, frame,
                              covered=[(int(a), int(b)) for a, b in meta.get("covered", [])],
                              provisional=tuple(int(x) for x in meta["provisional"])  # type: ignore[arg-type]
                              if meta.get("provisional") else None,
                              fetched_at=int(meta.get("fetched_at", 0)), extra=dict(meta.get("extra", {})))
        except Exception as exc:  # truncated, corrupted or foreign: absent, and the next write replaces it
            log.warning("cache file %s is unreadable (%s: %s); fetching it again", path, type(exc).__name__, exc)
            return None

    def read_meta(self, symbol: str, interval: str, adjusted: bool) -> dict[str, Any] | None:
        """Only the metadata (the Parquet footer, no bars), or None."""
        import pyarrow.parquet as pq

        try:
            return _decode_meta(pq.read_schema(self.path(symbol, interval, adjusted)).metadata) or None
        except Exception:
            return None

    def write(self, entry: CacheEntry) -> None:
        """Atomically replace the dataset with ``entry`` (OSError / pyarrow errors propagate)."""
        import pyarrow as pa

        frame = entry.frame
        table = pa.table({"ts": pa.array(frame.index.as_unit("ns"), type=pa.timestamp("ns", tz="UTC")),
                          **{c: pa.array(frame[c].to_numpy(), type=pa.float64()) for c in HISTORY_COLUMNS}})
        self._write_table(self.path(entry.symbol, entry.interval, entry.adjusted), table, entry.meta())

    def read_many(self, symbols: Sequence[str], interval: str, adjusted: bool) -> pd.DataFrame:
        """Cached bars of many symbols as one long frame indexed by (symbol, ts).

        Raises :class:`CacheReadError` when a file cannot be read (the caller reads them one by one).
        """
        import pyarrow.dataset as ds

        paths = [str(p) for s in symbols if (p := self.path(s, interval, adjusted)).is_file()]
        if not paths:
            empty = history_frame([], [], [], [], [], [])
            return empty.set_index(pd.Index([], name="symbol", dtype="str"), append=True).swaplevel()
        try:
            dataset = ds.dataset(paths, format="parquet", partitioning=ds.partitioning(flavor="hive"),
                                 partition_base_dir=str(self.root))
            df = dataset.to_table(columns=["symbol", "ts", *HISTORY_COLUMNS]).to_pandas()
        except Exception as exc:
            raise CacheReadError(f"{type(exc).__name__}: {exc}") from exc
        index = pd.MultiIndex.from_arrays([df.pop("symbol").astype("str").array, df.pop("ts")], names=["symbol", "ts"])
        return df.set_axis(index).sort_index()

    # -- events -------------------------------------------------------------------------------

    def read_events(self, symbol: str) -> EventsRecord | None:
        """The symbol's events record, or None (memoised until the file changes)."""
        path = self.events_path(symbol)
        key = _stat_key(path)
        if key is None:
            return None
        memo = self._events_memo.get(symbol)
        if memo is not None and memo[0] == key:
            return memo[1]
        try:
            table = _read_table(path)
            meta = _decode_meta(table.schema.metadata)
            index = pd.DatetimeIndex(table.column("ts").to_numpy(), name="ts").tz_localize("UTC")
            frame = pd.DataFrame({c: table.column(c).to_numpy().astype("float64") for c in EVENT_COLUMNS},
                                 index=index)
            record = EventsRecord(symbol, frame, [(int(a), int(b)) for a, b in meta.get("covered", [])],
                                  int(meta.get("checked_at", 0)), meta.get("tz"))
        except Exception as exc:
            log.warning("cache file %s is unreadable (%s: %s); fetching it again", path, type(exc).__name__, exc)
            return None
        self._events_memo[symbol] = (key, record)
        return record

    def write_events(self, record: EventsRecord) -> None:
        """Atomically replace the symbol's events record."""
        import pyarrow as pa

        frame = record.frame
        table = pa.table({"ts": pa.array(frame.index.as_unit("ns"), type=pa.timestamp("ns", tz="UTC")),
                          **{c: pa.array(frame[c].to_numpy(), type=pa.float64()) for c in EVENT_COLUMNS}})
        path = self.events_path(record.symbol)
        self._write_table(path, table, record.meta())
        if (key := _stat_key(path)) is not None:
            self._events_memo[record.symbol] = (key, record)

    # -- listing and clearing -----------------------------------------------------------------

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
        """Delete cached datasets (all, or those of ``symbol`` and/or ``interval``); returns how many.

        Without ``interval``, the symbol's (or every) events record goes too.
        """
        count = 0
        folder_name = f"symbol={quote(symbol, safe='') if symbol else '*'}"
        for folder in list(self.root.glob(f"interval={interval or '*'}/adjusted=*/{folder_name}")):
            if (folder / _FILE).is_file():
                count += 1
            shutil.rmtree(folder, ignore_errors=True)
        if interval is None:
            for folder in list(self.root.glob(f"{_EVENTS_DIR}/{folder_name}")):
                shutil.rmtree(folder, ignore_errors=True)
            self._events_memo.clear()
        return count

    def _write_table(self, path: Path, table: Any, meta: dict[str, Any]) -> None:
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            with self._lock:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def _read_table(path: Path) -> Any:
    import pyarrow.parquet as pq

    # ParquetFile.read skips the dataset machinery of pq.read_table: about 5x faster for one small file.
    with pq.ParquetFile(path) as file:
        return file.read(use_threads=False)


def _decode_meta(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    raw = (metadata or {}).get(_META_KEY)
    meta = json.loads(raw) if raw else {}
    if not isinstance(meta, dict):
        raise ValueError("workbench metadata is not an object")
    return meta
