"""``desk()``: ticket, blotter (positions, open orders, fills) and chart in one layout."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.core.errors import InvalidInput

from ._args import ticket_args
from ._base import Component
from .blotter import Blotter
from .chart import PriceChart
from .ticket import OrderTicket

__all__ = ["Desk", "desk"]


class Desk(Component):
    """The trading desk: ``ticket``, ``blotter`` (with ``blotter.fills``) and ``chart``.

    The chart follows the ticket's symbol; switching broker on the ticket rebuilds blotter and chart.
    """

    def __init__(self, broker: Any = None, symbol: str = "AAPL", *, settings: Any = None) -> None:
        symbol, _ = ticket_args(broker, symbol, 0, settings)  # before anything is made or connected
        super().__init__()
        try:  # the ticket connects the broker when given none or a name: that may fail (an unknown name...)
            self.ticket = OrderTicket(broker, symbol=symbol, settings=settings)
        except BaseException:
            self.close()
            raise
        self.blotter = Blotter(self.ticket.session)
        self.chart = PriceChart(self.ticket.session, symbol=self.ticket.symbol.value)
        # ticket | chart on top, the blotter (positions, open orders, fills) across the bottom
        self._top = w.HBox([self.ticket.widget, self.chart.widget], layout=w.Layout(flex_flow="row wrap"))
        self._bottom = w.VBox([self.blotter.widget])
        self.widget = w.VBox([self._top, self._bottom])
        self.widget.add_class("wb-desk")
        self.ticket.symbol.observe(self._follow_symbol, names="value")
        self.ticket.on_session(self._switch)

    @property
    def session(self) -> Any:
        """The Broker the desk trades on now."""
        return self.ticket.session

    def _follow_symbol(self, change: dict[str, Any]) -> None:
        text = str(change["new"])
        if not text.strip():
            return  # being typed: the chart keeps the last symbol
        try:
            self.chart.symbol = text
        except InvalidInput as exc:  # what the user typed into the ticket: said on the chart, as the ticket says it
            self.chart.show_error(exc)

    def _switch(self, session: Any) -> None:
        old_blotter, old_chart = self.blotter, self.chart
        self.blotter = Blotter(session)
        self.chart = PriceChart(session, symbol=self.ticket.symbol.value)
        self._top.children = [self.ticket.widget, self.chart.widget]
        self._bottom.children = [self.blotter.widget]
        old_blotter.close()
        old_chart.close()

    def close(self) -> None:
        if self.closed:
            return
        for name in ("chart", "blotter", "ticket"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()
        super().close()

    def __repr__(self) -> str:
        return f"<Desk {self.session.name} {self.ticket.symbol.value}>"


def desk(broker: Any = None, symbol: str = "AAPL", *, settings: Any = None) -> Desk:
    """The one-liner: ``workbench.widgets.desk()`` shows a ticket, blotter, fills and chart.

    ``broker``: a connected Broker, or a broker name / None (``workbench.connect(broker, settings)``, closed with
    the desk). Bad arguments raise one typed error naming the field before anything is made.
    """
    return Desk(broker, symbol=symbol, settings=settings)
