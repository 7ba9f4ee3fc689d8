"""The paper-engine side of the emulator: IB order records, engine events -> messages, account pushes.

Everything here runs on the emulator's event loop thread. Engine listeners may fire on any thread:
they only queue the event and wake the loop; :meth:`Bridge.drain` applies queued events to the order
records and then reports each touched order once (openOrder, execDetails, orderStatus,
commissionReport), so an order the engine fills at once is reported filled in one batch at every
server version, never "Submitted" first.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.enums import OrderStatus, OrderType, Side
from workbench.core.errors import InvalidOrder, OrderRejected, WorkbenchError
from workbench.core.models import FillEvent, Order

from . import messages as m
from .account import AccountModel, PnlBook, session_day
from .codec import ib_time
from .orders import PlaceOrder, dec, initial_stop_refusal, to_neutral, trail
from .state import GatewayState, IbIds

if TYPE_CHECKING:
    from .server import Session, TwsEmulator

#: client_id of restored orders whose placing client is unknown (placed through the engine directly).
RESTORED = -1
IB_TYPES = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STP LMT",
            OrderType.TRAILING_STOP: "TRAIL"}


@dataclass
class OrderRecord:
    view: m.OrderView
    client_order_id: str
    engine_id: str = ""
    execs: list[m.ExecView] = field(default_factory=list)
    unreported: list[m.ExecView] = field(default_factory=list)
    cancel_requested: bool = False
    done: bool = False
    announced: bool = False
    modified: bool = False
    initial_stop: float | None = None  # TRAIL: the trailStopPrice it was placed with


class Bridge:
    def __init__(self, server: TwsEmulator, state: GatewayState) -> None:
        self.server = server
        self.engine = server.engine
        self.state = state
        self.account = server.accounts[0]
        self.records: dict[tuple[int, int], OrderRecord] = {}
        self.by_coid: dict[str, OrderRecord] = {}
        self.max_order_id = 0
        self._events: deque[Any] = deque()
        self._lock = threading.Lock()
        self._unsubscribe = [self.engine.add_fill_listener(self._queue), self.engine.add_order_listener(self._queue)]
        fills = self.engine.fills()
        self._seen_fills = {f.exec_id for f in fills}
        self.book = PnlBook(fills)
        self.model = AccountModel(self.engine, self.book, self.account, server.margin,
                                  lambda sym, now: server.feed.previous_close(sym, now))
        self.restore(fills)

    def restore(self, fills: list[FillEvent]) -> None:
        """Rebuild the IB order records from the ledger and the gateway state, so a restarted gateway
        reports every order with the orderId, clientId and permId it had."""
        by_order: dict[str, list[FillEvent]] = {}
        for fill in fills:
            by_order.setdefault(fill.broker_id, []).append(fill)
        orders = list(reversed(self.engine.orders()))  # oldest first
        known = [self.state.get(o.order_id) for o in orders]
        self.max_order_id = max((ids.order_id for ids in known if ids is not None), default=0)
        for order, ids in zip(orders, known):
            if ids is None:  # not placed through a gateway: give it a fresh id, kept from now on
                self.max_order_id += 1
                ids = IbIds(self.max_order_id, RESTORED, self.state.new_perm_id())
                self.state.record(order.order_id, ids)
            rec = self._record(ids, order)
            for fill in by_order.get(order.order_id, []):
                self._record_fill(rec, fill)
            rec.unreported.clear()
            self._apply_status(rec, order)
            rec.announced, rec.modified = True, False

    def _record(self, ids: IbIds, order: Order) -> OrderRecord:
        inst = self.server.catalog.placeholder(order.symbol)
        trailing = order.order_type is OrderType.TRAILING_STOP
        view = m.OrderView(order_id=ids.order_id, client_id=ids.client_id, perm_id=ids.perm_id, inst=inst,
                           exchange="SMART", action=order.side.value, qty=order.qty,
                           order_type=IB_TYPES.get(order.order_type, "MKT"), lmt_price=_flt(order.limit_price),
                           aux_price=_flt(order.trail_price if trailing else order.stop_price), tif=order.tif.value,
                           account=self.account, order_ref=order.client_order_id,
                           trailing_percent=_flt(order.trail_percent))
        rec = OrderRecord(view=view, client_order_id=order.client_order_id, engine_id=order.order_id)
        self.records[(ids.client_id, ids.order_id)] = rec
        self.by_coid[order.client_order_id] = rec
        return rec

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # -- orders ---------------------------------------------------------------------------------

    def next_order_id(self) -> int:
        return self.max_order_id + 1

    def place(self, session: Session, inst: m.Instrument, req: PlaceOrder) -> None:
        sv, order_id = session.sv, req.order_id
        self.max_order_id = max(self.max_order_id, order_id)
        key = (session.client_id, order_id)
        self.drain()  # fills already made by the engine decide whether this is still a live order
        if key in self.records:
            rec = self.records[key]
            if rec.done:
                session.send(m.error(sv, order_id, 104, f"Can't modify a filled order (order id {order_id})"))
            else:
                self._modify(session, rec, req)
            return
        try:
            neutral = to_neutral(req, inst.symbol)
            refusal = initial_stop_refusal(req, neutral, self._market) or \
                (self.model.margin_refusal(neutral, self._market(inst.symbol)) if self.model.margin else "")
        except (WorkbenchError, ValueError, ArithmeticError) as exc:
            refusal = _reason(exc)
        if not refusal and neutral.client_order_id in self.by_coid:
            refusal = f"orderRef {neutral.client_order_id!r} was already used"
        if refusal:
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:{refusal}"))
            return
        trailing = neutral.order_type.needs_trail
        view = m.OrderView(order_id=order_id, client_id=session.client_id, perm_id=self.state.new_perm_id(),
                           inst=inst, exchange=req.contract["exchange"] or "SMART", action=neutral.side.value,
                           qty=neutral.qty, order_type=IB_TYPES[neutral.order_type], lmt_price=req.lmt_price,
                           aux_price=_flt(neutral.trail_price) if trailing else req.aux_price, tif=neutral.tif.value,
                           account=req.account or self.account, order_ref=req.order_ref,
                           trailing_percent=req.trailing_percent if trailing else None)
        view.status = "PreSubmitted" if _held(neutral.order_type) else "Submitted"
        rec = OrderRecord(view=view, client_order_id=neutral.client_order_id,
                          initial_stop=req.trail_stop_price if trailing else None)
        self.records[key] = rec
        self.by_coid[rec.client_order_id] = rec
        try:
            result = self.engine.submit(neutral)
        except Exception as exc:  # InsufficientFunds, OrderRejected, SymbolNotFound, InvalidOrder...
            del self.records[key]
            del self.by_coid[rec.client_order_id]
            self._discard_events(rec.client_order_id)
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:{_reason(exc)}"))
            return
        rec.engine_id = result.order_id
        if trailing:
            view.trail_stop_price = _flt(result.stop_price)
        self.state.record(result.order_id, IbIds(order_id, session.client_id, view.perm_id))
        self.drain()
        if not rec.announced:  # no engine event (a listener-less engine): report the acknowledgement
            self._report(rec, status_changed=True)

    def _modify(self, session: Session, rec: OrderRecord, req: PlaceOrder) -> None:
        """placeOrder with a live order id: change quantity, prices or trail in the engine, then report it."""
        v = rec.view
        kind = OrderType(v.order_type)
        changes: dict[str, Decimal | None] = {"qty": Decimal(req.total_quantity)}
        try:
            if kind.needs_limit_price:
                changes["limit_price"] = dec(req.lmt_price)
            if kind.needs_stop_price:
                changes["stop_price"] = dec(req.aux_price)
            if kind.needs_trail:
                changes["trail_price"], changes["trail_percent"] = trail(req)
                _check_trail_change(rec, req, changes)
            rest = changes["qty"] - Decimal(str(v.filled or 0))  # what the changed order may still add
            if rest > 0 and self.model.margin:
                pending = to_neutral(req, v.inst.symbol).model_copy(update={"qty": rest})
                margin = self.model.margin_refusal(pending, self._market(v.inst.symbol), replacing=rec.engine_id)
                if margin:
                    raise OrderRejected(margin)
            self.engine.replace(rec.engine_id, **changes)
        except (WorkbenchError, ValueError, ArithmeticError) as exc:
            # 201 would make the client drop a still-live order: refuse the change, not the order.
            finished = getattr(exc, "code", None) == "not_modifiable"
            session.send(m.error(session.sv, v.order_id, 104 if finished else 321,
                                 f"{'Cannot modify a filled order' if finished else 'Order modify refused'}: "
                                 f"{_reason(exc)}"))
            if not finished:
                session.send(m.open_order(session.sv, v))  # the order as it still stands
                session.send(m.order_status(v))
            return
        v.qty, v.lmt_price = changes["qty"], req.lmt_price
        if kind.needs_trail:
            v.aux_price, v.trailing_percent = _flt(changes["trail_price"]), _flt(changes["trail_percent"])
        else:
            v.aux_price = req.aux_price
        rec.modified = True
        self.drain()

    def _market(self, symbol: str) -> Decimal:
        return self.engine.prices.get_market_price(symbol, self.engine.clock())

    def cancel(self, session: Session, order_id: int) -> None:
        rec = self.records.get((session.client_id, order_id)) or self.records.get((RESTORED, order_id))
        if rec is None:
            session.send(m.error(session.sv, order_id, 10147,
                                 f"OrderId {order_id} that needs to be cancelled is not found."))
            return
        if rec.done:
            session.send(m.error(session.sv, order_id, 10148, f"OrderId {order_id} that needs to be cancelled "
                                                              f"cannot be cancelled, state: {rec.view.status}."))
            return
        rec.cancel_requested = True
        self.engine.cancel(rec.engine_id)
        self.drain()

    def cancel_all(self) -> None:
        for rec in list(self.records.values()):
            if not rec.done and rec.engine_id:
                rec.cancel_requested = True
                self.engine.cancel(rec.engine_id)
        self.drain()

    def client_records(self, client_id: int | None, open_only: bool = True) -> list[OrderRecord]:
        """Orders of ``client_id`` (all clients: None), oldest first. Open orders whose client is unknown
        (restored) are adopted by the first client asking, so it can modify and cancel them."""
        out = []
        for key, r in list(self.records.items()):
            if client_id is not None and r.view.client_id == RESTORED and not r.done:
                r.view.client_id = client_id
                self.records[(client_id, r.view.order_id)] = self.records.pop(key)
            if (client_id is None or r.view.client_id == client_id) and (not r.done or not open_only):
                out.append(r)
        return sorted(out, key=lambda r: r.view.perm_id)

    def done_records(self) -> list[OrderRecord]:
        return [r for r in self.records.values() if r.done]

    # -- engine events ------------------------------------------------------------------------

    def _queue(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)
        self.server.wake()

    def _discard_events(self, coid: str) -> None:
        with self._lock:
            keep = [e for e in self._events if _coid(e) != coid]
            self._events.clear()
            self._events.extend(keep)

    def drain(self) -> None:
        """Apply queued engine events, then report each touched order once (loop thread only)."""
        touched: dict[int, tuple[OrderRecord, bool]] = {}
        fills = False
        while True:
            with self._lock:
                if not self._events:
                    break
                event = self._events.popleft()
            rec = self.by_coid.get(_coid(event))
            if isinstance(event, FillEvent):
                if event.exec_id in self._seen_fills:
                    continue
                self._seen_fills.add(event.exec_id)
                self.book.add(event)
                fills = True  # fills from elsewhere move positions too
                if rec is not None:
                    self._record_fill(rec, event)
                    touched.setdefault(id(rec), (rec, False))
            elif rec is not None:
                self._apply_status(rec, event)
                touched[id(rec)] = (rec, True)
        for rec, status_changed in touched.values():
            self._report(rec, status_changed)
        if fills:
            self.server.push_account()

    def _record_fill(self, rec: OrderRecord, fill: FillEvent) -> m.ExecView:
        v = rec.view
        cum = Decimal(str(v.filled)) + fill.qty
        prior = Decimal(str(v.avg_fill_price or 0)) * Decimal(str(v.filled))
        avg = ((prior + fill.qty * fill.price) / cum) if cum else fill.price
        v.filled, v.avg_fill_price, v.last_fill_price = cum, avg.quantize(Decimal("0.000001")), fill.price
        e = m.ExecView(exec_id=self.state.exec_id(v.perm_id, len(rec.execs) + 1), time=ib_time(fill.ts),
                       account=v.account, side="BOT" if fill.side is Side.BUY else "SLD", shares=fill.qty,
                       price=fill.price, cum_qty=cum, avg_price=v.avg_fill_price, commission=fill.commission)
        rec.execs.append(e)
        rec.unreported.append(e)
        return e

    def _apply_status(self, rec: OrderRecord, order: Order) -> None:
        v = rec.view
        status = order.status
        if status is OrderStatus.FILLED:
            v.status = "Filled"
        elif status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            v.status = "Cancelled"
        elif status is OrderStatus.REJECTED:
            v.status = "Inactive"
        elif _held(order.order_type) and order.raw_status not in ("triggered",) and not order.filled_qty:
            v.status = "PreSubmitted"
        else:
            v.status = "Submitted"
        if order.avg_fill_price is not None:
            v.avg_fill_price = order.avg_fill_price
        v.filled = order.filled_qty
        v.raw_status = order.raw_status
        if order.order_type.needs_trail and _flt(order.stop_price) != v.trail_stop_price:
            v.trail_stop_price = _flt(order.stop_price)  # the stop followed the price: openOrder carries it
            rec.modified |= rec.announced
        if status.is_terminal:
            rec.done = True
            v.completed_time = ib_time(order.updated_at)

    def _report(self, rec: OrderRecord, status_changed: bool) -> None:
        """openOrder (when new, modified or filled), execDetails, orderStatus, then commission reports."""
        v = rec.view
        session = self.server.session_for(v.client_id)
        execs, rec.unreported = rec.unreported, []
        if session is None:
            rec.announced = True
            return
        sv = session.sv
        if not rec.announced or rec.modified or v.status == "Filled":
            session.send(m.open_order(sv, v))
        rec.announced, rec.modified = True, False
        for e in execs:
            session.send(m.exec_details(sv, -1, v, e))
        session.send(m.order_status(v))
        for e in execs:
            session.send(m.commission_report(e))
        if status_changed and v.status == "Inactive":
            session.send(m.error(sv, v.order_id, 201, f"Order rejected - reason:{v.raw_status}"))
        elif status_changed and v.status == "Cancelled" and rec.cancel_requested:
            session.send(m.error(sv, v.order_id, 202, "Order Canceled - reason:"))

    # -- account ------------------------------------------------------------------------------

    def portfolio_rows(self) -> list[list[Any]]:
        out = []
        today = session_day(self.engine.clock())
        positions = self.engine.positions()
        for p in positions:
            inst = self.server.catalog.placeholder(p.symbol)
            price = p.market_price if p.market_price is not None else p.avg_price
            value = p.market_value if p.market_value is not None else p.qty * p.avg_price
            out.append(m.portfolio_value(self.account, inst, p.qty, price, value, p.avg_price,
                                         p.unrealized_pnl or 0, self.book.realized_today(p.symbol, today)))
        for sym in sorted(self.traded_symbols() - {p.symbol for p in positions}):  # closed: a zero row, as IB
            out.append(m.portfolio_value(self.account, self.server.catalog.placeholder(sym), 0, 0, 0, 0, 0,
                                         self.book.realized_today(sym, today)))  # sends (clients drop it then)
        return out

    def position_rows(self, closed: set[str] = frozenset()) -> list[list[Any]]:  # type: ignore[assignment]
        out = []
        held = {p.symbol: p for p in self.engine.positions()}
        for sym in sorted(set(held) | set(closed)):
            inst = self.server.catalog.placeholder(sym)
            p = held.get(sym)
            out.append(m.position(self.account, inst, p.qty if p else 0, p.avg_price if p else 0))
        return out

    def traded_symbols(self) -> set[str]:
        return set(self.book.symbols)


def _coid(event: Any) -> str:
    return event.local_id if isinstance(event, FillEvent) else event.client_order_id


def _reason(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc)


def _flt(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _held(kind: OrderType) -> bool:
    """Stop orders wait untriggered as PreSubmitted, as IB shows them."""
    return kind.needs_stop_price or kind.needs_trail


def _check_trail_change(rec: OrderRecord, req: PlaceOrder, changes: dict[str, Decimal | None]) -> None:
    """A modify of a TRAIL order may change its quantity and trail, but not its initial stop (trailStopPrice):
    the stop already follows the price. The trail of an order placed with an initial stop stays as it is."""
    v = rec.view
    if req.trail_stop_price not in (None, rec.initial_stop, v.trail_stop_price):
        raise InvalidOrder(f"trailStopPrice cannot change on a working TRAIL order (its stop is {v.trail_stop_price} "
                           f"and follows the price)", field="trailStopPrice")
    same = (changes["trail_price"], changes["trail_percent"]) == (dec(v.aux_price), dec(v.trailing_percent))
    if rec.initial_stop is not None and not same:
        raise InvalidOrder("the trail of a TRAIL order placed with a trailStopPrice cannot change (its initial stop "
                           "would no longer hold); cancel it and place a new one", field="auxPrice")
