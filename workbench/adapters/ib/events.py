"""Exactly-once fill and order-change delivery for the IB adapter, across reconnects.

Each resync makes ib_async replay history: every past execution's commission report fires
``commissionReportEvent`` again, and every open order's status fires ``orderStatusEvent`` again. This journal
remembers, for the Broker's whole life, which exec ids it delivered and the last (status, filled) it published
per order, so a replay is silent and only what really happened meanwhile (a fill during the outage, an order
that finished) goes out, once. The memory is bounded: IB reports executions of the last 7 days at most, so an exec
id older than :data:`RETENTION` is forgotten, and so is the mark of an order no resync reports any more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from workbench.adapters.base import EventFanout
from workbench.core.enums import OrderStatus
from workbench.core.models import Order

from .convert import order_key, progress, to_fill, utc

__all__ = ["Journal", "RETENTION"]

#: How long an exec id or an order's mark is remembered: longer than IB ever reports an execution (7 days).
RETENTION = timedelta(days=8)


class Journal:
    def __init__(self) -> None:
        self.fills = EventFanout()
        self.orders = EventFanout()
        self._delivered: dict[str, datetime] = {}  # exec id delivered (or seeded as history) -> its time
        self._marks: dict[str, tuple[OrderStatus, Decimal]] = {}  # order key -> last (status, filled) published
        self._marked_at: dict[str, datetime] = {}  # order key -> when it was last seen

    def __len__(self) -> int:
        """How many exec ids and order marks are remembered."""
        return len(self._delivered) + len(self._marks)

    def fill(self, fill: Any, publish: bool = True) -> None:
        """One execution whose commission is known; delivered unless its exec id already was."""
        exec_id = fill.execution.execId
        if exec_id in self._delivered:
            return
        self._delivered[exec_id] = utc(fill.time)
        if publish and self.fills.has_consumers:
            self.fills.publish(to_fill(fill))

    def order(self, trade: Any, make: Callable[[Any], Order], publish: bool = True) -> None:
        """Publish ``make(trade)`` if the order's status or filled quantity moved forward since last time."""
        key = order_key(trade)
        if key is None:
            return
        status, _, filled = progress(trade)
        self._marked_at[key] = datetime.now(UTC)
        last = self._marks.get(key)
        if last == (status, filled) or (last is not None and last[0] is not status and not last[0].can_become(status)):
            return  # unchanged (a resync repeats it) or stale (a late NEW after FILLED)
        self._marks[key] = (status, filled)
        if publish and self.orders.has_consumers:
            self.orders.publish(make(trade))

    def sweep(self, trades: Iterable[Any], fills: Iterable[Any], make: Callable[[Any], Order],
              publish: bool) -> None:
        """After a (re)connect: what changed while disconnected goes out once. ``publish=False`` (the first
        connect) only records what exists: the streams start "from now on"."""
        for trade in trades:
            self.order(trade, make, publish)
        # A fill whose commission report has not come yet is delivered when it comes (as a live one); on the
        # first connect every execution is history, whenever its report arrives.
        for fill in sorted((f for f in fills if f.commissionReport.execId or not publish), key=lambda f: utc(f.time)):
            self.fill(fill, publish)
        self.forget_before(datetime.now(UTC) - RETENTION)

    def forget_before(self, cutoff: datetime) -> None:
        """Forget exec ids executed before ``cutoff`` and orders not seen since (IB reports neither again)."""
        self._delivered = {k: t for k, t in self._delivered.items() if t >= cutoff}
        for key in [k for k, t in self._marked_at.items() if t < cutoff]:
            del self._marked_at[key]
            self._marks.pop(key, None)
