"""Exchange sessions from exchange_calendars (holidays, early closes and DST included).

The library is imported on first use, so ``import workbench`` stays fast.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from .models import MarketClock

__all__ = ["MarketCalendar", "get_calendar"]

_cache: dict[str, MarketCalendar] = {}
_lock = threading.Lock()


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

    def clock(self, ts: datetime) -> MarketClock:
        return MarketClock(ts=ts, is_open=self.is_open(ts), next_open=self.next_open(ts),
                           next_close=self.next_close(ts), calendar=self.name)


def get_calendar(name: str = "XNYS") -> MarketCalendar:
    """A shared :class:`MarketCalendar` (building one takes a fraction of a second)."""
    with _lock:
        if name not in _cache:
            _cache[name] = MarketCalendar(name)
        return _cache[name]


def _ts(ts: datetime) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return stamp.tz_convert("UTC")
