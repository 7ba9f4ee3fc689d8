"""The paper-engine side of the emulator: instruments, IB order records, engine events -> messages.

Everything here runs on the emulator's event loop thread. Engine listeners may fire on any thread:
they only queue the event and wake the loop; :meth:`Bridge.drain` turns queued events into messages.
"""

from __future__ import annotations

import itertools
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import WorkbenchError
from workbench.core.models import FillEvent, NeutralOrder, Order, new_client_order_id

from . import messages as m
from .codec import ib_time

if TYPE_CHECKING:
    from .server import Session, TwsEmulator

#: client_id of orders rebuilt from the ledger after a restart (their placing client is unknown).
RESTORED = -1
ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF", "XLK", "EEM", "VTI", "VOO", "IVV"})
IB_TYPES = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STP LMT"}


@dataclass
class OrderRecord:
    view: m.OrderView
    client_order_id: str
    engine_id: str = ""
    execs: list[m.ExecView] = field(default_factory=list)
    cancel_requested: bool = False
    done: bool = False


def con_id_for(symbol: str) -> int:
    """A stable conId per symbol (same across runs)."""
    return 100_000 + zlib.crc32(symbol.upper().encode()) % 89_900_000


class Bridge:
    def __init__(self, server: TwsEmulator) -> None:
        self.server = server
        self.engine = server.engine
        self.prices = server.engine.prices
        self.account = server.accounts[0]
        self.records: dict[tuple[int, int], OrderRecord] = {}
        self.by_coid: dict[str, OrderRecord] = {}
        self._perm = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self.max_order_id = 0
        self._events: deque[Any] = deque()
        self._lock = threading.Lock()
        self._unsubscribe = [self.engine.add_fill_listener(self._queue), self.engine.add_order_listener(self._queue)]
        self.restore()

    def restore(self) -> None:
        """Rebuild IB order records from the engine's ledger, so a restarted gateway still knows earlier
        orders and executions (reported to whichever client asks; open ones are adopted by it)."""
        fills: dict[str, list[FillEvent]] = {}
        for fill in self.engine.fills():
            fills.setdefault(fill.broker_id, []).append(fill)
        for order in reversed(self.engine.orders()):
            inst = self.instrument(order.symbol) or m.Instrument(order.symbol, con_id_for(order.symbol))
            digits = "".join(ch for ch in order.order_id if ch.isdigit())
            order_id = int(digits) if digits else self.max_order_id + 1
            self.max_order_id = max(self.max_order_id, order_id)
            view = m.OrderView(order_id=order_id, client_id=RESTORED, perm_id=next(self._perm), inst=inst,
                               exchange="SMART", action=order.side.value, qty=order.qty,
                               order_type=IB_TYPES[order.order_type], lmt_price=_flt(order.limit_price),
                               aux_price=_flt(order.stop_price), tif=order.tif.value, account=self.account,
                               order_ref=order.client_order_id)
            rec = OrderRecord(view=view, client_order_id=order.client_order_id, engine_id=order.order_id)
            self.records[(RESTORED, order_id)] = rec
            self.by_coid[order.client_order_id] = rec
            for fill in fills.get(order.order_id, []):
                self._record_fill(rec, fill)
            self._apply_status(rec, order)
    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # -- instruments --------------------------------------------------------------------------

    def instrument(self, symbol: str) -> m.Instrument | None:
        sym = (symbol or "").strip().upper()
        if not sym or not self._known(sym):
            return None
        etf = sym in ETFS
        return m.Instrument(symbol=sym, con_id=con_id_for(sym), primary_exchange="ARCA" if etf else "NASDAQ",
                            trading_class=sym if etf else "NMS")

    def _known(self, sym: str) -> bool:
        has = getattr(self.prices, "has_symbol", None)
        if has is not None:
            return bool(has(sym))
        try:
            self.prices.get_market_price(sym)
            return True
        except Exception:
            return False

    def by_con_id(self, con_id: int) -> m.Instrument | None:
        symbols = getattr(self.prices, "symbols", lambda: [])()
        symbols = set(symbols) | {p.symbol for p in self.engine.positions()} | {r.view.inst.symbol for r in
                                                                                 self.records.values()}
        for sym in symbols:
            if con_id_for(sym) == con_id:
                return self.instrument(sym)
        return None

    def resolve(self, con_id: int, symbol: str, sec_type: str = "", currency: str = "",
                primary: str = "") -> m.Instrument | None:
        inst = self.by_con_id(con_id) if con_id else self.instrument(symbol)
        if inst is None:
            return None
        if sec_type and sec_type != inst.sec_type or currency and currency != inst.currency:
            return None
        if primary and primary not in (inst.primary_exchange, "SMART"):
            return None
        return inst

    def now(self) -> datetime:
        return self.engine.clock()

    # -- orders ---------------------------------------------------------------------------------

    def next_order_id(self) -> int:
        return self.max_order_id + 1

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
            side = Side(action)
            kind = OrderType(ib_type)
            neutral = NeutralOrder(symbol=inst.symbol, side=side, qty=Decimal(qty), order_type=kind,
                                   tif=TimeInForce(tif or "DAY"),
                                   limit_price=_dec(lmt) if kind.needs_limit_price else None,
                                   stop_price=_dec(aux) if kind.needs_stop_price else None,
                                   client_order_id=order_ref or new_client_order_id())
        except (WorkbenchError, ValueError, ArithmeticError) as exc:
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:{exc}"))
            return
        view = m.OrderView(order_id=order_id, client_id=session.client_id, perm_id=next(self._perm), inst=inst,
                           exchange=exchange or "SMART", action=side.value, qty=neutral.qty,
                           order_type=IB_TYPES[kind], lmt_price=lmt, aux_price=aux, tif=neutral.tif.value,
                           account=account or self.account, order_ref=order_ref)
        if neutral.client_order_id in self.by_coid:
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:orderRef "
                                                     f"{neutral.client_order_id!r} was already used"))
            return
        rec = OrderRecord(view=view, client_order_id=neutral.client_order_id)
        self.records[key] = rec
        self.by_coid[rec.client_order_id] = rec
        try:
            result = self.engine.submit(neutral)
        except Exception as exc:  # InsufficientFunds, OrderRejected, SymbolNotFound, InvalidOrder...
            del self.records[key]
            del self.by_coid[rec.client_order_id]
            self._discard_events(rec.client_order_id)
            message = getattr(exc, "message", None) or str(exc)
            session.send(m.error(sv, order_id, 201, f"Order rejected - reason:{message}"))
            return
        rec.engine_id = result.order_id
        view.status = "PreSubmitted" if kind.needs_stop_price else "Submitted"
        session.send(m.open_order(sv, view))
        filled_view = m.OrderView(**{**view.__dict__, "status": view.status, "filled": 0, "avg_fill_price": 0})
        session.send(m.order_status(filled_view))
        self.drain()

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
            message = getattr(exc, "message", None) or str(exc)
            finished = getattr(exc, "code", None) == "not_modifiable"
            session.send(m.error(session.sv, v.order_id, 104 if finished else 321,
                                 f"{'Cannot modify a filled order' if finished else 'Order modify refused'}: {message}"))
            if not finished:
                session.send(m.open_order(session.sv, v))  # the order as it still stands
                session.send(m.order_status(v))
            return
        v.qty, v.lmt_price, v.aux_price = Decimal(qty), lmt, aux
        if not rec.done:
            session.send(m.open_order(session.sv, v))
            session.send(m.order_status(v))
        self.drain()

    def cancel(self, session: Session, order_id: int) -> None:
        rec = self.records.get((session.client_id, order_id)) or self.records.get((RESTORED, order_id))
        if rec is not None and rec.view.client_id not in (session.client_id, RESTORED):
            rec = None  # another client's order
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

    def open_records(self, client_id: int | None) -> list[OrderRecord]:
        out = []
        for r in list(self.records.values()):
            if r.done:
                continue
            if client_id is not None and r.view.client_id == RESTORED:  # adopted by the first client asking
                r.view.client_id = client_id
                self.records[(client_id, r.view.order_id)] = self.records.pop((RESTORED, r.view.order_id))
            if client_id is None or r.view.client_id == client_id:
                out.append(r)
        return out

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
        """Turn queued engine events into messages (loop thread only)."""
        touched = False
        while True:
            with self._lock:
                if not self._events:
                    break
                event = self._events.popleft()
            rec = self.by_coid.get(_coid(event))
            touched = touched or isinstance(event, FillEvent)  # fills from elsewhere move positions too
            if rec is None:
                continue
            if isinstance(event, FillEvent):
                self._on_fill(rec, event)
            else:
                self._on_order(rec, event)
        if touched:
            self.push_account()

    def _record_fill(self, rec: OrderRecord, fill: FillEvent) -> m.ExecView:
        v = rec.view
        cum = Decimal(str(v.filled)) + fill.qty
        prior = Decimal(str(v.avg_fill_price or 0)) * Decimal(str(v.filled))
        avg = ((prior + fill.qty * fill.price) / cum) if cum else fill.price
        v.filled, v.avg_fill_price, v.last_fill_price = cum, avg.quantize(Decimal("0.000001")), fill.price
        e = m.ExecView(exec_id=f"0000e0d5.{v.perm_id:08x}.{next(self._exec_seq):02d}.01", time=ib_time(fill.ts),
                       account=v.account, side="BOT" if fill.side is Side.BUY else "SLD", shares=fill.qty,
                       price=fill.price, cum_qty=cum, avg_price=v.avg_fill_price, commission=fill.commission)
        rec.execs.append(e)
        return e

    def _on_fill(self, rec: OrderRecord, fill: FillEvent) -> None:
        e = self._record_fill(rec, fill)
        v = rec.view
        session = self.server.session_for(v.client_id)
        if session is not None:
            session.send(m.exec_details(session.sv, -1, v, e))
            session.pending_commissions.append(e)

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
        if status.is_terminal:
            rec.done = True
            v.completed_time = ib_time(order.updated_at)

    def _on_order(self, rec: OrderRecord, order: Order) -> None:
        self._apply_status(rec, order)
        v, status = rec.view, order.status
        session = self.server.session_for(v.client_id)
        if session is None:
            return
        sv = session.sv
        if status is OrderStatus.FILLED:
            session.send(m.open_order(sv, v))
        session.send(m.order_status(v))
        if status is OrderStatus.REJECTED:
            session.send(m.error(sv, v.order_id, 201, f"Order rejected - reason:{order.raw_status}"))
        elif status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED) and rec.cancel_requested:
            session.send(m.error(sv, v.order_id, 202, "Order Canceled - reason:"))
        while session.pending_commissions:
            session.send(m.commission_report(session.pending_commissions.pop(0)))

    # -- account ------------------------------------------------------------------------------

    def account_rows(self, account: str | None = None) -> list[tuple[str, Any, str]]:
        if account not in (None, self.account):  # other managed accounts: empty (the engine is the first)
            return [("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD"),
                    *((key, 0, "USD") for key in ("NetLiquidation", "TotalCashValue", "BuyingPower"))]
        info = self.engine.account()
        positions = self.engine.positions()
        gross = sum((abs(p.market_value or p.qty * p.avg_price) for p in positions), Decimal(0))
        unreal = sum((p.unrealized_pnl or Decimal(0) for p in positions), Decimal(0))
        rows: list[tuple[str, Any, str]] = [("AccountCode", self.account, ""), ("AccountType", "INDIVIDUAL", ""),
                                            ("Currency", "USD", "USD")]
        for key, value in (("NetLiquidation", info.equity), ("TotalCashValue", info.cash),
                           ("CashBalance", info.cash), ("SettledCash", info.cash),
                           ("BuyingPower", info.buying_power), ("AvailableFunds", info.buying_power),
                           ("ExcessLiquidity", info.buying_power), ("EquityWithLoanValue", info.equity),
                           ("GrossPositionValue", gross), ("UnrealizedPnL", unreal), ("RealizedPnL", 0),
                           ("InitMarginReq", 0), ("MaintMarginReq", 0)):
            rows.append((key, value, "USD"))
        return rows

    def portfolio_rows(self) -> list[list[Any]]:
        out = []
        for p in self.engine.positions():
            inst = self.instrument(p.symbol) or m.Instrument(p.symbol, con_id_for(p.symbol))
            price = p.market_price if p.market_price is not None else p.avg_price
            value = p.market_value if p.market_value is not None else p.qty * p.avg_price
            out.append(m.portfolio_value(self.account, inst, p.qty, price, value, p.avg_price,
                                         p.unrealized_pnl or 0, 0))
        return out

    def position_rows(self, closed: set[str] = frozenset()) -> list[list[Any]]:  # type: ignore[assignment]
        out = []
        held = {p.symbol: p for p in self.engine.positions()}
        for sym in sorted(set(held) | set(closed)):
            inst = self.instrument(sym) or m.Instrument(sym, con_id_for(sym))
            p = held.get(sym)
            out.append(m.position(self.account, inst, p.qty if p else 0, p.avg_price if p else 0))
        return out

    def push_account(self) -> None:
        """After fills: position to reqPositions subscribers, portfolio + values to account subscribers."""
        traded = {r.view.inst.symbol for r in self.records.values() if r.execs}
        positions = portfolio = values = None
        for session in self.server.live_sessions():
            if session.positions_sub:
                positions = positions if positions is not None else self.position_rows(traded)
                for row in positions:
                    session.send(row)
            if session.account_sub:
                portfolio = portfolio if portfolio is not None else self.portfolio_rows()
                values = values if values is not None else self.account_rows()
                for row in portfolio:
                    session.send(row)
                for key, value, cur in values:
                    session.send(m.account_value(key, value, cur, self.account))
                session.send(m.account_update_time(self.now().strftime("%H:%M")))


def _coid(event: Any) -> str:
    return event.local_id if isinstance(event, FillEvent) else event.client_order_id


def _flt(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))
