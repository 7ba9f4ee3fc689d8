"""A symbol's split and dividend history: merging what Yahoo reported, split factors, and staleness.

Pure functions over :class:`~workbench.marketdata.cache.EventsRecord` (no I/O). Timestamps are epoch ns;
event dates are labelled like daily bars (the exchange-local date at 00:00 UTC).

Why the record exists: prices as traded are Yahoo's split-adjusted prices times the splits that came
after each bar (so the whole split history after the first bar is needed), and an adjusted series goes
stale when a dividend or split appears after it was fetched (Yahoo rescales all earlier bars). One record
per symbol serves every interval, is kept in the cache, and is re-checked at most once a (UTC) day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .cache import EVENT_COLUMNS, EventsRecord, Ranges, merge_ranges, subtract_ranges

__all__ = ["EventBatch", "empty_events", "gaps", "merge", "split_factor", "basis", "stale", "local_days", "day_of"]

_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class EventBatch:
    """What one daily fetch of ``[start, end)`` reported: every event in that range (Yahoo's amounts)."""

    start: int
    end: int
    frame: pd.DataFrame  # index ts, columns split, dividend (dividends split-adjusted as of the fetch)
    tz: str | None = None


def day_of(ns: int) -> int:
    """Start of the UTC day containing ``ns``."""
    return ns - ns % _DAY_NS


def empty_events() -> pd.DataFrame:
    index = pd.DatetimeIndex([], name="ts", dtype="datetime64[ns, UTC]")
    return pd.DataFrame({c: np.array([], dtype="float64") for c in EVENT_COLUMNS}, index=index)


def effective_coverage(record: EventsRecord | None, now: int) -> Ranges:
    """Where the record can be trusted at ``now``.

    Checked today: complete up to now. Otherwise complete only up to the start of the day it was last
    checked (an event of that day may have appeared after the check), so the daily re-check repeats it.
    """
    if record is None:
        return []
    cut = day_of(record.checked_at)
    if record.checked_at and day_of(now) == cut:
        return merge_ranges([*record.covered, (record.checked_at, now)])
    return merge_ranges([(a, min(b, cut)) for a, b in record.covered if a < cut])


def gaps(record: EventsRecord | None, since: int, now: int) -> Ranges:
    """The parts of ``[since, now)`` the record must be (re-)fetched for."""
    return subtract_ranges((since, now), effective_coverage(record, now)) if since < now else []


def merge(record: EventsRecord | None, symbol: str, batches: Sequence[EventBatch], now: int) -> EventsRecord | None:
    """The record with ``batches`` merged in (each replaces the events of its range).

    A batch that ends before ``now`` is kept only when the record (with the other batches) covers the time
    from its end until now: its dividends are then turned into amounts as traded, which needs every later
    split. Returns the input unchanged when nothing was kept.
    """
    have = effective_coverage(record, now)
    kept: list[EventBatch] = []
    for batch in sorted(batches, key=lambda b: b.end, reverse=True):
        if batch.end >= now or not subtract_ranges((batch.end, now), have):
            kept.append(batch)
            have = merge_ranges([*have, (batch.start, min(batch.end, now))])
    if not kept:
        return record
    frame = record.frame if record is not None else empty_events()
    parts = []
    for batch in kept:  # each batch is the whole truth about its range
        frame = frame[(frame.index.asi8 < batch.start) | (frame.index.asi8 >= batch.end)]
        ts = batch.frame.index.asi8
        parts.append(batch.frame[(ts >= batch.start) & (ts < batch.end) & (batch.frame.to_numpy() != 0).any(axis=1)])
    new = pd.concat(parts).sort_index()
    new = new[~new.index.duplicated(keep="last")]
    if len(new):  # Yahoo's dividend amounts are split-adjusted as of the fetch; keep them as traded (invariant)
        splits = pd.concat([frame, new]).sort_index()["split"]
        factor = split_factor_series(splits[splits > 0], new.index.asi8)
        new = new.assign(dividend=np.round(new["dividend"].to_numpy() * factor, 10))
    combined = pd.concat([frame, new]).sort_index() if len(new) else frame
    covered = list(record.covered) if record is not None else []
    covered += [(b.start, min(b.end, now)) for b in kept]
    reached_now = any(b.end >= now for b in kept)
    checked_at = now if reached_now else (record.checked_at if record is not None else 0)
    tz = next((b.tz for b in kept if b.tz), None) or (record.tz if record is not None else None)
    return EventsRecord(symbol, combined, merge_ranges(covered), checked_at, tz)


def split_factor_series(splits: pd.Series, labels: np.ndarray) -> np.ndarray:
    """Per label, the product of the split ratios dated after it (1.0 when none)."""
    factor = np.ones(len(labels))
    for day, ratio in zip(splits.index.asi8, splits.to_numpy(), strict=True):
        factor[labels < day] *= ratio
    return factor


def split_factor(record: EventsRecord | None, labels: np.ndarray) -> np.ndarray:
    """Factor that turns Yahoo's split-adjusted prices at ``labels`` (local-date labels) back into as traded."""
    if record is None or record.frame.empty:
        return np.ones(len(labels))
    frame = record.frame
    return split_factor_series(frame.loc[frame["split"] > 0, "split"], labels)


def local_days(index: pd.DatetimeIndex, tz: str | None) -> np.ndarray:
    """The exchange-local date of each UTC timestamp, labelled at 00:00 UTC (epoch ns)."""
    local = index.tz_convert(tz) if tz else index
    return local.tz_localize(None).normalize().as_unit("ns").asi8


def basis(record: EventsRecord | None, day: int, intraday: bool) -> list[list[float]]:
    """The events dated ``day`` or later that an adjusted series depends on, as ``[ts, split, dividend]``.

    Intraday bars are split-adjusted only (Yahoo has no adjusted close for them), so dividends do not count.
    """
    if record is None or not len(record.frame) or record.frame.index.asi8[-1] < day:
        return []  # the common case, answered without pandas indexing
    frame = record.frame[record.frame.index.asi8 >= day]
    if intraday:
        frame = frame[frame["split"] > 0].assign(dividend=0.0)
    return [[int(ts), float(s), float(d)] for ts, s, d in
            zip(frame.index.asi8, frame["split"], frame["dividend"], strict=True) if s or d]


def stale(record: EventsRecord | None, known: dict[str, Any], now: int, intraday: bool) -> bool | None:
    """Whether an adjusted series with basis ``known`` is out of date: True, False, or None (check first).

    ``known`` = ``{"day", "at", "events"}``: the series was fetched at ``at`` and reflects ``events`` (those
    dated ``day`` or later; earlier ones Yahoo had applied already). A series fetched today counts as
    checked today, unless the record already knows of an event it lacks.
    """
    day = int(known["day"])
    seen = basis(record, day, intraday)
    listed = known.get("events", [])
    if not gaps(record, day, now):
        return seen != listed
    if any(event not in listed for event in seen):
        return True
    return False if day_of(int(known.get("at", 0))) == day_of(now) else None


def new_splits(record: EventsRecord | None, known: dict[str, Any]) -> list[tuple[int, float]]:
    """Splits in the record that the basis ``known`` did not include (for rescaling intraday series)."""
    seen = {int(e[0]) for e in known.get("events", []) if e[1]}
    day = int(known["day"])
    if record is None:
        return []
    splits = record.frame[(record.frame["split"] > 0) & (record.frame.index.asi8 >= day)]["split"]
    return [(int(ts), float(r)) for ts, r in zip(splits.index.asi8, splits, strict=True) if int(ts) not in seen]
