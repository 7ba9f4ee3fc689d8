"""Request handlers: ``HANDLERS[msgId](session, fields)``. Field indices follow the protocol reference §5.

This module: connection, account, positions, orders and executions; :mod:`.handlers_data` registers
contracts, market data and history; everything else is answered by :mod:`.unsupported`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.errors import WorkbenchError

from . import messages as m
from .codec import to_int
from .history import HistoryError, parse_end
from .orders import parse_place_order, to_neutral

if TYPE_CHECKING:
    from .server import Session, TwsEmulator

log = logging.getLogger(__name__)

HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {}
NO_SECDEF = "No security definition has been found for the request"
SUPPORTED_ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})


def handles(*msg_ids: int) -> Callable[[Callable[[Session, list[str]], None]], Callable[[Session, list[str]], None]]:
    def register(fn: Callable[[Session, list[str]], None]) -> Callable[[Session, list[str]], None]:
        for msg_id in msg_ids:
            HANDLERS[msg_id] = fn
        return fn
    return register


def _bridge(s: Session) -> Any:
    return s.server.bridge


# -- connection -----------------------------------------------------------------------------

@handles(71)
def start_api(s: Session, f: list[str]) -> None:
    if not s.started:
        s.start_api(to_int(f[2]))


@handles(8)
def req_ids(s: Session, f: list[str]) -> None:
    s.send(m.next_valid_id(_bridge(s).next_order_id()))


@handles(17)
def req_managed_accounts(s: Session, f: list[str]) -> None:
    s.send(m.managed_accounts(s.server.accounts))


@handles(49)
def req_current_time(s: Session, f: list[str]) -> None:
    s.send(m.current_time(int(_bridge(s).engine.clock().timestamp())))


@handles(15)
def req_auto_open_orders(s: Session, f: list[str]) -> None:
    """clientId 0 binds orders placed elsewhere: nothing to do, every order already has an owner."""


@handles(59)
def req_market_data_type(s: Session, f: list[str]) -> None:
    s.market_data_type = to_int(f[2]) or 1


# -- account and positions ----------------------------------------------------------------

@handles(61)
def req_positions(s: Session, f: list[str]) -> None:
    s.subs.positions = True
    for row in _bridge(s).position_rows():
        s.send(row)
    s.send(m.position_end())


@handles(64)
def cancel_positions(s: Session, f: list[str]) -> None:
    s.subs.positions = False


@handles(74)
def req_positions_multi(s: Session, f: list[str]) -> None:
    req_id, b = to_int(f[2]), _bridge(s)
    for p in b.engine.positions():
        s.send(m.position_multi(req_id, b.account, s.server.catalog.placeholder(p.symbol), p.qty, p.avg_price))
    s.send(m.position_multi_end(req_id))


@handles(75, 77)
def cancel_multi(s: Session, f: list[str]) -> None:
    s.subs.account_multi.pop(to_int(f[2]), None)


def _account(s: Session, code: str) -> str:
    """The managed account a request names (the first one when it names none or another)."""
    return code if code in s.server.accounts else s.server.accounts[0]


@handles(6)
def req_account_updates(s: Session, f: list[str]) -> None:
    b = _bridge(s)
    if not to_int(f[2]):
        s.subs.account = False
        return
    account = _account(s, f[3] if len(f) > 3 else "")
    s.subs.account = account == b.account  # the other managed accounts are empty: nothing changes there
    _send_account(s, b, account)
    s.send(m.account_download_end(account))


def _send_account(s: Session, b: Any, account: str) -> None:
    for key, value, cur in b.model.account_rows(account):
        s.send(m.account_value(key, value, cur, account))
    for row in b.portfolio_rows() if account == b.account else ():
        s.send(row)
    s.send(m.account_update_time(b.engine.clock().strftime("%H:%M")))


@handles(76)
def req_account_updates_multi(s: Session, f: list[str]) -> None:
    req_id, b = to_int(f[2]), _bridge(s)
    account = _account(s, f[3] if len(f) > 3 else "")
    s.subs.account_multi[req_id] = account
    _send_multi(s, b, req_id, account)
    s.send(m.account_update_multi_end(req_id))


def _send_multi(s: Session, b: Any, req_id: int, account: str) -> None:
    for key, value, cur in b.model.account_rows(account):
        s.send(m.account_update_multi(req_id, account, key, value, cur))


@handles(62)
def req_account_summary(s: Session, f: list[str]) -> None:
    req_id, tags = to_int(f[2]), f[4] if len(f) > 4 else ""
    s.subs.summary[req_id] = tags
    _send_summary(s, _bridge(s), req_id, tags)


def _send_summary(s: Session, b: Any, req_id: int, tags: str) -> None:
    """The group "All": every managed account (the ones beyond the engine's are empty)."""
    for account in s.server.accounts:
        for key, value, cur in b.model.summary_rows(tags, account):
            s.send(m.account_summary(req_id, account, key, value, cur))
    s.send(m.account_summary_end(req_id))


@handles(63)
def cancel_account_summary(s: Session, f: list[str]) -> None:
    s.subs.summary.pop(to_int(f[2]), None)


def push_account(server: TwsEmulator) -> None:
    """Positions, portfolio, account values and summaries to their subscribers."""
    b = server.bridge
    positions = None
    for s in server.live_sessions():
        if s.subs.positions:
            positions = positions if positions is not None else b.position_rows(b.traded_symbols())
            for row in positions:
                s.send(row)
        if s.subs.account:
            _send_account(s, b, b.account)
        for req_id, account in list(s.subs.account_multi.items()):
            _send_multi(s, b, req_id, account)
            s.send(m.account_update_multi_end(req_id))
        for req_id, tags in list(s.subs.summary.items()):
            _send_summary(s, b, req_id, tags)


# -- orders ---------------------------------------------------------------------------------

@handles(3)
def place_order(s: Session, f: list[str]) -> None:
    b = _bridge(s)
    order_id = to_int(f[1])
    b.max_order_id = max(b.max_order_id, order_id)
    try:
        req = parse_place_order(f, s.sv)
    except ValueError as exc:
        s.error(order_id, 321, f"Error validating request:-'bN' : cause - {exc}")
        return
    unsupported = ("combo (BAG) orders are" if req.combo_legs or req.contract["secType"] == "BAG" else
                   "order conditions are" if req.conditions else
                   "bracket / child orders (transmit=False or parentId) are" if not req.transmit or req.parent_id
                   else f"OCA groups (ocaGroup={req.oca_group!r}) are" if req.oca_group else
                   f"{req.order_type} orders are" if req.order_type not in SUPPORTED_ORDER_TYPES else
                   "algo orders are" if req.algo_strategy else
                   "hedge orders are" if req.hedge_type or req.delta_neutral else "")
    if unsupported:
        s.error(order_id, 201, f"Order rejected - reason:{unsupported} not supported by the workbench emulator "
                               f"(market, limit, stop, stop-limit and trailing-stop (TRAIL) orders are)")
        return
    c = req.contract
    inst = s.server.catalog.resolve(to_int(c["conId"]), c["symbol"] or c["localSymbol"], c["secType"], c["currency"],
                                    extra=b.traded_symbols())
    if inst is None:
        s.error(order_id, 200, NO_SECDEF)
        return
    if req.what_if:
        _what_if(s, b, order_id, inst, req)
        return
    b.place(s, inst, req)


def _what_if(s: Session, b: Any, order_id: int, inst: m.Instrument, req: Any) -> None:
    """whatIfOrder: the order's margin impact and commission, from the paper rules; nothing is placed. Priced at
    what the order would fill at (see :meth:`AccountModel.expected_fill`). An order the paper engine would refuse
    gets a 201 only; one beyond a margin account's margin gets its numbers and then the 201, as IB sends them."""
    try:
        order = to_neutral(req, inst.symbol)
        market = b.engine.prices.get_market_price(inst.symbol, b.engine.clock())
        refusal = _refusal(b, order, order.limit_price or order.stop_price or market)  # what the engine reserves at
        margin = "" if refusal else b.model.margin_refusal(order, market)
    except (WorkbenchError, ValueError, ArithmeticError) as exc:
        s.error(order_id, 201, f"Order rejected - reason:{getattr(exc, 'message', None) or exc}")
        return
    if refusal:
        s.error(order_id, 201, f"Order rejected - reason:{refusal}")
        return
    state = b.model.what_if(order, market)
    view = m.OrderView(order_id=order_id, client_id=s.client_id, perm_id=0, inst=inst, exchange="SMART",
                       action=order.side.value, qty=order.qty, order_type=req.order_type, lmt_price=req.lmt_price,
                       aux_price=req.aux_price, tif=order.tif.value, account=req.account or b.account,
                       order_ref=req.order_ref, status="PreSubmitted")
    s.send(m.open_order(s.sv, view, what_if=state))
    if margin:
        s.error(order_id, 201, f"Order rejected - reason:{margin}")


def _refusal(b: Any, order: Any, price: Decimal) -> str:
    """Why the paper engine would refuse ``order`` (empty if it would accept it)."""
    config = b.engine.config
    if order.side.value == "BUY":
        need = order.qty * price * (1 + config.slippage_bps / Decimal(10_000)) + config.commission.for_fill(order.qty)
        power = b.engine.account().buying_power
        return f"buying {order.qty} {order.symbol} needs about {need:.2f}, buying power is {power:.2f}" \
            if need > power else ""
    if config.allow_short:
        return ""
    held = getattr(b.engine.position(order.symbol), "qty", Decimal(0))
    selling = sum((o.qty - o.filled_qty for o in b.engine.open_orders()
                   if o.symbol == order.symbol and o.side.value == "SELL"), Decimal(0))
    if order.qty > held - selling:
        return (f"selling {order.qty} {order.symbol} exceeds the position available ({held - selling}); this is a "
                f"cash account (start the emulator with --margin to sell short)")
    return ""


@handles(4)
def cancel_order(s: Session, f: list[str]) -> None:
    _bridge(s).cancel(s, to_int(f[2]))


@handles(58)
def global_cancel(s: Session, f: list[str]) -> None:
    _bridge(s).cancel_all()


@handles(5)
def req_open_orders(s: Session, f: list[str]) -> None:
    """This client's open orders, and its finished ones (with their order ids, which completedOrder lacks)."""
    _send_orders(s, _bridge(s).client_records(s.client_id, open_only=False))


@handles(16)
def req_all_open_orders(s: Session, f: list[str]) -> None:
    _send_orders(s, _bridge(s).client_records(None))


def _send_orders(s: Session, records: list[Any]) -> None:
    for rec in records:
        s.send(m.open_order(s.sv, rec.view))
        s.send(m.order_status(rec.view))
    s.send(m.open_order_end())


@handles(99)
def req_completed_orders(s: Session, f: list[str]) -> None:
    for rec in sorted(_bridge(s).done_records(), key=lambda r: r.view.perm_id):
        s.send(m.completed_order(s.sv, rec.view))
    s.send(m.completed_orders_end())


@handles(7)
def req_executions(s: Session, f: list[str]) -> None:
    """reqExecutions with its filter: clientId, account, time (since), symbol, secType, exchange, side."""
    req_id = to_int(f[2])
    client, account, since_text, symbol, sec_type, exchange, side = (f + [""] * 10)[3:10]
    client_filter = to_int(client)
    try:
        since = _since(since_text, _bridge(s).engine.clock())
    except HistoryError as exc:
        s.error(req_id, 321, f"Error validating request:-'bC' : cause - {exc}")
        s.send(m.exec_details_end(req_id))
        return
    records = sorted(_bridge(s).records.values(), key=lambda r: r.view.perm_id)
    for rec in records:
        v = rec.view
        if client_filter and v.client_id != client_filter or symbol and v.inst.symbol != symbol.upper() \
                or account and v.account != account or sec_type and sec_type.upper() != v.inst.sec_type \
                or exchange and exchange.upper() not in ("SMART", v.inst.primary_exchange):
            continue
        for e in rec.execs:
            if side and side.upper() not in (e.side, v.action) or since is not None and _exec_time(e) < since:
                continue
            s.send(m.exec_details(s.sv, req_id, v, e))
            s.send(m.commission_report(e))
    s.send(m.exec_details_end(req_id))


def _since(text: str, now: datetime) -> datetime | None:
    """ExecutionFilter.time: ``yyyymmdd hh:mm:ss[ tz]`` (the gateway's zone, UTC here) or ``yyyymmdd-hh:mm:ss``."""
    return parse_end(text, now) if text.strip() else None


def _exec_time(e: m.ExecView) -> datetime:
    return parse_end(e.time, datetime.min)
