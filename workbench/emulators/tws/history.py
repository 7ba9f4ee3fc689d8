"""Historical bars as a gateway shapes them, from the engine's price provider.

- ``durationStr``: ``N D`` is N *sessions* ending at ``endDateTime`` (so ``1 D`` is the current or last
  session, not the last 24 hours); ``N W`` / ``N M`` / ``N Y`` are calendar spans; ``N S`` seconds.
- Intraday bars with ``formatDate=1`` are dated in exchange time with the zone name, as a gateway dates them
  (``20261118 09:30:00 US/Eastern``); ``formatDate=2`` gives epoch seconds, daily and longer bars ``YYYYMMDD``.
- Intraday bars are aligned to the New York clock as IB aligns them: ``1 hour`` bars start 09:30
  (a half-hour bar), then 10:00, 11:00 ... 15:00; sessions come from exchange_calendars (holidays and
  early closes included). The provider has regular-session data only, so ``useRTH=0`` returns the same.
- ``whatToShow``: TRADES and ADJUSTED_LAST carry volume, wap and trade count; MIDPOINT, BID and ASK are
  the mid / bid / ask path (volume -1); BID_ASK bars are (time-average bid, max ask, min bid, time-average
  ask), as IB defines them. The bid/ask spread is the sim provider's.
- Second bars are sampled from the provider's price path (which is linear within a minute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .codec import ib_time
from .messages_data import Bar

__all__ = ["HistoryError", "BarSpec", "parse_bar_spec", "request_range", "build_bars", "parse_end", "schedule",
           "head_timestamp", "align", "range_stamp", "NY", "TIME_ZONE"]

NY = "America/New_York"
NY_TZ = ZoneInfo(NY)
TIME_ZONE = "US/Eastern"  # the zone name IB gives US stocks (contract details' timeZoneId)
_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.I)
_BAR = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?)\s*$", re.I)
_SECOND_BARS = (1, 5, 10, 15, 30)
_MINUTE_BARS = (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 240, 480)
_SHOWS = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST")
TRADE_SIZE = 150  # average shares per trade, for trade counts
_MAX_SECOND_SAMPLES = 100_000
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
#: formatDate=1 intraday dates: exchange time with its zone, as a gateway sends them ("20261118 09:30:00 US/Eastern").
_LOCAL_FORMAT = f"%Y%m%d %H:%M:%S {TIME_ZONE}"
_MICROSECOND = timedelta(microseconds=1)


class HistoryError(ValueError):
    """Becomes error 162 (Historical Market Data Service error) for the request."""


@dataclass(frozen=True)
class BarSpec:
    """What one reqHistoricalData asks for. ``seconds`` is the bar length; ``unit`` is sec/min/day/week/month."""

    symbol: str
    seconds: int
    unit: str
    what: str
    format_date: int

    @property
    def intraday(self) -> bool:
        return self.unit in ("sec", "min")


def parse_bar_spec(symbol: str, bar_size: str, what: str, format_date: int) -> BarSpec:
    match = _BAR.match(bar_size or "")
    if not match:
        raise HistoryError(f"invalid bar size {bar_size!r}")
    n, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    unit = {"hour": "min"}.get(unit, unit)
    n = n * 60 if match.group(2).lower().startswith("hour") else n
    if unit == "sec" and n not in _SECOND_BARS or unit == "min" and n not in _MINUTE_BARS \
            or unit in ("day", "week", "month") and n != 1:
        raise HistoryError(f"invalid bar size {bar_size!r}")
    what = (what or "TRADES").upper()
    if what not in _SHOWS:
        raise HistoryError(f"whatToShow={what} is not available from the workbench emulator "
                           f"(use {', '.join(_SHOWS)} or SCHEDULE)")
    seconds = n if unit == "sec" else n * 60 if unit == "min" else 86_400
    return BarSpec(symbol, seconds, unit, what, format_date)


def parse_end(text: str, now: datetime) -> datetime:
    """``""`` = now; ``"YYYYMMDD HH:MM:SS[ TZ]"``, ``"YYYYMMDD-HH:MM:SS"`` (UTC) or ``"YYYYMMDD"``."""
    text = (text or "").strip()
    if not text:
        return now
    parts = text.replace("-", " ").split()
    try:
        stamp = datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S") if len(parts) > 1 else \
            datetime.strptime(parts[0], "%Y%m%d")
    except ValueError as exc:
        raise HistoryError(f"invalid end date {text!r}") from exc
    if len(parts) > 2:
        try:
            return pd.Timestamp(stamp).tz_localize(parts[2]).tz_convert(UTC).to_pydatetime()
        except Exception as exc:
            raise HistoryError(f"unknown time zone in {text!r}") from exc
    return stamp.replace(tzinfo=UTC)


def request_range(calendar: Any, duration: str, end: datetime, now: datetime) -> tuple[datetime, datetime, list[Any]]:
    """``(start, end, sessions)`` covered by ``durationStr`` ending at ``end`` (never after now)."""
    match = _DURATION.match(duration or "")
    if not match:
        raise HistoryError(f"invalid duration {duration!r}")
    n, unit = int(match.group(1)), match.group(2).upper()
    if n <= 0:
        raise HistoryError(f"invalid duration {duration!r}")
    end = min(end, now)
    end_day = pd.Timestamp(end).tz_convert(NY).date()
    if unit == "D":
        sessions = [s for s in calendar.sessions(end_day - timedelta(days=n * 7 // 5 + 10), end_day) if s.open < end]
        sessions = sessions[-n:]
        start = sessions[0].open if sessions else end
        return start, end, sessions
    if unit == "S":
        start = end - timedelta(seconds=n)
    else:
        offset = {"W": pd.DateOffset(weeks=n), "M": pd.DateOffset(months=n), "Y": pd.DateOffset(years=n)}[unit]
        start = (pd.Timestamp(end) - offset).to_pydatetime()
    start_day = pd.Timestamp(start).tz_convert(NY).date()
    sessions = [s for s in calendar.sessions(start_day, end_day) if s.close > start and s.open < end]
    return start, end, sessions


def build_bars(prices: Any, spec: BarSpec, start: datetime, end: datetime, sessions: list[Any]) -> list[Bar]:
    """The bars of ``spec`` in ``[start, end)``, restricted to ``sessions``."""
    if not sessions:
        return []
    if spec.unit == "sec":
        return _second_bars(prices, spec, start, end, sessions)
    if spec.unit == "min":
        minutes = spec.seconds // 60
        base = max(b for b in (30, 15, 10, 5, 1) if minutes % b == 0 and 30 % b == 0)
        frame = _in_sessions(prices.get_history(spec.symbol, start=start, end=end, interval=f"{base}m"), sessions)
        if base != minutes:
            frame = _clock_buckets(frame, minutes)
    else:
        first = sessions[0].date
        frame = prices.get_history(spec.symbol, start=pd.Timestamp(first, tz=UTC), end=end, interval="1d")
        dates = {pd.Timestamp(s.date, tz=UTC) for s in sessions}
        frame = frame[frame.index.isin(dates)]
        if spec.unit in ("week", "month"):
            frame = _calendar_buckets(frame, spec.unit)
    return _rows(frame, spec)


def bar_start(spec: BarSpec, ts: datetime) -> datetime:
    """Where the bar holding ``ts`` would start on the IB clock grid (for keepUpToDate windows)."""
    local = pd.Timestamp(ts).tz_convert(NY)
    if spec.unit in ("sec", "min"):
        step = pd.Timedelta(seconds=spec.seconds)
        midnight = local.normalize()
        return (midnight + ((local - midnight) // step) * step).tz_convert(UTC).to_pydatetime()
    return local.normalize().tz_convert(UTC).to_pydatetime()


def align(ts: datetime, seconds: int, up: bool = False) -> datetime:
    """``ts`` rounded down (or up) to a multiple of ``seconds`` since the epoch, exactly (a real clock has
    microseconds; float arithmetic on them drifts off the grid)."""
    step = seconds * 1_000_000
    micros = (ts - _UNIX) // _MICROSECOND
    return _UNIX + timedelta(microseconds=(-(-micros // step) if up else micros // step) * step)


def schedule(calendar: Any, sessions: list[Any], use_rth: bool) -> tuple[str, str, str, list[tuple[str, str, str]]]:
    """(start, end, timeZone, sessions) of a historicalSchedule answer, in New York time as IB sends it."""
    rows = []
    for s in sessions:
        local_open, local_close = pd.Timestamp(s.open).tz_convert(NY), pd.Timestamp(s.close).tz_convert(NY)
        if not use_rth:
            local_open = local_open.normalize() + pd.Timedelta(hours=4)
            local_close = local_close + pd.Timedelta(hours=4)
        rows.append((f"{local_open:%Y%m%d-%H:%M:%S}", f"{local_close:%Y%m%d-%H:%M:%S}", f"{s.date:%Y%m%d}"))
    start = rows[0][0] if rows else ""
    end = rows[-1][1] if rows else ""
    return start, end, TIME_ZONE, rows


def head_timestamp(first: datetime, format_date: int) -> str:
    return str(int(first.timestamp())) if format_date == 2 else ib_time(first)


# -- internals ------------------------------------------------------------------------------


def _in_sessions(frame: pd.DataFrame, sessions: list[Any]) -> pd.DataFrame:
    if frame.empty:
        return frame
    idx = frame.index.as_unit("ns").asi8
    opens = np.array([pd.Timestamp(s.open).value for s in sessions])
    closes = np.array([pd.Timestamp(s.close).value for s in sessions])
    pos = np.searchsorted(opens, idx, side="right") - 1
    keep = (pos >= 0) & (idx < closes[np.clip(pos, 0, None)])
    return frame[keep]


def _clock_buckets(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Aggregate bars into ``minutes``-long buckets of the New York clock, each labelled by its first bar."""
    if frame.empty:
        return frame
    local = frame.index.tz_convert(NY)
    offset = (local - local.normalize()) // pd.Timedelta(minutes=minutes)
    key = (local.normalize().as_unit("ns").asi8 // 60_000_000_000) + offset.to_numpy() * minutes
    _, first = np.unique(key, return_index=True)
    edges = np.append(first, len(frame))
    o, h, low, c, v = (frame[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
    out = pd.DataFrame({"open": o[first], "high": np.maximum.reduceat(h, first), "low": np.minimum.reduceat(low, first),
                        "close": c[edges[1:] - 1], "volume": np.add.reduceat(v, first)}, index=frame.index[first])
    return out


def _calendar_buckets(frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    periods = frame.index.tz_localize(None).to_period("W" if unit == "week" else "M")
    grouped = frame.groupby(periods, sort=True)
    out = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    out.index = grouped.apply(lambda g: g.index[0]).to_numpy()
    return out


def _half_spread(close: np.ndarray) -> np.ndarray:
    return np.maximum(0.01, np.round(close * 0.0001, 2))


def _rows(frame: pd.DataFrame, spec: BarSpec) -> list[Bar]:
    if frame.empty:
        return []
    o, h, low, c, v = (frame[col].to_numpy(dtype=float) for col in ("open", "high", "low", "close", "volume"))
    what = spec.what
    if what in ("TRADES", "ADJUSTED_LAST"):
        wap = np.round((h + low + c) / 3, 4)
        count = np.maximum(1, np.round(v / TRADE_SIZE)).astype(int)
    else:
        half = _half_spread(c)
        if what == "BID_ASK":
            mean = (o + h + low + c) / 4
            o, h, low, c = mean - half, h + half, low - half, mean + half
        elif what in ("BID", "ASK"):
            sign = -1 if what == "BID" else 1
            o, h, low, c = o + sign * half, h + sign * half, low + sign * half, c + sign * half
        v = np.full(len(o), -1.0)
        wap = np.full(len(o), -1.0)
        count = np.full(len(o), -1)
    o, h, low, c = (np.round(x, 4) for x in (o, h, low, c))
    dates = _dates(frame.index, spec)
    return [(d, o[i], h[i], low[i], c[i], v[i], wap[i], int(count[i])) for i, d in enumerate(dates)]


def _dates(index: pd.DatetimeIndex, spec: BarSpec) -> list[str]:
    if not spec.intraday:
        return list(index.strftime("%Y%m%d"))
    if spec.format_date == 2:
        return [str(x) for x in index.as_unit("ns").asi8 // 1_000_000_000]
    return list(index.tz_convert(NY).strftime(_LOCAL_FORMAT))


def range_stamp(ts: datetime, format_date: int) -> str:
    """historicalData's start / end: exchange time as a gateway writes it (UTC for formatDate=2)."""
    return ib_time(ts) if format_date == 2 else pd.Timestamp(ts).tz_convert(NY).strftime(_LOCAL_FORMAT)


def _second_bars(prices: Any, spec: BarSpec, start: datetime, end: datetime, sessions: list[Any]) -> list[Bar]:
    step = spec.seconds
    stamps: list[datetime] = []
    for s in sessions:
        t0 = align(max(s.open, start), step, up=True)
        t1 = min(s.close, end)
        n = int((t1 - t0).total_seconds() // step)
        stamps += [t0 + timedelta(seconds=i * step) for i in range(max(n, 0))]
    if len(stamps) * (step + 1) > _MAX_SECOND_SAMPLES:
        raise HistoryError(f"too many {step}-second bars requested ({len(stamps)}); ask for a shorter duration")
    minute_volume = {}
    rows = []
    for t in stamps:
        path = [float(prices.get_market_price(spec.symbol, t + timedelta(seconds=k))) for k in range(step + 1)]
        minute = t.replace(second=0, microsecond=0)
        if minute not in minute_volume:
            bars = prices.get_history(spec.symbol, start=minute, end=minute + timedelta(minutes=1), interval="1m")
            minute_volume[minute] = float(bars["volume"].iloc[0]) if len(bars) else 0.0
        rows.append((path[0], max(path), min(path), path[-1], round(minute_volume[minute] * step / 60)))
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"],
                         index=pd.DatetimeIndex(stamps, tz=UTC) if stamps else pd.DatetimeIndex([], tz=UTC))
    return _rows(frame, spec)
