"""Market data and history from the engine's price provider, in TWS terms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from .codec import ib_time

_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.I)
_BAR = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?)\s*$", re.I)
_SPAN = {"S": timedelta(seconds=1), "D": timedelta(days=1), "W": timedelta(weeks=1), "M": timedelta(days=30),
         "Y": timedelta(days=365)}


class HistoryError(ValueError):
    """Becomes error 162 for the request."""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text or "")
    if not match:
        raise HistoryError(f"invalid duration {text!r}")
    return int(match.group(1)) * _SPAN[match.group(2).upper()]


def parse_bar_size(text: str) -> str:
    """IB bar size -> workbench interval ("5 mins" -> "5m", "1 hour" -> "60m", "1 day" -> "1d")."""
    match = _BAR.match(text or "")
    if not match:
        raise HistoryError(f"invalid bar size {text!r}")
    n, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    if unit == "sec":
        raise HistoryError("second bars are not available from the emulator")
    return {"min": f"{n}m", "hour": f"{n * 60}m", "day": f"{n}d", "week": f"{n}wk", "month": f"{n}mo"}[unit]


def parse_end(text: str, now: datetime) -> datetime:
    """``""`` = now; ``"YYYYMMDD HH:MM:SS[ TZ]"`` or ``"YYYYMMDD-HH:MM:SS"`` (UTC)."""
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
            tz: Any = pd.Timestamp(stamp).tz_localize(parts[2]).tzinfo
        except Exception:
            tz = UTC
        return stamp.replace(tzinfo=tz).astimezone(UTC)
    return stamp.replace(tzinfo=UTC)


def bars(prices: Any, symbol: str, end_text: str, duration: str, bar_size: str, format_date: int,
         now: datetime) -> tuple[str, str, list[tuple[Any, ...]]]:
    """(startDateStr, endDateStr, [(date, open, high, low, close, volume)...]) for historicalData."""
    interval = parse_bar_size(bar_size)
    end = parse_end(end_text, now)
    start = end - parse_duration(duration)
    try:
        frame = prices.get_history(symbol, start=start, end=end, interval=interval)
    except Exception as exc:
        raise HistoryError(str(exc)) from exc
    intraday = interval.endswith("m") and not interval.endswith("mo")
    out = []
    for ts, row in frame.iterrows():
        stamp = pd.Timestamp(ts).tz_convert("UTC")
        if not intraday:
            date = stamp.strftime("%Y%m%d")
        elif format_date == 2:
            date = str(int(stamp.timestamp()))
        else:
            date = ib_time(stamp.to_pydatetime())
        out.append((date, row["open"], row["high"], row["low"], row["close"], int(row["volume"])))
    return ib_time(start), ib_time(end), out


def snapshot(prices: Any, symbol: str, now: datetime) -> dict[str, Any]:
    """bid, ask, last, close (previous session), open/high/low and volume of today's session."""
    q = prices.get_quote(symbol, now)
    out: dict[str, Any] = {"bid": q.bid or q.last, "ask": q.ask or q.last, "last": q.last, "close": q.last,
                           "volume": 0}
    try:
        daily = prices.get_history(symbol, start=now - timedelta(days=10), end=now, interval="1d")
        today = pd.Timestamp(now).tz_convert("UTC").normalize()
        before = daily[daily.index < today]
        if len(before):
            out["close"] = Decimal(repr(round(float(before["close"].iloc[-1]), 4)))
        current = daily[daily.index >= today]
        if len(current):
            row = current.iloc[-1]
            out.update(open=row["open"], high=row["high"], low=row["low"], volume=int(row["volume"]))
    except Exception:
        pass
    return out
