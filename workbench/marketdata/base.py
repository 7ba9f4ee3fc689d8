"""The market-data provider interface that brokers (and the paper engine) price from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from workbench.core.models import Quote

__all__ = ["MarketDataProvider"]


class MarketDataProvider(ABC):
    """A source of bars and prices. Synchronous; ``blocking`` providers are called off the event loop.

    Every frame a provider returns is built by :mod:`workbench.core.frames` and labelled with
    ``attrs["source"]`` and ``attrs["simulated"]``; a provider never substitutes another's data.
    """

    #: Short name, also written to ``df.attrs["source"]``.
    name: str = "provider"
    #: True when the data is synthetic.
    simulated: bool = False
    #: True when calls do network or disk I/O (adapters then run them in a worker thread).
    blocking: bool = False

    @abstractmethod
    def get_history(
        self,
        symbol: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        days: int | None = None,
        interval: str = "1d",
        adjusted: bool = True,
    ) -> pd.DataFrame:
        """Bars for ``symbol`` in ``[start, end)`` in the history schema; raises SymbolNotFound for unknown symbols.

        ``end`` is exclusive (``end="2024-02-01"`` stops before 1 February's bar) and defaults to now;
        ``days`` counts back from ``end``. An empty range is an empty frame with the schema.
        """

    @abstractmethod
    def get_quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest price (``at`` a given time, where the provider can replay)."""

    def get_market_price(self, symbol: str, at: datetime | None = None) -> Decimal:
        """The latest trade price."""
        return self.get_quote(symbol, at).last

    def has_symbol(self, symbol: str) -> bool:
        """Whether the provider knows ``symbol`` (may do I/O)."""
        from workbench.core.errors import SymbolNotFound

        try:
            self.get_quote(symbol)
        except SymbolNotFound:
            return False
        return True


def resolve_range(
    start: datetime | str | None,
    end: datetime | str | None,
    days: int | None,
    now: datetime,
    intraday: bool,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Turn ``start``/``end``/``days`` into a UTC ``[start, end)`` pair: ``end`` is exclusive.

    ``end`` defaults to ``now``; ``days`` counts calendar days back from ``end`` (or forward from
    ``start`` when only ``start`` is given). With neither ``start`` nor ``days``: 365 days of daily
    bars, 5 days of intraday bars. Naive datetimes and date strings are read as UTC, so
    ``end="2024-02-01"`` stops before the bar of 1 February.
    """
    from workbench.core.errors import InvalidInput

    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days <= 0):
        raise InvalidInput(f"days must be a positive integer, got {days!r}", field="days")
    if start is not None and end is not None and days is not None:
        raise InvalidInput("give at most two of start, end and days", field="days")
    t_start = _nanoseconds(utc_timestamp(start, "start"), "start")
    t_end = _nanoseconds(utc_timestamp(end, "end"), "end")
    try:
        span = pd.Timedelta(days=days if days is not None else (5 if intraday else 365))
        if t_end is None:
            t_end = t_start + span if (t_start is not None and days is not None) else pd.Timestamp(now)
        if t_start is None:
            t_start = t_end - span
        t_start, t_end = t_start.as_unit("ns"), t_end.as_unit("ns")
    except (OverflowError, ValueError) as exc:  # pandas' OutOfBounds errors are ValueErrors
        raise InvalidInput(f"days={days!r} reaches outside the years 1678-2261 that timestamps cover",
                           field="days") from exc
    if t_start >= t_end:
        raise InvalidInput(f"start {t_start} must be before end {t_end}", field="start")
    return t_start, t_end


def utc_timestamp(value: datetime | str | None, field: str) -> pd.Timestamp | None:
    """A UTC Timestamp from a datetime, date or string (naive = UTC); InvalidInput naming ``field`` otherwise."""
    from workbench.core.errors import InvalidInput

    if value is None:
        return None
    if not isinstance(value, (str, date, np.datetime64)):  # a number is not a date (epoch seconds or ns?)
        raise InvalidInput(f"{field} must be a date or datetime such as '2024-01-31', got {value!r}", field=field)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{field} is not a date or datetime: {value!r}", field=field) from exc
    if stamp is pd.NaT:
        raise InvalidInput(f"{field} is not a date or datetime: {value!r}", field=field)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _nanoseconds(stamp: pd.Timestamp | None, field: str) -> pd.Timestamp | None:
    """Bars are stamped in epoch nanoseconds, which reach from 1678 to 2261."""
    from workbench.core.errors import InvalidInput

    try:
        return None if stamp is None else stamp.as_unit("ns")
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field} {stamp.date()} is outside the years 1678-2261 that bars cover",
                           field=field) from exc
