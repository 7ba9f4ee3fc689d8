"""Request handlers: ``HANDLERS[msgId](session, fields)``. Field indices follow the protocol reference §5."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import market
from . import messages as m
from .codec import to_int
from .orders import parse_place_order

if TYPE_CHECKING:
    from .server import Session

log = logging.getLogger(__name__)

HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {}
NO_SECDEF = "No security definition has been found for the request"


def handles(msg_id: int) -> Callable[[Callable[[Session, list[str]], None]], Callable[[Session, list[str]], None]]:
    def register(fn: Callable[[Session, list[str]], None]) -> Callable[[Session, list[str]], None]:
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
    s.send(m.current_time(int(_bridge(s).now().timestamp())))


for _ignored in (15, 77, 63, 25):  # autoOpenOrders and cancels without a reply
    HANDLERS[_ignored] = lambda s, f: None


@handles(59)
def req_market_data_type(s: Session, f: list[str]) -> None:
    s.market_data_type = to_int(f[2]) or 1


# -- account and positions ----------------------------------------------------------------

@handles(61)
def req_positions(s: Session, f: list[str]) -> None:
    s.positions_sub = True
    for row in _bridge(s).position_rows():
        s.send(row)
    s.send(m.position_end())


@handles(64)
def cancel_positions(s: Session, f: list[str]) -> None:
    s.positions_sub = False


@handles(6)
def req_account_updates(s: Session, f: list[str]) -> None:
    b = _bridge(s)
    if not to_int(f[2]):
        s.account_sub = False
        return
    account = f[3] if len(f) > 3 and f[3] in s.server.accounts else b.account
    s.account_sub = account == b.account  # later pushes carry the first account's values
    for key, value, cur in b.account_rows(account):
        s.send(m.account_value(key, value, cur, account))
    for row in b.portfolio_rows() if account == b.account else ():
        s.send(row)
    s.send(m.account_update_time(b.now().strftime("%H:%M")))
    s.send(m.account_download_end(account))


@handles(76)
def req_account_updates_multi(s: Session, f: list[str]) -> None:
    req_id, b = to_int(f[2]), _bridge(s)
    account = f[3] if len(f) > 3 and f[3] in s.server.accounts else b.account
    for key, value, cur in b.account_rows(account):
        if cur and not isinstance(value, str):
            s.send(m.account_update_multi(req_id, account, key, value, cur))
    s.send(m.account_update_multi_end(req_id))


@handles(62)
def req_account_summary(s: Session, f: list[str]) -> None:
    req_id, b = to_int(f[2]), _bridge(s)
    for key, value, cur in b.account_rows():
        s.send(m.account_summary(req_id, b.account, key, value, cur))
    s.send(m.account_summary_end(req_id))


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
    unsupported = ("combo (BAG) orders" if req.combo_legs or req.contract["secType"] == "BAG" else
                   "what-if orders" if req.what_if else
                   "order conditions" if req.conditions else
                   "bracket / child orders (transmit=False or parentId)" if not req.transmit or req.parent_id else
                   "algo orders" if req.algo_strategy else
                   "hedge orders" if req.hedge_type or req.delta_neutral else "")
    if unsupported:
        s.error(order_id, 201, f"Order rejected - reason:{unsupported} are not supported by the emulator")
        return
    c = req.contract
    inst = b.resolve(to_int(c["conId"]), c["symbol"] or c["localSymbol"], c["secType"], c["currency"])
    if inst is None:
        s.error(order_id, 200, NO_SECDEF)
        return
    b.place(s, order_id, inst, exchange=c["exchange"], action=req.action, qty=req.total_quantity,
            ib_type=req.order_type, lmt=req.lmt_price, aux=req.aux_price, tif=req.tif, account=req.account,
            order_ref=req.order_ref)


@handles(4)
def cancel_order(s: Session, f: list[str]) -> None:
    _bridge(s).cancel(s, to_int(f[2]))


@handles(58)
def global_cancel(s: Session, f: list[str]) -> None:
    _bridge(s).cancel_all()


def _send_open(s: Session, client_id: int | None) -> None:
    for rec in _bridge(s).open_records(client_id):
        s.send(m.open_order(s.sv, rec.view))
        s.send(m.order_status(rec.view))
    s.send(m.open_order_end())


HANDLERS[5] = lambda s, f: _send_open(s, s.client_id)
HANDLERS[16] = lambda s, f: _send_open(s, None)


@handles(99)
def req_completed_orders(s: Session, f: list[str]) -> None:
    for rec in _bridge(s).done_records():
        s.send(m.completed_order(s.sv, rec.view))
    s.send(m.completed_orders_end())


@handles(7)
def req_executions(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    client_filter = to_int(f[3]) if len(f) > 3 else 0
    symbol = (f[6] if len(f) > 6 else "").upper()
    side = (f[9] if len(f) > 9 else "").upper()
    for rec in _bridge(s).records.values():
        v = rec.view
        if client_filter and v.client_id != client_filter or symbol and v.inst.symbol != symbol:
            continue
        for e in rec.execs:
            if side and side not in (e.side, v.action):
                continue
            s.send(m.exec_details(s.sv, req_id, v, e))
            s.send(m.commission_report(e))
    s.send(m.exec_details_end(req_id))


# -- contracts ------------------------------------------------------------------------------

@handles(9)
def req_contract_details(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    inst = _bridge(s).resolve(to_int(f[3]), f[4] or f[13], f[5], f[12], f[11])
    if inst is None:
        s.error(req_id, 200, NO_SECDEF)
        return
    s.send(m.contract_data(s.sv, req_id, inst, f[10] or "SMART"))
    s.send(m.contract_data_end(req_id))


# -- market data ----------------------------------------------------------------------------

@handles(1)
def req_mkt_data(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    if f[5] == "BAG":
        s.error(req_id, 321, "Error validating request:-'bw' : cause - combo market data is not supported")
        return
    inst = _bridge(s).resolve(to_int(f[3]), f[4] or f[13], f[5], f[12])
    if inst is None:
        s.error(req_id, 200, NO_SECDEF)
        return
    idx = 15 + (3 if f[15] == "1" else 0)
    snapshot = f[idx + 2] == "1" or (len(f) > idx + 3 and f[idx + 3] == "1")
    delayed = s.market_data_type in (3, 4)
    if not s.server.live_data and not delayed:  # no subscription: IB answers 354, which ends the request
        s.error(req_id, 354, "Requested market data is not subscribed. Delayed market data is available.")
        return
    data = market.snapshot(_bridge(s).prices, inst.symbol, _bridge(s).now())
    if delayed:  # delayed tick types: bid 66, ask 67, last 68, close 75
        s.send([m.MARKET_DATA_TYPE, 1, req_id, s.market_data_type])
        for tick, key in ((66, "bid"), (67, "ask"), (68, "last"), (75, "close")):
            s.send(m.tick_price(req_id, tick, data[key], 100 if tick != 75 else 0))
        if snapshot:
            s.send(m.tick_snapshot_end(req_id))
        else:  # a delayed stream keeps streaming (delayed tick types)
            s.mkt_subs[req_id] = (inst.symbol, (data["bid"], data["ask"], data["last"]))
            s.delayed_subs.add(req_id)
        return
    s.send(m.tick_price(req_id, m.BID, data["bid"], 100, 1))
    s.send(m.tick_price(req_id, m.ASK, data["ask"], 100, 1))
    s.send(m.tick_price(req_id, m.LAST, data["last"], 100))
    s.send(m.tick_price(req_id, m.CLOSE, data["close"]))
    for key, tick in (("open", m.OPEN), ("high", m.HIGH), ("low", m.LOW)):
        if key in data:
            s.send(m.tick_price(req_id, tick, data[key]))
    s.send(m.tick_size(req_id, m.VOLUME, data["volume"]))
    if snapshot:
        s.send(m.tick_snapshot_end(req_id))
    else:
        s.mkt_subs[req_id] = (inst.symbol, (data["bid"], data["ask"], data["last"]))


@handles(2)
def cancel_mkt_data(s: Session, f: list[str]) -> None:
    s.mkt_subs.pop(to_int(f[2]), None)
    s.delayed_subs.discard(to_int(f[2]))


def push_quotes(s: Session) -> None:
    """Streaming subscriptions: send bid/ask/last that changed since the last push."""
    b = s.server.bridge
    for req_id, (symbol, last) in list(s.mkt_subs.items()):
        try:
            q = b.prices.get_quote(symbol, b.now())
        except Exception as exc:
            log.warning("no quote for %s: %s", symbol, exc)
            continue
        now = (q.bid or q.last, q.ask or q.last, q.last)
        if now == last:
            continue
        s.mkt_subs[req_id] = (symbol, now)
        bid, ask, last_tick = (66, 67, 68) if req_id in s.delayed_subs else (m.BID, m.ASK, m.LAST)
        s.send(m.tick_price(req_id, bid, now[0], 100, 1))
        s.send(m.tick_price(req_id, ask, now[1], 100, 1))
        s.send(m.tick_price(req_id, last_tick, now[2], 100))


# -- history --------------------------------------------------------------------------------

@handles(20)
def req_historical_data(s: Session, f: list[str]) -> None:
    req_id, b = to_int(f[1]), _bridge(s)
    inst = b.resolve(to_int(f[2]), f[3] or f[12], f[4], f[11])
    if inst is None:
        s.error(req_id, 200, NO_SECDEF)
        return
    try:
        start, end, rows = market.bars(b.prices, inst.symbol, f[15], f[17], f[16], to_int(f[20], 1), b.now())
    except market.HistoryError as exc:
        s.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
        return
    if f[19].upper() in ("MIDPOINT", "BID", "ASK", "BID_ASK"):
        rows = [(d, o, h, low, c, -1) for d, o, h, low, c, _ in rows]
    s.send(m.historical_data(req_id, start, end, rows))
