"""Exactly-once fill and order-change delivery for the IB adapter, across reconnects.

Each resync makes ib_async replay history: every past execution's commission report fires
``commissionReportEvent`` again, and every open order's status fires ``orderStatusEvent`` again. This journal
remembers, for the Broker's whole life, which exec ids it delivered and the last (status, filled) it published
per order, so a replay is silent and only what really happened meanwhile (a fill during the outage, an order
that finished) goes out, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from workbench.adapters.base import EventFanout
from workbench.core.enums import OrderStatus
from workbench.core.models import Order

from .convert import order_key, progress, to_fill, utc

__all__ = ["Journal"]


class Journal:
    def __init__(self) -> None:
        self.fills = EventFanout()
        self.orders = EventFanout()
        self._delivered: set[str] = set()  # exec ids delivered (or seeded as history)
        self._marks: dict[str, tuple[OrderStatus, Decimal]] = {}  # order key -> last (status, filled) published

    def fill(self, fill: Any, publish: bool = True) -> None:
        """One execution whose commission is known; delivered unless its exec id already was."""
        exec_id = fill.execution.execId
        if exec_id in self._delivered:
            return
        self._delivered.add(exec_id)
        if publish and self.fills.has_consumers:
            self.fills.publish(to_fill(fill))

    def order(self, trade: Any, make: Callable[[Any], Order], publish: bool = True) -> None:
        """Publish ``make(trade)`` if the order's status or filled quantity moved forward since last time."""
        key = order_key(trade)
        if key is None:
            return
        status, _, filled = progress(trade)
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
        for fill in sorted((f for f in fills if f.commissionReport.execId), key=lambda f: utc(f.time)):
            self.fill(fill, publish)
