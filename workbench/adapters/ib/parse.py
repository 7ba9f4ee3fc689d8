"""Pure IB <-> neutral mappings: order status, error codes, order types, bar sizes, history chunks.

No ib_async import here: these tables are tested on their own and shared by the adapter and the
TWS emulator's tests.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pandas as pd

from workbench.core.enums import OrderStatus, OrderType, TimeInForce, status_from_fills
from workbench.core.errors import (
    BrokerUnavailable,
    ConfigError,
    DataEntitlementError,
    InsufficientFunds,
    NotSupported,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    SymbolNotFound,
    WorkbenchError,
)
from workbench.core.intervals import Interval
from workbench.core.models import NeutralOrder

__all__ = [
    "STATUS_MAP", "order_status", "ERROR_MAP", "INFO_CODES", "RESTORED_CODES", "GATEWAY_OFFLINE", "error_from_ib",
    "order_notice", "ORDER_STANDS", "SIMULATED_TEXT", "announces_simulated", "ORDER_TYPES", "TIFS", "order_fields",
    "bar_size", "history_chunks", "no_history", "history_refused", "client_id_in_use", "snapshot",
]

# orderStatus as ib_async reports it (Trade.orderStatus):
#   OrderStatus(orderId=7, status='Submitted', filled=40.0, remaining=60.0, avgFillPrice=187.21, permId=1001,
#               parentId=0, lastFillPrice=187.2, clientId=1, whyHeld='', mktCapPrice=0.0)
# IB never sends a partial-fill status: PARTIALLY_FILLED is derived from filled vs quantity.
STATUS_MAP: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.PENDING_NEW,
    "ApiPending": OrderStatus.PENDING_NEW,
    "PreSubmitted": OrderStatus.NEW,  # accepted, not yet working (e.g. an untriggered stop)
    "Submitted": OrderStatus.NEW,
    "ApiUpdate": OrderStatus.NEW,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Filled": OrderStatus.FILLED,
    "Inactive": OrderStatus.REJECTED,  # rejected or held (see whyHeld)
    "ValidationError": OrderStatus.NEW,  # ib_async's status after a warning (105, 321, 404...): still active
}


def order_status(raw_status: str, filled: Decimal, qty: Decimal) -> OrderStatus:
    """Canonical status from IB's status string and the filled quantity."""
    try:
        status = STATUS_MAP[raw_status]
    except KeyError:
        raise BrokerUnavailable(f"unknown IB order status {raw_status!r}", broker="ib", code="status",
                                raw=raw_status) from None
    return status_from_fills(status, filled, qty)


# errorEvent as ib_async emits it: (reqId, errorCode, errorString, contract)
#   (12, 200, 'No security definition has been found for the request', Stock(symbol='NOPE', ...))
#: IB error code -> workbench error class (codes and meanings: TWS API "Message Codes").
ERROR_MAP: dict[int, type[WorkbenchError]] = {
    200: SymbolNotFound,  # no security definition
    201: OrderRejected,  # order rejected
    103: OrderRejected,  # duplicate order id
    104: OrderRejected,  # cannot modify a filled order
    321: NotSupported,  # validation error / read-only API
    162: RateLimited,  # historical data service error (pacing violation)
    420: RateLimited,  # invalid real-time query / pacing
    354: DataEntitlementError,  # requested market data is not subscribed
    10167: DataEntitlementError,  # delayed data displayed (not subscribed)
    10168: DataEntitlementError,  # requested market data is not subscribed, delayed disabled
    10187: DataEntitlementError,  # failed to request historical data: no market data permissions
    10147: OrderNotFound,  # order to cancel not found
    10148: OrderRejected,  # order cannot be cancelled (already done)
    326: ConfigError,  # client id already in use
    502: BrokerUnavailable,  # could not connect
    504: BrokerUnavailable,  # not connected
    1100: BrokerUnavailable,  # connectivity between IB and TWS lost
    2110: BrokerUnavailable,  # connectivity between TWS and server broken
}
#: Notices, not errors: farm connection OK (2104, 2106, 2158...), order cancelled confirmation (202).
INFO_CODES = frozenset({202, 2100, 2101, 2103, 2104, 2105, 2106, 2107, 2108, 2119, 2137, 2158, 399})
#: Connectivity restored (data lost / kept).
RESTORED_CODES = frozenset({1101, 1102})
#: The gateway lost IB (1100), TWS lost its server (2110), the API socket port was reset (1300).
GATEWAY_OFFLINE = frozenset({1100, 2110, 1300})
#: Order messages that leave the order working: ib_async's warnings (404 held for a short-sale locate, 399 "not placed
#: at the exchange until the open"...) and 10349 "TIF set to DAY by your order preset" (which ib_async marks
#: Cancelled although the order lives). 110 (price increment) is absent: it refuses a new order.
_ORDER_NOTICES = frozenset({105, 165, 329, 399, 404, 492, 10167, 10349})


#: Errors after which the order still stands although ib_async marks it Cancelled: a refused cancel (161, 10148)
#: and 10349 (its TIF was set by a preset). The gateway's next orderStatus tells the truth again.
ORDER_STANDS = frozenset({161, 10148, 10349})


#: The notice workbench's TWS emulator sends at connect when its prices are simulated (its ``SIMULATED_NOTICE``):
#: errorEvent ``(-1, 2199, "workbench TWS emulator: simulated data")``. A real gateway never sends this text.
SIMULATED_TEXT = "workbench TWS emulator: simulated data"


def announces_simulated(req_id: int, message: str) -> bool:
    """Whether a message says the gateway is workbench's emulator over simulated prices."""
    return req_id == -1 and message.startswith(SIMULATED_TEXT)


def order_notice(code: int) -> bool:
    """Whether error ``code`` about an order is a notice (the order keeps working), not a refusal."""
    return code in _ORDER_NOTICES or code in INFO_CODES or 2100 <= code < 2200


#: Order rejection (201) reasons that mean "not enough money": IB's margin check, and the paper engine's
#: wording behind the TWS emulator. Sample: "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO
#: OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [1000.00 USD] MUST EXCEED THE INITIAL MARGIN [...]"
_FUNDS_REASON = re.compile(r"EQUITY WITH LOAN VALUE|INITIAL MARGIN|buying power|insufficient", re.IGNORECASE)


def error_from_ib(code: int, message: str, req_id: int = -1) -> WorkbenchError | None:
    """The typed error for an IB error code, or None for notices and restorations."""
    if code in INFO_CODES or code in RESTORED_CODES:
        return None
    cls = ERROR_MAP.get(code, OrderRejected if req_id > 0 else BrokerUnavailable)
    if cls is ConfigError:
        return ConfigError(f"IB {code}: {message} (choose another ib.client_id)", key="ib.client_id",
                           broker="ib", code=code, raw=message)
    if code == 201 and _FUNDS_REASON.search(message):
        cls = InsufficientFunds
    return cls(f"IB {code}: {message}", broker="ib", code=code, raw=message)


def no_history(code: int, message: str) -> bool:
    """Whether a history error only says there are no bars: ``(162, "Historical Market Data Service error
    message:HMDS query returned no data: AAPL@SMART Trades")``."""
    return code == 162 and "returned no data" in message


def history_refused(symbol: str, code: int, message: str) -> WorkbenchError:
    """The typed error of a refused history request (162 pacing violation -> RateLimited, 10187 no data
    permission -> DataEntitlementError, 200 -> SymbolNotFound ...), naming the symbol."""
    cls = type(error_from_ib(code, message, 1) or BrokerUnavailable("", broker="ib"))
    return cls(f"IB {code}: the history of {symbol} was refused: {message}", broker="ib", code=code, raw=message,
               field="symbol")


def client_id_in_use(client_id: int, message: str = "") -> ConfigError:
    """Error 326, final: another connection holds ``client_id`` (retrying with it cannot succeed)."""
    return ConfigError(f"IB client id {client_id} is already in use by another connection to this gateway "
                       "(error 326): set ib.client_id to a free id, close the other session, or set "
                       "ib.client_id_fallback to try the next ids", key="ib.client_id", broker="ib", code=326,
                       raw=message or None)


#: Neutral order types -> IB orderType.
ORDER_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
}
#: Time in force the adapter carries (FOK and CLS are not offered for IB stock orders here).
TIFS: dict[TimeInForce, str] = {
    TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.OPG: "OPG",
}

def order_fields(order: NeutralOrder) -> dict[str, Any]:
    """The IB ``Order`` fields of a neutral order (ib_async's ``Order(**fields, orderRef=..., account=...)``).

    Sample: a trailing stop selling 10 AAPL 2 % below the best price since placement ->
    ``{"action": "SELL", "totalQuantity": 10.0, "orderType": "TRAIL", "tif": "GTC", "trailingPercent": 2.0}``;
    by an amount: ``"auxPrice": 1.5`` instead (IB's TRAIL: auxPrice is the trailing amount). No
    ``trailStopPrice`` is sent: IB then starts the stop at the trail from the current price, as the neutral
    contract (and paper) do.
    """
    fields: dict[str, Any] = {"action": order.side.value, "totalQuantity": float(order.qty or 0),
                              "orderType": ORDER_TYPES[order.order_type], "tif": TIFS[order.tif]}
    if order.limit_price is not None:
        fields["lmtPrice"] = float(order.limit_price)
    if order.stop_price is not None:
        fields["auxPrice"] = float(order.stop_price)
    if order.trail_price is not None:
        fields["auxPrice"] = float(order.trail_price)
    if order.trail_percent is not None:
        fields["trailingPercent"] = float(order.trail_percent)
    return fields


_BAR_SIZES = {1: "1 min", 2: "2 mins", 3: "3 mins", 5: "5 mins", 10: "10 mins", 15: "15 mins", 20: "20 mins",
              30: "30 mins", 60: "1 hour", 120: "2 hours", 180: "3 hours", 240: "4 hours", 480: "8 hours"}
# Chunk length per request, kept well inside IB's per-bar-size duration limits (1-min bars over
# several days is where timeouts start, ib_insync #268).
_CHUNK = {1: "1 D", 2: "2 D", 3: "1 W", 5: "1 W", 10: "2 W", 15: "2 W", 20: "1 M", 30: "1 M"}


def bar_size(interval: Interval) -> str:
    """IB's barSizeSetting for an interval (NotSupported if IB has no such bar)."""
    if interval.minutes is not None:
        size = _BAR_SIZES.get(interval.minutes)
    else:
        size = {"1d": "1 day", "1wk": "1 week", "1mo": "1 month"}.get(interval.name)
    if size is None:
        raise NotSupported(f"IB has no {interval.name} bars", broker="ib", field="interval")
    return size


@dataclass(frozen=True)
class HistoryChunk:
    """One reqHistoricalData call: bars ending at ``end`` (UTC) over ``duration``."""

    end: pd.Timestamp
    duration: str

    def end_text(self) -> str:
        """``endDateTime`` as IB wants it, with an explicit time zone."""
        return self.end.strftime("%Y%m%d %H:%M:%S UTC")


def history_chunks(start: pd.Timestamp, end: pd.Timestamp, interval: Interval) -> list[HistoryChunk]:
    """Split ``[start, end)`` into requests IB accepts, newest first (so a short request is one call)."""
    if interval.minutes is not None and interval.minutes >= 60:
        step, text = pd.Timedelta(days=30), "1 M"
    elif interval.minutes is not None:
        text = _CHUNK.get(interval.minutes, "1 D")
        step = {"D": pd.Timedelta(days=1), "W": pd.Timedelta(weeks=1), "M": pd.Timedelta(days=30)}[text[-1]] \
            * int(text.split()[0])
    else:
        step, text = pd.Timedelta(days=365), "1 Y"
    chunks: list[HistoryChunk] = []
    cursor = end
    while cursor > start:
        remaining = cursor - start
        if remaining < step:  # the last (oldest) piece: ask only for what is left, in whole days
            days = max(1, math.ceil(remaining / pd.Timedelta(days=1)))
            chunks.append(HistoryChunk(cursor, f"{days} D"))
            break
        chunks.append(HistoryChunk(cursor, text))
        cursor -= step
    return chunks


def to_decimal(value: Any) -> Decimal:
    """IB sends floats (and 1.7976931348623157e308 for "unset"): unset becomes 0."""
    number = float(value or 0)
    return Decimal(0) if number >= 1e300 else Decimal(repr(number))


_LEAVES = (str, int, float, bool, type(None), Decimal, datetime, date, Enum)
_LEAF_TYPES = frozenset({str, int, float, bool, type(None), Decimal, datetime, date})
_FIELDS: dict[type, tuple[str, ...]] = {}


def snapshot(value: Any) -> Any:
    """A detached copy of an SDK object for ``raw``: dataclasses and named tuples become dicts, lists
    become tuples, so later updates to the live object (ib_async mutates its ``Trade`` in place) never show.

    Sample: ``snapshot(trade)`` -> ``{"contract": {"conId": 265598, "symbol": "AAPL", ...}, "order": {"orderId":
    7, "orderRef": "wb-1f...", ...}, "orderStatus": {"status": "Filled", "filled": 10.0, ...}, "fills": ({...},),
    "log": ({"time": datetime(...), "status": "Submitted", "message": "", "errorCode": 0}, ...), ...}``
    """
    cls = type(value)
    if cls in _LEAF_TYPES or isinstance(value, _LEAVES):
        return value
    names = _FIELDS.get(cls)
    if names is None:
        if dataclasses.is_dataclass(value):
            names = tuple(f.name for f in dataclasses.fields(value))
        elif isinstance(value, tuple) and hasattr(value, "_fields"):
            names = tuple(value._fields)
        else:
            names = ()
        _FIELDS[cls] = names
    if names:
        out = {}
        for name in names:  # the common case (a leaf) inline: this runs for ~200 fields per order event
            item = getattr(value, name)
            out[name] = item if type(item) in _LEAF_TYPES else snapshot(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return repr(value)
