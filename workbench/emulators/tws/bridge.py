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

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import WorkbenchError
from workbench.core.models import FillEvent, NeutralOrder, Order, new_client_order_id

from . import messages as m
from .account import AccountModel, PnlBook, session_day
from .codec import ib_time
from .state import GatewayState, IbIds

if TYPE_CHECKING:
    from .server import Session, TwsEmulator

#: client_id of restored orders whose placing client is unknown (placed through the engine directly).
RESTORED = -1
IB_TYPES = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STP LMT",
            OrderType.TRAILING_STOP: "TRAIL"}  # TRAIL only for orders placed on the engine directly


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
            rec.announced = True

    def _record(self, ids: IbIds, order: Order) -> OrderRecord:
        inst = self.server.catalog.placeholder(order.symbol)
        view = m.OrderView(order_id=ids.order_id, client_id=ids.client_id, perm_id=ids.perm_id, inst=inst,
                           exchange="SMART", action=order.side.value, qty=order.qty,
                           order_type=IB_TYPES.get(order.order_type, "MKT"), lmt_price=_flt(order.limit_price),
                           aux_price=_flt(order.stop_price), tif=order.tif.value, account=self.account,
                           order_ref=order.client_order_id)
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

    def neutral(self, inst: m.Instrument, action: str, qty: str, ib_type: str, lmt: float | None,
                aux: float | None, tif: str, order_ref: str) -> NeutralOrder:
        """The neutral order of a placeOrder (raises WorkbenchError/ValueError on bad fields)."""
        kind = OrderType(ib_type)
        return NeutralOrder(symbol=inst.symbol, side=Side(action), qty=Decimal(qty), order_type=kind,
                            tif=TimeInForce(tif or "DAY"), limit_price=_dec(lmt) if kind.needs_limit_price else None,
                            stop_price=_dec(aux) if kind.needs_stop_price else None,
                            client_order_id=order_ref or new_client_order_id())

    def place(self, session: Session, order_id: int, inst: m.Instrument, exchange: str, action: str, qty: str,
              ib_type: str, lmt: float | None, aux: float | None, tif: str, account: str, order_ref: str) -> None:
        sv = session.sv
        self.max_order_id = max(self.max_order_id, order_id)
        key = (session.client_id, order_id)
        self.drain()  # fills already made by the engine decide whether this is still a live order
        if key in self.records:
            rec = self.records[key]
            if rec.done:
                session.send(m.error(sv, order_id, 104, f"Can't modify a filled order (order id {order_id})"))
            else:
                self._modify(session, rec, qty, lmt, aux)
            return
        try:
            neutral = self.neutral(inst, action, qty, ib_type, lmt, aux, tif, order_ref)
        except (WorkbenchError, ValueError, ArithmeticError) as exc:
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:{_reason(exc)}"))
            return
        if neutral.client_order_id in self.by_coid:
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:orderRef "
                                                     f"{neutral.client_order_id!r} was already used"))
            return
        view = m.OrderView(order_id=order_id, client_id=session.client_id, perm_id=self.state.new_perm_id(),
                           inst=inst, exchange=exchange or "SMART", action=neutral.side.value, qty=neutral.qty,
                           order_type=IB_TYPES[neutral.order_type], lmt_price=lmt, aux_price=aux,
                           tif=neutral.tif.value, account=account or self.account, order_ref=order_ref)
        view.status = "PreSubmitted" if neutral.order_type.needs_stop_price else "Submitted"
        rec = OrderRecord(view=view, client_order_id=neutral.client_order_id)
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
        self.state.record(result.order_id, IbIds(order_id, session.client_id, view.perm_id))
        self.drain()
        if not rec.announced:  # no engine event (a listener-less engine): report the acknowledgement
            self._report(rec, status_changed=True)

    def _modify(self, session: Session, rec: OrderRecord, qty: str, lmt: float | None, aux: float | None) -> None:
        """placeOrder with a live order id: change quantity and prices in the engine, then report the order."""
        v = rec.view
        kind = OrderType(v.order_type)
        try:
            self.engine.replace(rec.engine_id, qty=Decimal(qty),
                                limit_price=_dec(lmt) if kind.needs_limit_price else None,
                                stop_price=_dec(aux) if kind.needs_stop_price else None)
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
        v.qty, v.lmt_price, v.aux_price = Decimal(qty), lmt, aux
        rec.modified = True
        self.drain()

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
        elif order.order_type.needs_stop_price and order.raw_status not in ("triggered",) and not order.filled_qty:
            v.status = "PreSubmitted"
        else:
            v.status = "Submitted"
        if order.avg_fill_price is not None:
            v.avg_fill_price = order.avg_fill_price
        v.filled = order.filled_qty
        v.raw_status = order.raw_status
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
        for p in self.engine.positions():
            inst = self.server.catalog.placeholder(p.symbol)
            price = p.market_price if p.market_price is not None else p.avg_price
            value = p.market_value if p.market_value is not None else p.qty * p.avg_price
            out.append(m.portfolio_value(self.account, inst, p.qty, price, value, p.avg_price,
                                         p.unrealized_pnl or 0, self.book.realized_today(p.symbol, today)))
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


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))
