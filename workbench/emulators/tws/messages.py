"""Builders of server -> client messages, one function per message, each taking the server version.

Layouts follow ib_async 2.1.0's decoder (see the protocol reference §4-§6). Each builder returns a
list of fields; :func:`workbench.emulators.tws.codec.encode` frames it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .codec import UNSET_DOUBLE, integer, num
from .codec import fmt as fmt_field

# Incoming message ids (server -> client).
TICK_PRICE, TICK_SIZE, ORDER_STATUS, ERR_MSG, OPEN_ORDER, ACCT_VALUE, PORTFOLIO_VALUE = 1, 2, 3, 4, 5, 6, 7
ACCT_UPDATE_TIME, NEXT_VALID_ID, CONTRACT_DATA, EXECUTION_DATA, MANAGED_ACCTS, HISTORICAL_DATA = 8, 9, 10, 11, 15, 17
CURRENT_TIME, CONTRACT_DATA_END, OPEN_ORDER_END, ACCT_DOWNLOAD_END, EXECUTION_DATA_END = 49, 52, 53, 54, 55
TICK_SNAPSHOT_END, COMMISSION_REPORT, POSITION_DATA, POSITION_END = 57, 59, 61, 62
ACCOUNT_SUMMARY, ACCOUNT_SUMMARY_END, ACCOUNT_UPDATE_MULTI, ACCOUNT_UPDATE_MULTI_END = 63, 64, 73, 74
COMPLETED_ORDER, COMPLETED_ORDERS_END, MARKET_DATA_TYPE = 101, 102, 58
POSITION_MULTI, POSITION_MULTI_END, PNL, PNL_SINGLE = 71, 72, 94, 95

# Tick types.
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, HIGH, LOW, VOLUME, CLOSE, OPEN = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14


@dataclass(frozen=True)
class Instrument:
    """A stock or ETF the emulator can describe: what contractData / position / openOrder carry."""

    symbol: str
    con_id: int
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    sec_type: str = "STK"
    trading_class: str = "NMS"
    long_name: str = ""
    min_tick: float = 0.01
    industry: str = ""
    category: str = ""
    stock_type: str = "COMMON"

    def block11(self, exchange: str = "SMART") -> list[Any]:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange, currency, localSymbol,
        tradingClass: the contract block of openOrder, completedOrder, execDetails and position."""
        return [integer(self.con_id), self.symbol, self.sec_type, "", "0", "", "", exchange, self.currency,
                self.symbol, self.trading_class]


def handshake(sv: int, when: str) -> list[Any]:
    return [sv, when]


def managed_accounts(accounts: list[str]) -> list[Any]:
    return [MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list[Any]:
    return [NEXT_VALID_ID, 1, integer(order_id)]


def error(sv: int, req_id: int, code: int, text: str) -> list[Any]:
    fields: list[Any] = [ERR_MSG, 2, integer(req_id), integer(code), text]
    if sv >= 166:
        fields.append("")  # advancedOrderRejectJson
    return fields


def current_time(epoch: int) -> list[Any]:
    return [CURRENT_TIME, 1, integer(epoch)]


# An openOrder at sv 157 (120 fields) whose per-order slots are overwritten by :func:`open_order`.
_OPEN_ORDER_157 = (
    "5|12|265598|AAPL|STK||0.0|||SMART|USD|AAPL|NMS|BUY|10|LMT|185.5||DAY||DU1234567|O|0||7|1000001|0|0|0"
    "||||||||||||0||-1|0|||||||0|0|0||0|0|0||0|0|||||0|||||||0|0|0|||||0|||0|0||0|0|Submitted|||||||||||||||"
    "0|0|0|||||||||||||0|0|0|0"
).split("|")
_STATUS_IDX_157 = 86
_TRAIL_IDX_157 = (66, 67, 106)  # trailStopPrice, trailingPercent, and trailStopPrice again (the adjusted block)
#: The OrderState fields after ``status`` in openOrder (what-if answers fill them).
WHAT_IF_FIELDS = ("initMarginBefore", "maintMarginBefore", "equityWithLoanBefore", "initMarginChange",
                  "maintMarginChange", "equityWithLoanChange", "initMarginAfter", "maintMarginAfter",
                  "equityWithLoanAfter", "commission", "minCommission", "maxCommission", "commissionCurrency",
                  "warningText")


@dataclass
class OrderView:
    """What openOrder / orderStatus / completedOrder need to know about one order."""

    order_id: int
    client_id: int
    perm_id: int
    inst: Instrument
    exchange: str
    action: str
    qty: Any
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    status: str = "Submitted"
    filled: Any = 0
    avg_fill_price: Any = 0
    last_fill_price: Any = 0
    completed_time: str = ""
    parent_id: int = 0
    raw_status: str = ""
    trail_stop_price: float | None = None  # TRAIL: the current stop (it follows the price)
    trailing_percent: float | None = None  # TRAIL by a percentage (auxPrice is then unset)


def open_order(sv: int, o: OrderView, what_if: dict[str, Any] | None = None) -> list[Any]:
    """openOrder; with ``what_if`` (the OrderState margin/commission fields, see :data:`WHAT_IF_FIELDS`)
    the answer to a what-if order, which ib_async returns from ``whatIfOrder``."""
    f: list[Any] = list(_OPEN_ORDER_157)
    f[1] = integer(o.order_id)
    f[2:13] = o.inst.block11(o.exchange)
    f[13:19] = [o.action, num(o.qty), o.order_type, num(o.lmt_price), num(o.aux_price), o.tif]
    f[20], f[23], f[24], f[25] = o.account, o.order_ref, integer(o.client_id), integer(o.perm_id)
    f[_STATUS_IDX_157] = o.status
    stop, percent, again = _TRAIL_IDX_157
    f[stop], f[percent], f[again] = num(o.trail_stop_price), num(o.trailing_percent), num(o.trail_stop_price)
    if what_if is not None:
        f[_STATUS_IDX_157 - 1] = 1
        f[_STATUS_IDX_157 + 1:_STATUS_IDX_157 + 1 + len(WHAT_IF_FIELDS)] = [fmt_field(what_if[k])
                                                                            for k in WHAT_IF_FIELDS]
    if sv >= 177:
        del f[34]  # faProfile
    if sv >= 159:
        f.append("")  # duration
    if sv >= 160:
        f.append("")  # postToAts
    if sv >= 162:
        f.append("")  # autoCancelParent
    if sv >= 170:
        f += ["", "", "", "", ""]  # minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsets
    return f


def order_status(o: OrderView) -> list[Any]:
    remaining = max(float(o.qty) - float(o.filled), 0.0)
    if o.status in ("Cancelled", "ApiCancelled", "Inactive"):
        remaining = 0.0 if o.status != "Inactive" else remaining
    return [ORDER_STATUS, integer(o.order_id), o.status, num(o.filled), num(remaining), num(o.avg_fill_price),
            integer(o.perm_id), integer(o.parent_id), num(o.last_fill_price), integer(o.client_id), "", ""]


def open_order_end() -> list[Any]:
    return [OPEN_ORDER_END, 1]


def completed_order(sv: int, o: OrderView) -> list[Any]:
    f: list[Any] = [COMPLETED_ORDER, *o.inst.block11(o.exchange)]
    f += [o.action, num(o.qty), o.order_type, num(o.lmt_price), num(o.aux_price), o.tif, "", o.account, "O", 0,
          o.order_ref, integer(o.perm_id), 0, 0, 0, "", "", "", ""]
    if sv < 177:
        f.append("")  # faProfile
    f += ["", "", "", "", "", "", "", "-1", "", "", "", "", "", "", 0, 0, "", 0, 0, "", "", "", ""]
    f += [0, 0, num(o.trail_stop_price), num(o.trailing_percent), ""]  # continuousUpdate ... comboLegsDescrip
    f += ["0", "0", "0"]  # combo legs, order combo legs, smart routing params
    f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
    f += [""]  # hedgeType
    f += ["", "", 0, "0"]  # clearingAccount, clearingIntent, notHeld, deltaNeutralContract
    f += [""]  # algoStrategy
    f += [0, o.status, 0, 0]  # solicited, status, randomizeSize, randomizePrice
    f += ["0"]  # conditions
    f += [num(o.trail_stop_price), "", "", 0, 0, "", num(o.filled), 0, 0, "", 0, 0, "", o.completed_time, o.status]
    if sv >= 170:
        f += ["", "", "", "", ""]
    return f


def completed_orders_end() -> list[Any]:
    return [COMPLETED_ORDERS_END]


@dataclass
class ExecView:
    exec_id: str
    time: str
    account: str
    side: str  # BOT / SLD
    shares: Any
    price: Any
    cum_qty: Any
    avg_price: Any
    commission: Any


def exec_details(sv: int, req_id: int, o: OrderView, e: ExecView) -> list[Any]:
    f: list[Any] = [EXECUTION_DATA, integer(req_id), integer(o.order_id), *o.inst.block11(o.exchange)]
    f += [e.exec_id, e.time, e.account, o.inst.primary_exchange, e.side, num(e.shares), num(e.price),
          integer(o.perm_id), integer(o.client_id), 0, num(e.cum_qty), num(e.avg_price), o.order_ref, "", "", "",
          2]
    if sv >= 178:
        f.append(0)  # pendingPriceRevision
    return f


def exec_details_end(req_id: int) -> list[Any]:
    return [EXECUTION_DATA_END, 1, integer(req_id)]


def commission_report(e: ExecView) -> list[Any]:
    return [COMMISSION_REPORT, 1, e.exec_id, num(e.commission), "USD", repr(UNSET_DOUBLE), repr(UNSET_DOUBLE), ""]


def position(account: str, inst: Instrument, qty: Any, avg_cost: Any) -> list[Any]:
    # the exchange slot holds the listing exchange, as a gateway fills it (Stock(..., exchange='NASDAQ'))
    return [POSITION_DATA, 3, account, *inst.block11(inst.primary_exchange), num(qty), num(avg_cost)]


def position_end() -> list[Any]:
    return [POSITION_END, 1]


def account_value(key: str, value: Any, currency: str, account: str) -> list[Any]:
    return [ACCT_VALUE, 2, key, value if isinstance(value, str) else num(value), currency, account]


def portfolio_value(account: str, inst: Instrument, qty: Any, price: Any, value: Any, avg_cost: Any,
                    unrealized: Any, realized: Any = 0) -> list[Any]:
    block = inst.block11(inst.primary_exchange)
    return [PORTFOLIO_VALUE, 8, *block, num(qty), num(price), num(value), num(avg_cost), num(unrealized),
            num(realized), account]


def account_update_time(hhmm: str) -> list[Any]:
    return [ACCT_UPDATE_TIME, 1, hhmm]


def account_download_end(account: str) -> list[Any]:
    return [ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(req_id: int, account: str, key: str, value: Any, currency: str) -> list[Any]:
    return [ACCOUNT_UPDATE_MULTI, 1, integer(req_id), account, "", key, value if isinstance(value, str) else num(value),
            currency]


def account_update_multi_end(req_id: int) -> list[Any]:
    return [ACCOUNT_UPDATE_MULTI_END, 1, integer(req_id)]


def account_summary(req_id: int, account: str, tag: str, value: Any, currency: str) -> list[Any]:
    return [ACCOUNT_SUMMARY, 1, integer(req_id), account, tag, value if isinstance(value, str) else num(value),
            currency]


def account_summary_end(req_id: int) -> list[Any]:
    return [ACCOUNT_SUMMARY_END, 1, integer(req_id)]


def position_multi(req_id: int, account: str, inst: Instrument, qty: Any, avg_cost: Any) -> list[Any]:
    return [POSITION_MULTI, 1, integer(req_id), account, *inst.block11(inst.primary_exchange), num(qty), num(avg_cost),
            ""]


def position_multi_end(req_id: int) -> list[Any]:
    return [POSITION_MULTI_END, 1, integer(req_id)]


def pnl(req_id: int, daily: Any, unrealized: Any, realized: Any) -> list[Any]:
    return [PNL, integer(req_id), num(daily), num(unrealized), num(realized)]


def pnl_single(req_id: int, position: Any, daily: Any, unrealized: Any, realized: Any, value: Any) -> list[Any]:
    return [PNL_SINGLE, integer(req_id), num(position), num(daily), num(unrealized), num(realized), num(value)]
