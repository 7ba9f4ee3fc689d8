"""What one client connection is subscribed to (dropped with the connection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .history import BarSpec
from .messages_data import Bar
from .quotes import Stream

__all__ = ["Subscriptions", "HistorySub", "RealTimeSub", "PnlSub"]


@dataclass
class HistorySub:
    """reqHistoricalData(keepUpToDate=True): the bars' spec and the last bar sent."""

    spec: BarSpec
    last: Bar | None


@dataclass
class RealTimeSub:
    """reqRealTimeBars: 5-second bars from ``next_start`` on."""

    symbol: str
    what: str
    use_rth: bool
    next_start: datetime


@dataclass
class PnlSub:
    """reqPnL (symbol None) or reqPnLSingle: the last figures sent."""

    symbol: str | None
    last: tuple[Any, ...] | None = None


@dataclass
class Subscriptions:
    positions: bool = False
    account: bool = False
    account_multi: dict[int, str] = field(default_factory=dict)  # reqId -> account
    summary: dict[int, str] = field(default_factory=dict)
    market: dict[int, Stream] = field(default_factory=dict)
    history: dict[int, HistorySub] = field(default_factory=dict)
    realtime: dict[int, RealTimeSub] = field(default_factory=dict)
    pnl: dict[int, PnlSub] = field(default_factory=dict)
    scanners: dict[int, Any] = field(default_factory=dict)  # reqId -> scanner.ScannerSub
