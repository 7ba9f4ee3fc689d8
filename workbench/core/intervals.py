"""Bar intervals, spelled as yfinance spells them: 1m 2m 5m 15m 30m 60m 90m 1h 1d 1wk 1mo 3mo."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput, shown

__all__ = ["Interval", "parse_interval"]

_PATTERN = re.compile(r"^\s*(\d+)\s*(m|min|mins|minute|minutes|h|hour|hours|d|day|days|wk|w|week|mo|month)\s*$", re.I)
_UNIT = {"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m", "h": "h", "hour": "h", "hours": "h",
         "d": "d", "day": "d", "days": "d", "wk": "wk", "w": "wk", "week": "wk", "mo": "mo", "month": "mo"}


@dataclass(frozen=True, slots=True)
class Interval:
    """A bar size. ``minutes`` is set for intraday bars; ``rule`` is the pandas resample rule."""

    name: str
    minutes: int | None
    rule: str

    @property
    def intraday(self) -> bool:
        return self.minutes is not None


def parse_interval(text: str | Interval) -> Interval:
    """Parse ``"5m"``, ``"1h"``, ``"1d"``, ``"1wk"``, ``"1mo"`` (and "5 mins", "1 day"...).

    Raises :class:`InvalidInput` naming ``interval`` for anything else.
    """
    if isinstance(text, Interval):
        return text
    match = _PATTERN.match(str(text))
    if not match:
        raise InvalidInput(f"unknown interval {shown(text)}; use e.g. 1m, 5m, 1h, 1d, 1wk, 1mo", field="interval")
    n, unit = int(match.group(1)), _UNIT[match.group(2).lower()]
    if n <= 0:
        raise InvalidInput(f"interval must be positive, got {shown(text)}", field="interval")
    if unit == "h":
        n, unit = n * 60, "m"
    if unit == "m":
        if 1440 % n and n not in (90,):
            raise InvalidInput(f"intraday interval must divide a day, got {shown(text)}", field="interval")
        return Interval(f"{n}m", n, f"{n}min")
    if unit == "d":
        if n != 1:
            raise InvalidInput(f"only 1d daily bars are supported, got {shown(text)}", field="interval")
        return Interval("1d", None, "D")
    if unit == "wk":
        return Interval(f"{n}wk", None, f"{n}W-MON")
    return Interval(f"{n}mo", None, f"{n}MS")
