"""The notebook desk: ipywidgets for placing and following orders through any broker.

>>> import workbench.widgets
>>> workbench.widgets.desk()                # ticket + blotter + fills + chart on the default broker
>>> ticket = workbench.widgets.OrderTicket(broker)

Every widget talks to the :class:`~workbench.Broker` facade only (never to an adapter or SDK), runs its
broker calls on workbench's background loop (the kernel never blocks), follows ``on_order`` /
``on_fill`` events, carries stable ``wb-*`` CSS classes, and stops its subscriptions on ``close()``
or when the cell that made it runs again.
"""

from __future__ import annotations

from ._base import live
from .blotter import Blotter, FillsFeed
from .chart import PriceChart
from .config import WidgetsConfig
from .desk import Desk, desk
from .ticket import OrderTicket

__all__ = ["desk", "Desk", "OrderTicket", "Blotter", "FillsFeed", "PriceChart", "WidgetsConfig", "live"]
