"""The blotter (positions, open orders with a Cancel button each, today's fills) and the fills feed.

Driven by the Broker's ``on_order`` / ``on_fill`` events; a slow timer (``widgets.refresh_seconds``)
re-marks positions to market while the broker is connected (and says so when it is not). Open-order rows are
kept per order id and only the rows that changed are rebuilt, so a fill with hundreds of working orders costs
one row update and one positions table. A finished order never comes back from a late or stale snapshot.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as w

from workbench.core import display
from workbench.core.enums import Feature, OrderStatus
from workbench.core.errors import WorkbenchError
from workbench.core.models import FillEvent, Order

from ._args import callback_arg, feed_args, open_broker, order_id_arg, seconds_arg
from ._base import Component, error_text, log
from .config import widgets_config

__all__ = ["Blotter", "FillsFeed"]

_OPEN = [s.value for s in OrderStatus if s.is_open]


_SESSION_TZ = ZoneInfo("America/New_York")  # US equities: the trading day is New York's date


def _today(now: datetime | None = None) -> datetime:
    """Midnight in New York of the current trading date, in UTC (a fill at 7 pm New York is still today's)."""
    local = (now or datetime.now(UTC)).astimezone(_SESSION_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class FillsFeed(Component):
    """Today's fills (the New York trading date, or since ``since``) for ``broker``, newest first, updated on every
    fill; the newest ``limit`` are shown (None: all). ``fills`` lists every one of them as a FillEvent, newest first."""

    def __init__(self, broker: Any, limit: int | None = 50, since: datetime | None = None) -> None:
        limit, since = feed_args(broker, limit, since)
        super().__init__()
        self.session = broker
        self.limit = limit
        self.fills: list[FillEvent] = []  # every fill shown or counted, loaded or streamed, once each, newest first
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.table = w.HTML("<span class='wb-muted'>loading fills…</span>")
        self.widget = w.VBox([w.HTML("<b>Fills today</b>"), self.table])
        self.widget.add_class("wb-fills")
        self.own(broker.on_fill(self._on_fill))
        self.spawn(self._load(since or _today()), "load fills")

    async def _load(self, since: datetime) -> None:
        frame = await self.session.get_fills_async(since=since)
        loaded = [_row_fill(self.session.name, ts, r)
                  for ts, r in zip(frame.index, frame.itertuples(index=False), strict=True)]
        with self._lock:  # a fill streamed while the frame loaded is in both: keep it once
            fresh = [fill for fill in reversed(loaded) if fill.exec_id not in self._seen]
            # by time (a trading day spans UTC midnight); in place, so a caller's reference to .fills stays current
            self.fills[:] = sorted([*fresh, *self.fills], key=lambda fill: fill.ts, reverse=True)
            self._seen |= {fill.exec_id for fill in loaded}
        self._render()

    def _on_fill(self, fill: FillEvent) -> None:
        with self._lock:
            if fill.exec_id in self._seen:
                return
            self._seen.add(fill.exec_id)
            self.fills.insert(0, fill)
        self._render()
        self._touch()

    def _render(self) -> None:
        with self._lock:
            shown = self.fills[: self.limit]
            total = len(self.fills)
        if not shown:
            self.table.value = "<span class='wb-muted'>no fills today</span>"
            return
        cells = [(f"{f.ts.astimezone(UTC):%H:%M:%S}", display._e(f.symbol), display._e(f.side),
                  display.fmt_qty(f.qty), display.fmt_price(f.price), display.fmt_num(f.commission),
                  display._e(f.broker_id)) for f in shown]
        caption = f"{total} fill{'s' if total != 1 else ''}"
        if self.limit is not None and total > self.limit:
            caption += f", newest {self.limit} shown"
        self.table.value = display.STYLE + display.table_html(
            ["time (UTC)", "symbol", "side", "qty", "price", "comm.", "order"], cells, left=3, caption=caption)

    def __repr__(self) -> str:
        return f"<FillsFeed {self.session.name} {len(self.fills)} fills>"


class Blotter(Component):
    """Positions (market value, unrealized P&L), open orders with Cancel buttons, and today's fills.

    ``positions``, ``orders`` and ``fills`` (a :class:`FillsFeed`) are its parts; ``message`` shows the
    outcome of the last Cancel. :meth:`on_refresh` registers a callback run after each update.
    """

    def __init__(self, broker: Any, refresh_seconds: float | None = None) -> None:
        open_broker(broker)
        refresh_seconds = seconds_arg(refresh_seconds, "refresh_seconds")
        super().__init__()
        self.session = broker
        self._lock = threading.RLock()
        self.open_orders: dict[str, Order] = {}
        self.positions_frame: Any = None  # the last positions DataFrame shown
        self._rows: dict[str, tuple[w.HBox, w.HTML, w.Button]] = {}
        self._done: set[str] = set()  # orders seen in a final state: later snapshots of them are stale
        self._paused_state: str | None = None
        self._refreshing = False
        self._again = False
        self._listeners: list[Callable[[], Any]] = []
        self._data_label = dict(display._broker_facts(broker)).get("data", "")
        self.positions = w.HTML("<span class='wb-muted'>loading positions…</span>")
        self.orders = w.VBox()
        self._no_orders = w.HTML("<span class='wb-muted'>no open orders</span>")  # one placeholder, reused
        self.message = w.HTML()
        self.state = w.HTML()
        self.fills = FillsFeed(broker)
        self.state.add_class("wb-blotter-state")
        self.positions.add_class("wb-positions")
        self.orders.add_class("wb-orders")
        self.message.add_class("wb-blotter-message")
        self.widget = w.VBox([w.HTML(display.STYLE + "<b>Positions</b>"), self.state, self.positions,
                              w.HTML("<b>Open orders</b>"), self.orders, self.message, self.fills.widget])
        self.widget.add_class("wb-blotter")
        self.own(self.fills.close)
        self.own(broker.on_fill(self._on_fill))
        if Feature.STREAM_ORDERS in broker.capabilities.features:
            self.own(broker.on_order(self.on_order_update))
        self.spawn(self._load(), "load blotter")
        seconds = refresh_seconds or widgets_config(broker.settings).refresh_seconds
        self.every(seconds, self._timed_refresh, "price refresh")

    def on_refresh(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` (on workbench's loop thread) after each positions or orders update."""
        self._listeners.append(callback_arg(callback, "no arguments"))

    def _notify(self) -> None:
        self._touch()
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("blotter: on_refresh callback failed")

    async def _load(self) -> None:
        frame = await self.session.get_orders_history_async(limit=None)
        working = frame[frame["status"].isin(_OPEN)]
        with self._lock:  # the same rules as events: an order that finished meanwhile stays finished
            for order_id, row in zip(working.index, working.itertuples(index=False), strict=True):
                self._merge(_row_order(self.session.name, order_id, row))
            self._relayout()
        await self.refresh_positions()

    async def _timed_refresh(self) -> bool:
        """The slow re-mark: only while the broker is connected; False (the timer stops) once it is closed."""
        state = self.session.state
        if state != "connected":
            if state != self._paused_state:
                self._paused_state = state
                log.info("blotter: %s is %s; positions are not re-marked meanwhile", self.session.name, state)
                self.state.value = (f"<span class='wb-error'>{display._e(self.session.name)} is {display._e(state)}"
                                    f": positions as last marked</span>")
            return state != "closed"
        if self._paused_state is not None:
            self._paused_state = None
            self.state.value = ""
        await self.refresh_positions()
        return True

    # -- positions --------------------------------------------------------------------------

    async def refresh_positions(self) -> None:
        """Re-read positions (marked to market) and redraw the table; concurrent calls coalesce."""
        with self._lock:
            if self._refreshing:
                self._again = True
                return
            self._refreshing = True
        try:
            while True:
                frame = await self.session.get_positions_async()
                self.positions_frame = frame
                self.positions.value = _positions_html(frame, self._data_label)
                with self._lock:
                    if not self._again:
                        self._refreshing = False
                        break
                    self._again = False
        except BaseException:
            with self._lock:
                self._refreshing = False
            raise
        self._notify()

    def _on_fill(self, fill: FillEvent) -> None:
        self.spawn(self.refresh_positions(), "positions after a fill")
        if Feature.STREAM_ORDERS not in self.session.capabilities.features:
            self.spawn(self._fetch(fill.broker_id), "order after a fill")

    async def _fetch(self, order_id: str) -> None:
        self.on_order_update(await self.session.get_order_async(order_id))

    # -- orders -----------------------------------------------------------------------------

    def on_order_update(self, order: Order) -> None:
        """Apply an order snapshot: working orders get (or update) a row, finished ones leave."""
        if self.closed:
            return
        with self._lock:
            if self._merge(order):
                self._relayout()
        self._notify()

    def _merge(self, order: Order) -> bool:
        """Apply one snapshot under the lock; True when a row was added or removed."""
        if order.order_id in self._done:
            return False  # finished already: a late or stale snapshot
        known = self.open_orders.get(order.order_id)
        if known is not None and (known.status.advance(order.status) is not order.status
                                  or order.filled_qty < known.filled_qty):
            return False  # older than what is shown
        if order.status.is_open:
            return self._upsert(order)
        self._done.add(order.order_id)
        gone = self.open_orders.pop(order.order_id, None)
        row = self._rows.pop(order.order_id, None)
        if row is not None:
            _close_row(row)
        if gone is not None:
            self.message.value = (f"{display.status_badge(order.status)} {display._e(order.order_id)} "
                                  f"{display._e(display._order_summary(order))}")
        return True

    def _upsert(self, order: Order) -> bool:
        """Create or update the row of a working order; True when a row was added."""
        self.open_orders[order.order_id] = order
        row = self._rows.get(order.order_id)
        text = _order_row_html(order)
        if row is not None:
            row[1].value = text
            return False
        label = w.HTML(text, layout=w.Layout(width="auto"))
        cancel = w.Button(description="Cancel", button_style="warning", layout=w.Layout(width="80px"),
                          tooltip=f"cancel {order.order_id}")
        cancel.add_class("wb-cancel")
        cancel.on_click(lambda _b, oid=order.order_id: self.cancel(oid))
        box = w.HBox([cancel, label])
        box.add_class("wb-order-row")
        self._rows[order.order_id] = (box, label, cancel)
        return True

    def _relayout(self) -> None:
        with self._lock:  # rows and what is on screen change together (cancel_buttons() reads both)
            ordered = sorted(self.open_orders.values(), key=lambda o: o.created_at, reverse=True)
            children = [self._rows[o.order_id][0] for o in ordered if o.order_id in self._rows]
            self.orders.children = children if children else [self._no_orders]

    def cancel(self, order_id: str) -> None:
        """Request cancellation of ``order_id`` (what its Cancel button does); never blocks the kernel."""
        order_id = order_id_arg(self.session, order_id)
        row = self._rows.get(order_id)
        if row is not None:
            row[2].disabled = True
            row[2].description = "Cancelling"
        self.spawn(self._cancel(order_id), f"cancel {order_id}")

    async def _cancel(self, order_id: str) -> None:
        try:
            order = await self.session.cancel_order_async(order_id)
        except Exception as exc:  # shown on the blotter and logged; the button comes back
            if isinstance(exc, WorkbenchError):
                log.warning("blotter: cancel %s failed: %s", order_id, exc)
            else:
                log.exception("blotter: cancel %s failed", order_id)
            self.message.value = (f"<span class='wb-error'>cancel {display._e(order_id)}: "
                                  f"{display._e(error_text(exc))}</span>")
            row = self._rows.get(order_id)
            if row is not None:
                row[2].disabled, row[2].description = False, "Cancel"
            return
        self.on_order_update(order)

    def cancel_buttons(self) -> dict[str, w.Button]:
        """The Cancel button of each open order, by order id."""
        with self._lock:
            return {oid: row[2] for oid, row in self._rows.items()}

    def close(self) -> None:
        with self._lock:
            rows = list(self._rows.values())
            self._rows.clear()
        for row in rows:
            _close_row(row)
        super().close()
        self._no_orders.close()

    def __repr__(self) -> str:
        return f"<Blotter {self.session.name} {len(self.open_orders)} open orders>"


def _close_row(row: tuple[w.HBox, w.HTML, w.Button]) -> None:
    for widget in (row[2], row[1], row[0]):
        widget.close()


def _row_order(broker: str, order_id: str, row: Any) -> Order:
    """An Order from a row of the orders frame (the facade's table form)."""
    def num(value: Any) -> Any:
        return None if value != value else str(value)  # NaN -> None

    return Order(broker=broker, order_id=order_id, client_order_id=row.client_order_id, symbol=row.symbol,
                 side=row.side, qty=num(row.qty), order_type=row.order_type, tif=row.tif,
                 limit_price=num(row.limit_price), stop_price=num(row.stop_price), trail_price=num(row.trail_price),
                 trail_percent=num(row.trail_percent), notional=num(row.notional), status=row.status,
                 raw_status=row.raw_status, filled_qty=num(row.filled_qty) or "0",
                 avg_fill_price=num(row.avg_fill_price), created_at=row.created_at, updated_at=row.updated_at)


def _row_fill(broker: str, ts: Any, row: Any) -> FillEvent:
    """A FillEvent from a row of the fills frame (the facade's table form)."""
    return FillEvent(broker=broker, local_id=row.client_order_id, broker_id=row.order_id, exec_id=row.exec_id,
                     symbol=row.symbol, side=row.side, qty=str(row.qty), price=str(row.price),
                     commission=str(row.commission), ts=ts.to_pydatetime())


def _order_row_html(order: Order) -> str:
    filled = f" · filled {display.fmt_qty(order.filled_qty)}" if order.filled_qty else ""
    return (f"{display.status_badge(order.status)} <b>{display._e(order.order_id)}</b> "
            f"{display._e(display._order_summary(order))}{filled} "
            f"<span class='wb-muted'>{display.fmt_ts(order.created_at)[11:]}</span>")


def _positions_html(frame: Any, data_label: str) -> str:
    if frame.empty:
        return "<span class='wb-muted'>no positions</span>"
    rows = []
    total_value = total_pnl = 0.0
    for symbol, r in zip(frame.index, frame.itertuples(index=False), strict=True):
        pnl = r.unrealized_pnl
        rows.append((display._e(symbol), display.fmt_qty(r.qty), display.fmt_price(r.avg_price),
                     display.fmt_price(r.market_price), display.fmt_num(r.market_value),
                     display._signed(pnl, "" if pnl != pnl else f"{pnl:+,.2f}"),
                     display._signed(pnl, "" if r.unrealized_pnl_pct != r.unrealized_pnl_pct
                                     else f"{r.unrealized_pnl_pct * 100:+.2f}%")))
        total_value += 0.0 if r.market_value != r.market_value else r.market_value
        total_pnl += 0.0 if pnl != pnl else pnl
    caption = (f"{len(rows)} position{'s' if len(rows) != 1 else ''} · value {display.fmt_num(total_value)}"
               f" · unrealized {total_pnl:+,.2f} · marked {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    if data_label.endswith("(simulated)"):
        caption += f" · marks from <span class='wb-sim'>{display._e(data_label)}</span>"
    elif data_label:
        caption += f" · marks from {display._e(data_label)}"
    return display.STYLE + display.table_html(["symbol", "qty", "avg price", "mark", "value", "unreal. P&L", "P&L %"],
                                              rows, caption=caption)
