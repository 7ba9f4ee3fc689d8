"""Exchange sessions from exchange_calendars (holidays, early closes and DST included).

The library is imported on first use, so ``import workbench`` stays fast.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from .models import MarketClock

__all__ = ["MarketCalendar", "Session", "get_calendar"]

_cache: dict[str, MarketCalendar] = {}
_lock = threading.Lock()


class Session(NamedTuple):
    """One regular session: its date (exchange-local) and its open and close (UTC)."""

    date: date
    open: datetime
    close: datetime


class MarketCalendar:
    """Session times of one exchange (``XNYS`` by default: NYSE and the US equity market)."""

    def __init__(self, name: str = "XNYS") -> None:
        import exchange_calendars

        self.name = name
        self._cal: Any = exchange_calendars.get_calendar(name)

    def is_open(self, ts: datetime) -> bool:
        """Whether ``ts`` falls inside a regular session (the close minute itself is closed)."""
        return bool(self._cal.is_open_on_minute(_ts(ts)))

    def next_open(self, ts: datetime) -> datetime:
        """The first session open strictly after ``ts``."""
        return self._cal.next_open(_ts(ts)).to_pydatetime()

    def next_close(self, ts: datetime) -> datetime:
        """The close of the session ``ts`` is in, or of the next session if the market is closed."""
        return self._cal.next_close(_ts(ts)).to_pydatetime()

    def sessions(self, start: datetime | date, end: datetime | date) -> list[Session]:
        """Regular sessions dated ``start`` to ``end`` (inclusive, exchange-local dates), oldest first.

        Outside the calendar's range (about 20 years back to a year ahead) weekdays 09:30-16:00 New York
        stand in, so long synthetic histories still have sessions.
        """
        import pandas as pd

        first, last = pd.Timestamp(start).date(), pd.Timestamp(end).date()
        bounds = (self._cal.first_session.date(), self._cal.last_session.date())
        out: list[Session] = []
        if first < bounds[0]:
            out += _weekdays(first, min(last, bounds[0] - timedelta(days=1)))
        lo, hi = max(first, bounds[0]), min(last, bounds[1])
        if lo <= hi:
            frame = self._cal.schedule.loc[str(lo):str(hi), ["open", "close"]]
            out += [Session(label.date(), o.to_pydatetime(), c.to_pydatetime())
                    for label, o, c in zip(frame.index, frame["open"], frame["close"])]
        if last > bounds[1]:
            out += _weekdays(max(first, bounds[1] + timedelta(days=1)), last)
        return out

    def clock(self, ts: datetime) -> MarketClock:
        return MarketClock(ts=ts, is_open=self.is_open(ts), next_open=self.next_open(ts),
                           next_close=self.next_close(ts), calendar=self.name)


def get_calendar(name: str = "XNYS") -> MarketCalendar:
    """A shared :class:`MarketCalendar` (building one takes a fraction of a second)."""
    with _lock:
        if name not in _cache:
            _cache[name] = MarketCalendar(name)
        return _cache[name]


def _weekdays(first: date, last: date) -> list[Session]:
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [Session(d, datetime.combine(d, time(9, 30), ny).astimezone(UTC),
                    datetime.combine(d, time(16, 0), ny).astimezone(UTC)) for d in days if d.weekday() < 5]


def _ts(ts: datetime) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return stamp.tz_convert("UTC")
