"""The order ticket: broker, symbol with a live price, side, size, type, prices, TIF, preview, guard, Submit.

Every broker call goes through the :class:`~workbench.facade.Broker` facade's async twins on workbench's
loop (see :mod:`workbench.widgets._base`); the status line follows the order through ``on_order`` and
``on_fill`` events. Bad input is refused on the ticket (the field named, nothing sent, logged).

One submission, one client order id: a double click within :data:`DOUBLE_CLICK_SECONDS` is ignored (and says
so on the ticket), and when a send ends without a clear answer (timeout, lost connection) Submit with the form
unchanged resends the *same* client order id, which a broker never fills twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ipywidgets as w

from workbench.core import display
from workbench.core.enums import Feature, OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import (InvalidInput, InvalidOrder, OrderRejected, RequestTimeout, SymbolNotFound,
                                   WorkbenchError)
from workbench.core.models import AccountInfo, FillEvent, NeutralOrder, Order, Quote

from ._args import callback_arg, ticket_args, wait_args
from ._base import Component, error_text, log
from .config import widgets_config
from .orderform import buying_power_after, guard_reason, order_notional, parse_number, round_to_tick, tick_size

__all__ = ["OrderTicket", "tick_size", "round_to_tick", "DOUBLE_CLICK_SECONDS"]

#: A second click with an unchanged form within this many seconds is a double click: nothing is sent.
DOUBLE_CLICK_SECONDS = 1.0
_PRICE_FIELDS = ("limit_price", "stop_price")


def _show(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


class OrderTicket(Component):
    """An order ticket for ``broker``: a connected Broker, or a broker name / None (the ticket connects it with
    ``settings``, as ``workbench.connect`` does, and closes it with itself).

    Public widgets: ``broker`` (selector), ``symbol``, ``side``, ``size_by`` (qty or notional, shown where the
    broker takes cash-sized market orders), ``qty``, ``notional``, ``order_type``, ``limit_price``,
    ``stop_price``, ``trail_percent``, ``tif``, ``submit``, ``confirm``, ``status``, ``price``, ``preview``,
    ``warning``. ``session`` is the connected Broker, ``last_order`` the latest state of the order last
    submitted, ``subscription`` the live market-data subscription. Call :meth:`close` when done (re-running
    the cell that made the ticket closes the old one).
    """

    def __init__(self, broker: Any = None, symbol: str = "AAPL", qty: float = 10, *,
                 settings: Any = None) -> None:
        import workbench
        from workbench.adapters.factory import known_adapters

        symbol, qty = ticket_args(broker, symbol, qty, settings)  # before anything is made or connected
        owned = broker is None or isinstance(broker, str)
        session = workbench.connect(broker, settings=settings) if owned else broker
        super().__init__()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.session = session
        self._owns_session = owned
        self.config = widgets_config(self.session.settings)
        self.last_order: Order | None = None
        self.subscription: Any = None
        self._quote: Quote | None = None
        self._symbol_error: WorkbenchError | None = None
        self._account: AccountInfo | None = None
        self._held = Decimal(0)  # the position in the ticket's symbol (signed), for the preview
        self._inflight: NeutralOrder | None = None
        self._awaiting: tuple[tuple[Any, ...], NeutralOrder] | None = None  # (form, order) waiting for Confirm
        self._retry: tuple[tuple[Any, ...], NeutralOrder] | None = None  # a send with no clear answer
        self._prefilled: dict[str, float] = {}  # what each price field held when the ticket last filled it
        self._tracked: str | None = None
        self._last_send: tuple[float, tuple[Any, ...]] | None = None
        self._finished = False
        self._generation = 0
        self._session_stops: list[Callable[[], Any]] = []
        self._session_listeners: list[Callable[[Any], Any]] = []
        self._quiet = False  # set while options are rebuilt, so observers ignore the changes

        names = sorted(known_adapters() | {self.session.name})
        self.broker = w.Dropdown(options=names, value=self.session.name, description="broker")
        self.symbol = w.Text(value=symbol, description="symbol", continuous_update=False)
        self.price = w.HTML()
        self.side = w.ToggleButtons(options=[s.value for s in Side], value=Side.BUY.value, description="side",
                                    style={"button_width": "72px"})
        self.size_by = w.ToggleButtons(options=["qty", "notional"], value="qty", description="size by",
                                       tooltips=["a number of shares", "a cash amount (market orders)"],
                                       style={"button_width": "88px"})
        self.qty = w.FloatText(value=qty, description="qty")
        self.notional = w.FloatText(value=0, description="notional $", step=100)
        self.order_type = w.Dropdown(description="type")
        self.limit_price = w.FloatText(value=0, description="limit", step=0.01)
        self.stop_price = w.FloatText(value=0, description="stop", step=0.01)
        self.trail_percent = w.FloatText(value=0, description="trail %", step=0.1)
        self.tif = w.Dropdown(description="TIF")
        self.preview = w.HTML()
        self.warning = w.HTML()
        self.submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.confirm = w.Button(description="Confirm: send anyway", button_style="danger")
        self.status = w.HTML(value="<span class='wb-muted'>no order yet</span>")
        for widget, css in ((self.broker, "wb-broker"), (self.symbol, "wb-symbol"), (self.price, "wb-price"),
                            (self.side, "wb-side"), (self.size_by, "wb-size-by"), (self.qty, "wb-qty"),
                            (self.notional, "wb-notional"), (self.order_type, "wb-order-type"),
                            (self.limit_price, "wb-limit-price"), (self.stop_price, "wb-stop-price"),
                            (self.trail_percent, "wb-trail-percent"), (self.tif, "wb-tif"),
                            (self.preview, "wb-preview"), (self.warning, "wb-warning"), (self.submit, "wb-submit"),
                            (self.confirm, "wb-confirm"), (self.status, "wb-status")):
            widget.add_class(css)
        _show(self.confirm, False)
        self.widget = w.VBox([
            w.HTML(display.STYLE + "<b>Order ticket</b>"), self.broker, self.symbol, self.price, self.side,
            self.order_type, self.size_by, self.qty, self.notional, self.limit_price, self.stop_price,
            self.trail_percent, self.tif, self.preview, self.warning, w.HBox([self.submit, self.confirm]),
            self.status,
        ], layout=w.Layout(width="340px"))
        self.widget.add_class("wb-ticket")

        self.submit.on_click(self._on_submit)
        self.confirm.on_click(self._on_confirm)
        self.broker.observe(self._on_broker_change, names="value")
        self.symbol.observe(self._on_symbol_change, names="value")
        self.order_type.observe(self._on_type_change, names="value")
        self.size_by.observe(self._on_type_change, names="value")
        for widget in (self.side, self.qty, self.notional, self.limit_price, self.stop_price, self.trail_percent,
                       self.tif):
            widget.observe(self._on_form_change, names="value")
        self._bind(self.session)

    # -- the broker session -----------------------------------------------------------------

    def on_session(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(broker)`` after the broker selector switched the ticket to another broker."""
        self._session_listeners.append(callback_arg(callback, "the new Broker"))

    def _bind(self, session: Any) -> None:
        """Subscribe to ``session``'s events and rebuild what depends on its capabilities."""
        caps = session.capabilities
        stops = [session.on_fill(self._on_fill_event)]
        if Feature.STREAM_ORDERS in caps.features:
            stops.append(session.on_order(self._on_order_event))
        with self._lock:
            self.session = session
            self.config = widgets_config(session.settings)
            self._session_stops = stops
            self._quiet = True
            try:
                types = [t.value for t in OrderType if t in caps.order_types]
                self.order_type.options = types
                if self.order_type.value not in types:
                    self.order_type.value = types[0]
                tifs = [t.value for t in TimeInForce if t in caps.tifs]
                self.tif.options = tifs
                if self.tif.value not in tifs:
                    self.tif.value = TimeInForce.DAY.value if TimeInForce.DAY.value in tifs else tifs[0]
                self.broker.value = session.name
            finally:
                self._quiet = False
        self._sync_fields()
        self._resubscribe(self.symbol.value)

    def _unbind(self) -> None:
        stops, self._session_stops = self._session_stops, []
        for stop in stops:
            stop()
        self._drop_subscription()

    def _on_broker_change(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if self._quiet or name == self.session.name:
            return
        self._withdraw()  # a pending Confirm was for the other broker
        self.submit.disabled = True
        self.status.value = f"<span class='wb-muted'>connecting to {display._e(name)}…</span>"
        self.spawn(self._switch(name), f"switch to {name}")

    async def _switch(self, name: str) -> None:
        import workbench

        previous, owned = self.session, self._owns_session
        try:  # connect() is synchronous: run it in a worker thread, off the kernel and off the loop
            session = await asyncio.to_thread(workbench.connect, name, previous.settings)
        except Exception as exc:
            log.warning("ticket: cannot switch to broker %s: %s", name, exc)
            self._show_error(exc, prefix=f"broker {name}")
            with self._lock:
                self._quiet = True
                self.broker.value = previous.name
                self._quiet = False
            self.submit.disabled = False
            return
        await asyncio.to_thread(self._rebind, session, previous, owned)

    def _rebind(self, session: Any, previous: Any, owned: bool) -> None:
        self._unbind()
        self._owns_session = True
        self._bind(session)
        self.submit.disabled = False
        self.status.value = f"<span class='wb-muted'>connected to {display._e(session.name)}</span>"
        for callback in list(self._session_listeners):  # move the desk over before the old broker goes
            try:
                callback(session)
            except Exception:
                log.exception("ticket: on_session callback failed")
        if owned:
            previous.close()

    # -- symbol and live price --------------------------------------------------------------

    def _on_symbol_change(self, change: dict[str, Any]) -> None:
        symbol = str(change["new"]).strip().upper()
        if symbol != change["new"]:
            self.symbol.value = symbol  # observers run again with the normalised value
            return
        self._resubscribe(symbol)

    def _drop_subscription(self) -> None:
        sub, self.subscription = self.subscription, None
        if sub is not None:
            self.call_on_loop(sub.cancel)

    def _resubscribe(self, symbol: str) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._quote = None
            self._symbol_error = None
            self._held = Decimal(0)
            # the price fields as they are now: the new symbol's first quote replaces them unless edited since
            self._prefilled = {name: getattr(self, name).value for name in _PRICE_FIELDS}
        self._drop_subscription()
        self._withdraw()
        if not symbol:
            self.price.value = ""
            return
        self.price.value = f"<span class='wb-muted'>{display._e(symbol)}: loading…</span>"
        self.spawn(self._subscribe(symbol, generation), f"subscribe {symbol}")
        self.spawn(self._refresh_account(), "account refresh")

    async def _subscribe(self, symbol: str, generation: int) -> None:
        session = self.session
        try:
            quote = await session.get_quote_async(symbol)
            if generation != self._generation:
                return
            self._on_quote(quote, generation, prefill=True)
            sub = await session.subscribe_market_data_async([symbol], lambda q: self._on_quote(q, generation))
        except Exception as exc:
            if generation == self._generation:
                # an unknown symbol blocks the order; a data problem (no entitlement, an outage) only the price:
                # the order can still go, unpriced, after the guard's explicit confirm
                with self._lock:
                    if isinstance(exc, (SymbolNotFound, InvalidInput)):
                        self._symbol_error = exc
                        self._withdraw()  # a Confirm asked before the answer came was for an order that cannot go
                if isinstance(exc, WorkbenchError):
                    log.warning("ticket: symbol %s: %s", symbol, exc)
                else:
                    log.exception("ticket: symbol %s: no price", symbol)
                note = "" if self._symbol_error is not None else " · no live price: orders need a confirm"
                self.price.value = f"<span class='wb-error'>{display._e(error_text(exc) + note)}</span>"
            return
        with self._lock:
            stale = generation != self._generation or self.closed
            if not stale:
                self.subscription = sub
        if stale:
            sub.cancel()

    def _on_quote(self, quote: Quote, generation: int, prefill: bool = False) -> None:
        if generation != self._generation or self.closed:
            return
        with self._lock:
            self._quote = quote
        book = ""
        if quote.bid is not None or quote.ask is not None:
            book = f" · bid {display.fmt_price(quote.bid)} / ask {display.fmt_price(quote.ask)}"
        source = f"<span class='wb-sim'>{display._e(quote.source)} · simulated</span>" if quote.simulated \
            else f"<span class='wb-muted'>{display._e(quote.source)}</span>"
        self.price.value = (f"<b>{display._e(quote.symbol)}</b> last <b>{display.fmt_price(quote.last)}</b>{book}"
                            f" · {source} <span class='wb-muted'>{display.fmt_ts(quote.ts)[11:]} UTC</span>")
        if prefill:
            self._prefill(quote.last)
        self._update_preview()

    def _prefill(self, last: Decimal) -> None:
        """Put ``last`` (on its tick) into the price fields the user has not typed into."""
        price, step = float(round_to_tick(last)), float(tick_size(last))
        with self._lock:
            for name in _PRICE_FIELDS:
                field = getattr(self, name)
                field.step = step
                if field.value and field.value != self._prefilled.get(name):
                    continue  # the user's own price: never overwritten
                self._prefilled[name] = price
                field.value = price

    # -- form -------------------------------------------------------------------------------

    def _notional_mode(self) -> bool:
        """Whether the order is sized in cash: a market order, on a broker that takes those, set to notional."""
        return (self.size_by.value == "notional" and OrderType(self.order_type.value) is OrderType.MARKET
                and Feature.NOTIONAL in self.session.capabilities.features)

    def _sync_fields(self) -> None:
        kind = OrderType(self.order_type.value)
        _show(self.size_by, kind is OrderType.MARKET and Feature.NOTIONAL in self.session.capabilities.features)
        by_cash = self._notional_mode()
        _show(self.qty, not by_cash)
        _show(self.notional, by_cash)
        _show(self.limit_price, kind.needs_limit_price)
        _show(self.stop_price, kind.needs_stop_price)
        _show(self.trail_percent, kind.needs_trail)

    def _on_type_change(self, change: dict[str, Any]) -> None:
        self._sync_fields()
        quote = self._quote
        if quote is not None:
            self._prefill(quote.last)  # a field that appears shows today's price, unless the user typed one
        self._on_form_change(change)

    def _on_form_change(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        self._withdraw()
        self._update_preview()

    def _form(self) -> tuple[Any, ...]:
        """Everything that defines the order on screen (a Confirm or a resend is for exactly this)."""
        return (self.broker.value, self.symbol.value, self.side.value, self.size_by.value, self.qty.value,
                self.notional.value, self.order_type.value, self.limit_price.value, self.stop_price.value,
                self.trail_percent.value, self.tif.value)

    def build_order(self) -> NeutralOrder:
        """The order the form describes now (InvalidInput/InvalidOrder/NotSupported naming the field)."""
        if self._symbol_error is not None:
            raise InvalidInput(error_text(self._symbol_error), field="symbol")
        kind = OrderType(self.order_type.value)
        fields: dict[str, Any] = {"symbol": self.symbol.value, "side": self.side.value, "order_type": kind,
                                  "tif": self.tif.value}
        if self._notional_mode():
            fields["notional"] = parse_number(self.notional.value, "notional")
            if fields["notional"] is None:
                raise InvalidOrder("enter the cash amount to trade", field="notional")
        else:
            fields["qty"] = parse_number(self.qty.value, "qty") or Decimal(0)
        if kind.needs_limit_price:
            fields["limit_price"] = parse_number(self.limit_price.value, "limit_price")
        if kind.needs_stop_price:
            fields["stop_price"] = parse_number(self.stop_price.value, "stop_price")
        if kind.needs_trail:
            fields["trail_percent"] = parse_number(self.trail_percent.value, "trail_percent")
        order = NeutralOrder(**fields)
        self.session.capabilities.check(order, self.session.name)
        return order

    def _last(self) -> Decimal | None:
        quote = self._quote
        return quote.last if quote is not None else None

    def _commission_estimate(self, qty: Decimal) -> Decimal | None:
        if self.session.name != "paper":
            return None  # only the paper broker's commission schedule is known before sending
        from workbench.paper.config import PaperConfig

        return self.session.settings.section_model("paper", PaperConfig).commission.for_fill(qty)

    def _update_preview(self) -> None:
        with self._lock:  # quotes (loop thread) and edits (kernel) both redraw it: the last one drawn wins
            self._draw_preview()

    def _draw_preview(self) -> None:
        try:
            order = self.build_order()
        except WorkbenchError:
            self.preview.value = ""
            return
        last = self._last()
        notional = order_notional(order, last)
        price = order.limit_price or order.stop_price or last
        if notional is None or not price:
            self.preview.value = "<span class='wb-muted'>waiting for a price…</span>"
            return
        qty = order.qty if order.qty is not None else notional / price
        parts = [f"notional ≈ {display.fmt_num(notional)}"]
        if order.qty is None:
            parts.append(f"≈ {display.fmt_qty(qty.quantize(Decimal('0.0001')))} shares")
        commission = self._commission_estimate(qty)
        parts.append(f"est. commission {display.fmt_num(commission)}" if commission is not None
                     else "commission: no estimate from this broker")
        account = self._account
        if account is not None:
            cash_account = self.session.name == "paper"  # the paper ledger books every trade in cash
            after = buying_power_after(account.buying_power, order.side, qty, price, commission or Decimal(0),
                                       self._held, cash_account)
            parts.append(f"buying power after {'' if cash_account else '≈ '}{display.fmt_num(after)}")
        self.preview.value = "<span class='wb-muted'>" + " · ".join(parts) + "</span>"

    async def _refresh_account(self) -> None:
        symbol = self.symbol.value
        try:
            account = await self.session.get_account_async()
        except WorkbenchError as exc:
            log.warning("ticket: account refresh failed: %s", exc)
            return
        held = Decimal(0)
        if symbol:
            try:
                position = await self.session.get_position_async(symbol)
                held = position.qty if position is not None else Decimal(0)
            except WorkbenchError as exc:  # e.g. an unknown symbol: the price line says so already
                log.info("ticket: no position for %s: %s", symbol, exc)
        with self._lock:
            self._account = account
            if symbol == self.symbol.value:
                self._held = held
        self._update_preview()

    # -- submit -----------------------------------------------------------------------------

    def _withdraw(self) -> None:
        """The form changed: a pending Confirm or resend no longer describes what is on screen."""
        with self._lock:
            self._awaiting = None
            self._retry = None
            _show(self.confirm, False)
            self.warning.value = ""

    def _note(self, text: str) -> None:
        self.warning.value = f"<span class='wb-muted'>{display._e(text)}</span>"

    def _on_submit(self, _button: Any = None) -> None:
        with self._lock:
            if self._inflight is not None:
                log.info("ticket: Submit ignored, order %s is still being sent", self._inflight.client_order_id)
                self._note(f"Submit ignored: order {self._inflight.client_order_id} is still being sent")
                return
            form, now = self._form(), time.monotonic()
            if self._last_send is not None and self._last_send[1] == form \
                    and now - self._last_send[0] < DOUBLE_CLICK_SECONDS:
                ago = now - self._last_send[0]
                log.info("ticket: Submit ignored (double click: the same order was sent %.2f s ago)", ago)
                self._note(f"Submit ignored: this same order was sent {ago:.1f} s ago (double-click guard). "
                           f"To send it again, click once more after {DOUBLE_CLICK_SECONDS:g} s.")
                return
            if self._retry is not None and self._retry[0] == form:
                order = self._retry[1]  # the same submission again: the same client order id
            else:
                try:
                    order = self.build_order()
                except WorkbenchError as exc:
                    log.warning("ticket: order refused before sending: %s", exc)
                    self._show_error(exc)
                    return
            reason = guard_reason(order, self._last(), self.config)
            if reason is not None:
                self._awaiting = (form, order)
                self.warning.value = f"<span class='wb-error'>⚠ {display._e(reason)}: click Confirm to send</span>"
                _show(self.confirm, True)
                return
            self._begin(order, form, now)
        self.spawn(self._send(order, form), "submit")

    def _on_confirm(self, _button: Any = None) -> None:
        with self._lock:
            awaiting = self._awaiting
            if awaiting is None or self._inflight is not None:
                return
            form, order = awaiting
            if self._form() != form:  # whatever changed, the warning was about another order
                log.info("ticket: Confirm ignored, the form changed after the warning")
                self._withdraw()
                return
            self._begin(order, form, time.monotonic())
        self.spawn(self._send(order, form), "submit (confirmed)")

    def _begin(self, order: NeutralOrder, form: tuple[Any, ...], now: float) -> None:
        self._awaiting = None
        _show(self.confirm, False)
        self.warning.value = ""
        self._inflight = order
        self._tracked = order.client_order_id
        self._last_send = (now, form)
        self._finished = False
        self.last_order = None
        self.submit.disabled = True
        self.status.value = self._status_html(OrderStatus.PENDING_NEW, display._order_summary(order), "sending…")

    async def _send(self, order: NeutralOrder, form: tuple[Any, ...]) -> None:
        session = self.session
        try:
            placed = await asyncio.wait_for(session.place_order_async(order), session.timeout)
        except Exception as exc:  # typed errors in plain words; anything else says so, and both are logged
            if isinstance(exc, TimeoutError):
                exc = RequestTimeout(f"{session.name} did not answer within {session.timeout:g} s",
                                     broker=session.name, code="timeout")
            # no clear answer: the order may have reached the broker, so a resend must reuse its id
            unclear = not isinstance(exc, WorkbenchError) or exc.retryable
            if isinstance(exc, WorkbenchError):
                log.warning("ticket: order %s refused: %s", order.client_order_id, exc)
            else:
                log.exception("ticket: order %s failed", order.client_order_id)
            with self._lock:
                self._inflight = None
                self._finished = True
                self._retry = (form, order) if unclear else None
                self._changed.notify_all()
                self.submit.disabled = False
                note = (f" · order {order.client_order_id} may have reached {session.name}: Submit again (form "
                        "unchanged) resends the same client order id, which never fills twice") if unclear else ""
                self._show_error(exc, note=note)
            return
        with self._lock:
            self._inflight = None
            self._retry = None
            self.submit.disabled = False
        self._apply(placed)

    # -- order events -----------------------------------------------------------------------

    def _on_order_event(self, order: Order) -> None:
        if order.client_order_id == self._tracked:
            self._apply(order)

    def _on_fill_event(self, fill: FillEvent) -> None:
        if fill.symbol == self.symbol.value or fill.local_id == self._tracked:
            self.spawn(self._refresh_account(), "account refresh")
        if fill.local_id == self._tracked and Feature.STREAM_ORDERS not in self.session.capabilities.features:
            self.spawn(self._fetch_tracked(fill.local_id), "order refresh after a fill")

    async def _fetch_tracked(self, client_order_id: str) -> None:
        self._apply(await self.session.get_order_async(client_order_id))

    def _apply(self, order: Order) -> None:
        """Show ``order`` if it is the submission on screen and not older than what is shown (late events)."""
        with self._lock:
            if order.client_order_id != self._tracked:
                return  # a previous submission's snapshot, arriving late
            last = self.last_order
            if last is not None and last.order_id == order.order_id:
                if last.status.advance(order.status) is not order.status or order.filled_qty < last.filled_qty:
                    return
            self.last_order = order
            self._finished = order.status.is_terminal
            self._changed.notify_all()
            detail = f"{order.order_id}"
            if order.filled_qty:
                detail = f"filled {display.fmt_qty(order.filled_qty)} @ {display.fmt_price(order.avg_fill_price)} · " \
                         + detail
            self.status.value = self._status_html(order.status, display._order_summary(order), detail)

    @staticmethod
    def _status_html(status: OrderStatus, summary: str, detail: str) -> str:
        return (f"<span class='wb-state' data-status='{status.value}'>{display.status_badge(status)}</span> "
                f"{display._e(summary)} <span class='wb-muted'>· {display._e(detail)}</span>")

    def _show_error(self, exc: BaseException, prefix: str = "", note: str = "") -> None:
        """A refusal on the status line: REJECTED (with its badge) when the broker refused the order."""
        text = (prefix + ": " if prefix else "") + error_text(exc) + note
        if isinstance(exc, OrderRejected):
            self.status.value = (f"<span class='wb-state wb-error' data-status='REJECTED'>"
                                 f"{display.status_badge(OrderStatus.REJECTED)} {display._e(text)}</span>")
        else:
            self.status.value = f"<span class='wb-state wb-error' data-status='ERROR'>{display._e(text)}</span>"

    def wait(self, status: str | OrderStatus | None = None, timeout: float = 10.0) -> Order | None:
        """Block until the last submitted order is final (or reaches ``status``); return it.

        For scripts and notebooks that click ``submit`` from code. Returns the order as shown (None if the
        submission was refused; the status line says why). TimeoutError after ``timeout`` seconds.
        """
        wanted, timeout = wait_args(status, timeout)

        def reached() -> bool:
            order = self.last_order
            if self._inflight is None and self._finished and order is None:
                return True
            return order is not None and (order.status.is_terminal or order.status is wanted)

        with self._changed:
            if not self._changed.wait_for(reached, timeout):
                raise TimeoutError(f"order {self._tracked} did not reach {wanted or 'a final state'} in {timeout} s")
            return self.last_order

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe market data and events; close the broker if the ticket connected it."""
        if self.closed:
            return
        super().close()  # closed first: an event arriving meanwhile starts nothing new
        self._unbind()
        if self._owns_session:
            self.session.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.session.name
        return f"<OrderTicket {self.symbol.value} {state}>"
