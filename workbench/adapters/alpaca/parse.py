"""Pure Alpaca <-> neutral mappings: order status, order types, errors, and the JSON parsers.

No alpaca-py import here: the adapter asks alpaca-py for plain JSON (``raw_data=True``) and these
functions turn it into neutral models. Alpaca sends money and quantities as strings; they become
:class:`~decimal.Decimal` here, never float. The emulator and the tests share these tables.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce, status_from_fills
from workbench.core.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    DataEntitlementError,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    MarketClosed,
    NotSupported,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    SymbolNotFound,
    WorkbenchError,
)
from workbench.core.frames import empty_history, history_frame
from workbench.core.intervals import Interval
from workbench.core.models import (AccountInfo, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote,
                                   trusted)

__all__ = [
    "BROKER", "STATUS_MAP", "order_status", "ORDER_TYPES", "TIFS", "order_request", "check_order",
    "error_from_response", "parse_order", "parse_position", "parse_account", "parse_clock", "parse_trade_update",
    "parse_fill_activity", "fill_key", "timeframe", "bars_frame", "to_decimal", "parse_time", "stream_trade",
    "stream_quote",
]

BROKER = "alpaca"

# -- order status ------------------------------------------------------------------------------

#: Every alpaca-py 0.44.0 ``OrderStatus`` -> canonical status (working ones are refined by the fills).
STATUS_MAP: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,  # routed, working
    "accepted": OrderStatus.NEW,  # received, not yet routed (outside market hours): it will work
    "pending_new": OrderStatus.PENDING_NEW,
    "accepted_for_bidding": OrderStatus.NEW,
    "pending_review": OrderStatus.PENDING_NEW,
    "held": OrderStatus.PENDING_NEW,  # a bracket/OTO leg waiting for its trigger
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.NEW,  # no more fills today; a GTC order resumes tomorrow
    "calculated": OrderStatus.NEW,  # done for the day, settlement pending: refined by the fills below
    "stopped": OrderStatus.NEW,  # a fill is guaranteed, not yet executed
    "suspended": OrderStatus.NEW,  # not eligible for trading now, not finished either
    "pending_replace": OrderStatus.NEW,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.CANCELLED,  # terminal for this id; ``replaced_by`` names the new order
    "rejected": OrderStatus.REJECTED,
}


def order_status(raw: str, filled_qty: Decimal, qty: Decimal | None) -> OrderStatus:
    """Canonical status from Alpaca's status string and the filled quantity."""
    try:
        status = STATUS_MAP[raw]
    except KeyError:
        raise BrokerError(f"unknown Alpaca order status {raw!r}", broker=BROKER, code="status", raw=raw) from None
    if qty is None or status.is_terminal:
        return status
    return status_from_fills(status, filled_qty, qty)


# -- order requests ----------------------------------------------------------------------------

#: Neutral order type -> (Alpaca ``type``, alpaca-py request class in ``alpaca.trading.requests``).
ORDER_TYPES: dict[OrderType, tuple[str, str]] = {
    OrderType.MARKET: ("market", "MarketOrderRequest"),
    OrderType.LIMIT: ("limit", "LimitOrderRequest"),
    OrderType.STOP: ("stop", "StopOrderRequest"),
    OrderType.STOP_LIMIT: ("stop_limit", "StopLimitOrderRequest"),
    OrderType.TRAILING_STOP: ("trailing_stop", "TrailingStopOrderRequest"),
}
_TYPES_BACK = {alpaca: neutral for neutral, (alpaca, _) in ORDER_TYPES.items()}
#: Neutral time in force -> Alpaca's.
TIFS: dict[TimeInForce, str] = {tif: tif.value.lower() for tif in TimeInForce}
_TIFS_BACK = {v: k for k, v in TIFS.items()}


def check_order(order: NeutralOrder) -> None:
    """Alpaca's own rules, checked before sending: fractional and notional orders are DAY only."""
    fractional = order.qty is not None and order.qty != order.qty.to_integral_value()
    if (fractional or order.notional is not None) and order.tif is not TimeInForce.DAY:
        what = "notional" if order.notional is not None else "fractional-quantity"
        raise NotSupported(f"Alpaca takes {what} orders with time in force DAY only, not {order.tif}",
                           broker=BROKER, field="tif")
    if fractional and order.order_type is OrderType.TRAILING_STOP:
        raise NotSupported("Alpaca takes no fractional trailing-stop orders", broker=BROKER, field="qty")


def order_request(order: NeutralOrder) -> tuple[str, dict[str, Any]]:
    """The alpaca-py request class name for ``order`` (after :func:`check_order`) and the JSON body of
    ``POST /v2/orders``, exactly what that class's ``to_request_fields()`` sends (the tests check it).

    The adapter posts the body itself: building that request model (and serialising it back) would only
    validate again what NeutralOrder and :func:`check_order` did, and it cost the order path more than the
    rest of the adapter's own work before the send (``make bench BENCH=alpaca``).
    Sent as: ``{"symbol":"AAPL","side":"buy","type":"limit","time_in_force":"day","client_order_id":"wb-...",
    "qty":10.0,"limit_price":180.25}``.
    """
    kind, cls = ORDER_TYPES[order.order_type]
    fields: dict[str, Any] = {"symbol": order.symbol, "side": order.side.value.lower(), "type": kind,
                              "time_in_force": TIFS[order.tif], "client_order_id": order.client_order_id}
    if order.notional is not None:
        fields["notional"] = float(order.notional)
    else:
        assert order.qty is not None
        fields["qty"] = float(order.qty)
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        value = getattr(order, name)
        if value is not None:
            fields[name] = float(value)
    return cls, fields


# -- errors ------------------------------------------------------------------------------------

#: Order fields an Alpaca 4xx message may name -> the neutral field.
_FIELDS = {"qty": "qty", "notional": "notional", "limit_price": "limit_price", "stop_price": "stop_price",
           "trail_price": "trail_price", "trail_percent": "trail_percent", "time_in_force": "tif",
           "client_order_id": "client_order_id", "symbol": "symbol", "side": "side", "type": "order_type",
           "order_type": "order_type", "extended_hours": "extended_hours"}
_FIELD_RE = re.compile(r"\b(" + "|".join(sorted(_FIELDS, key=len, reverse=True)) + r")\b")
#: Request fields a non-order 4xx message may name (``{"code": 42210000, "message": "invalid start"}`` from
#: ``GET /v2/stocks/bars``) -> the neutral argument.
_REQUEST_FIELDS = {"start": "start", "end": "end", "symbols": "symbol", "timeframe": "interval"}
_REQUEST_FIELD_RE = re.compile(r"\b(" + "|".join(_REQUEST_FIELDS) + r")\b")
#: Alpaca body codes with a meaning of their own.
CODE_ORDER_FORBIDDEN = 40310000  # insufficient buying power / qty, wash trade...
#: HTTP status -> error class, before the refinements in :func:`error_from_response`.
ERROR_MAP: dict[int, type[WorkbenchError]] = {
    400: InvalidInput,
    401: AuthError,
    403: AuthError,  # refined: insufficient buying power, data subscription
    404: OrderNotFound,  # refined by ``about``: symbol/asset/position -> SymbolNotFound
    409: OrderRejected,
    422: OrderRejected,  # refined: InvalidOrder when the message names a field; InvalidInput when no order is sent
    429: RateLimited,
}


def error_from_response(status: int | None, body: str, about: str = "", retry_after: float | None = None
                        ) -> WorkbenchError:
    """The typed error for an Alpaca HTTP error answer (``APIError``'s status and body).

    Body: ``{"code": 40310000, "message": "insufficient buying power"}`` (the body may also be plain text).
    ``about`` is what the request was about: ``"order"`` (placing, looking up or cancelling one), ``"symbol"``
    (market data, a position) or ``""``. A 400/422 of a request that is not about an order is bad input
    (InvalidInput naming the field its message names, else ``request``), never a rejected order.
    """
    code, message = _body(body)
    tag = f"Alpaca {status}" + (f"/{code}" if code is not None else "")
    text = f"{tag}: {message}"
    kw: dict[str, Any] = {"broker": BROKER, "code": code if code is not None else status, "raw": body}
    lower = message.lower()
    if status is None or status >= 500:
        return BrokerUnavailable(text, **kw)
    if status == 429:
        return RateLimited(text, retry_after=retry_after, **kw)
    if status == 403 and "insufficient" in lower:
        return InsufficientFunds(text, **kw)
    if status == 403 and code == CODE_ORDER_FORBIDDEN and about == "order":  # e.g. "potential wash trade"
        return OrderRejected(text, **kw)
    if status == 403 and "subscription" in lower:
        return DataEntitlementError(text, **kw)
    names_symbol = re.search(r"\b(asset|symbol|position)\b", lower) is not None
    if status == 404:
        return SymbolNotFound(text, **kw) if about == "symbol" or names_symbol else OrderNotFound(text, **kw)
    if status in (400, 422):
        if names_symbol and ("not found" in lower or "invalid symbol" in lower or "unknown" in lower):
            return SymbolNotFound(text, **kw)
        if "market is closed" in lower:
            return MarketClosed(text, **kw)
        match = _FIELD_RE.search(lower)
        if "not supported" in lower:
            return NotSupported(text, field=_FIELDS[match.group(1)] if match else None, **kw)
        if about != "order":  # a request for data or a list: bad input, nothing was ordered
            named = _REQUEST_FIELD_RE.search(lower)
            field = _REQUEST_FIELDS[named.group(1)] if named else _FIELDS[match.group(1)] if match else "request"
            return InvalidInput(text, field=field, **kw)
        if match is not None:
            return InvalidOrder(text, field=_FIELDS[match.group(1)], **kw)
        if status == 400:
            return InvalidInput(text, field="request", **kw)
    cls = ERROR_MAP.get(status, BrokerError)
    return cls(text, **kw)


def _body(body: str) -> tuple[int | None, str]:
    """(code, message) from an Alpaca error body; tolerant of non-JSON bodies."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None, (body or "").strip()[:500] or "no message"
    if not isinstance(data, dict):
        return None, str(data)[:500]
    code = data.get("code")
    return (code if isinstance(code, int) else None), str(data.get("message", "") or data)[:500]


# -- parsers -----------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_ZERO = Decimal(0)


def _parser(fn: F) -> F:
    """An answer of the wrong shape (a missing key, a list for an object...) becomes one typed error."""

    @functools.wraps(fn)
    def parse(data: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(data, *args, **kwargs)
        except WorkbenchError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise BrokerError(f"Alpaca sent an answer {fn.__name__} cannot read ({type(exc).__name__}: {exc})",
                              broker=BROKER, code="parse", raw=data) from None

    return parse  # type: ignore[return-value]


def to_decimal(value: Any) -> Decimal | None:
    """An Alpaca number (a string such as ``"170.5"``, or a JSON number) as Decimal; None for null/""."""
    if value is None or value == "":
        return None
    try:
        return Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise BrokerError(f"Alpaca sent a malformed number {value!r}", broker=BROKER, code="parse",
                          raw=value) from None


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 (``2024-05-01T14:30:00.123456789Z``; nanoseconds truncated) -> aware UTC datetime."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


# POST /v2/orders, GET /v2/orders/{id}, GET /v2/orders:by_client_order_id -> Order
# {"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","client_order_id":"my-coid-1",
#  "created_at":"2024-05-01T14:30:00.123456Z","updated_at":"2024-05-01T14:30:00.123456Z",
#  "submitted_at":"2024-05-01T14:30:00.123456Z","filled_at":null,"symbol":"AAPL","asset_class":"us_equity",
#  "notional":null,"qty":"10","filled_qty":"0","filled_avg_price":null,"order_class":"","order_type":"limit",
#  "type":"limit","side":"buy","time_in_force":"day","limit_price":"170","stop_price":null,
#  "status":"accepted","extended_hours":false,"legs":null,"trail_percent":null,"trail_price":null,"hwm":null}
@_parser
def parse_order(data: dict[str, Any]) -> Order:
    """An Alpaca order object -> Order (raw kept)."""
    qty = to_decimal(data.get("qty"))
    filled = to_decimal(data.get("filled_qty")) or Decimal(0)
    raw_status = str(data.get("status", ""))
    kind = data.get("type") or data.get("order_type") or "market"
    try:
        order_type = _TYPES_BACK[kind]
        tif = _TIFS_BACK[data["time_in_force"]]
        side = _SIDES[data["side"]]
        created = parse_time(data.get("created_at") or data.get("submitted_at"))
        if created is None:
            raise KeyError("created_at")
    except (KeyError, ValueError) as exc:
        raise BrokerError(f"Alpaca sent an order this adapter cannot read ({exc})", broker=BROKER, code="parse",
                          raw=data) from exc
    updated = parse_time(data.get("updated_at")) or created
    avg = to_decimal(data.get("filled_avg_price"))
    return trusted(Order, {
        "broker": BROKER, "order_id": str(data["id"]),
        "client_order_id": str(data.get("client_order_id") or data["id"]),
        "symbol": str(data.get("symbol") or ""), "side": side, "qty": qty, "order_type": order_type, "tif": tif,
        "limit_price": to_decimal(data.get("limit_price")), "stop_price": to_decimal(data.get("stop_price")),
        "trail_price": to_decimal(data.get("trail_price")), "trail_percent": to_decimal(data.get("trail_percent")),
        "notional": to_decimal(data.get("notional")), "status": order_status(raw_status, filled, qty),
        "raw_status": raw_status, "filled_qty": filled, "avg_fill_price": avg if filled else None,
        "created_at": created, "updated_at": max(updated, created), "raw": data})


def fill_key(order_id: str, cum_qty: Decimal) -> str:
    """The exec id of one fill: the order id and the cumulative quantity after it.

    Alpaca's stream (``execution_id``) and its FILL activities (``id``) name a fill differently; both carry
    the order's cumulative quantity, so this key is the same from either source, and a fill seen twice
    (stream and reconciliation) is recognised.
    """
    return f"{order_id}@{cum_qty.normalize():f}"


# trade_updates message (data part):
# {"event":"partial_fill","timestamp":"2024-05-01T14:30:01.5Z","execution_id":"1f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
#  "price":"170.20","qty":"6","position_qty":"6",
#  "order":{...full order as above..., "status":"partially_filled","filled_qty":"6","filled_avg_price":"170.20"}}
@_parser
def parse_trade_update(data: dict[str, Any]) -> tuple[Order, FillEvent | None]:
    """One trade_updates event -> (the order as it now stands, the fill it reports or None).

    The fill's ``qty`` is the quantity of *this* execution (the event's ``qty``), never the order's
    cumulative ``filled_qty``.
    """
    order = parse_order(data["order"])
    event = str(data.get("event", ""))
    if event not in ("fill", "partial_fill"):
        return order, None
    qty, price = to_decimal(data.get("qty")), to_decimal(data.get("price"))
    if qty is None or price is None:
        raise BrokerError(f"Alpaca {event} event without qty/price", broker=BROKER, code="parse", raw=data)
    ts = parse_time(data.get("timestamp")) or order.updated_at
    fill = trusted(FillEvent, {
        "broker": BROKER, "local_id": order.client_order_id, "broker_id": order.order_id,
        "exec_id": fill_key(order.order_id, order.filled_qty), "symbol": order.symbol, "side": order.side,
        "qty": qty, "price": price, "commission": _ZERO, "ts": ts, "raw": data})
    return order, fill


# GET /v2/account/activities/FILL -> [ <this>, ... ]
# {"id":"20240501143000123::8e4f9d2c-5b1a-4c3e-9f7d-6a5b4c3d2e1f","activity_type":"FILL",
#  "transaction_time":"2024-05-01T14:30:00.123Z","type":"partial_fill","price":"170.2","qty":"6","side":"buy",
#  "symbol":"AAPL","leaves_qty":"4","order_id":"61e69015-8549-4bfd-b9c3-01e75843f47d","cum_qty":"6",
#  "order_status":"partially_filled"}
@_parser
def parse_fill_activity(data: dict[str, Any], client_order_id: str) -> FillEvent:
    """One FILL account activity -> FillEvent (``client_order_id`` comes from the order: activities lack it)."""
    order_id = str(data["order_id"])
    qty, price, cum = to_decimal(data.get("qty")), to_decimal(data.get("price")), to_decimal(data.get("cum_qty"))
    ts = parse_time(data.get("transaction_time"))
    if qty is None or price is None or cum is None or ts is None:
        raise BrokerError("Alpaca FILL activity without qty/price/cum_qty/time", broker=BROKER, code="parse",
                          raw=data)
    return trusted(FillEvent, {
        "broker": BROKER, "local_id": client_order_id, "broker_id": order_id, "exec_id": fill_key(order_id, cum),
        "symbol": str(data.get("symbol", "")), "side": _SIDES[data["side"]], "qty": qty, "price": price,
        "commission": _ZERO, "ts": ts, "raw": data})


# GET /v2/positions -> [ <this> ]   GET /v2/positions/AAPL -> <this>
# {"asset_id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","symbol":"AAPL","exchange":"NASDAQ","asset_class":"us_equity",
#  "qty":"10","qty_available":"10","avg_entry_price":"170.5","side":"long","market_value":"1712",
#  "cost_basis":"1705","unrealized_pl":"7","unrealized_plpc":"0.0041","current_price":"171.2",
#  "lastday_price":"170.0","change_today":"0.0071"}
@_parser
def parse_position(data: dict[str, Any]) -> Position:
    """An Alpaca position -> Position; a short has a negative ``qty``."""
    qty = to_decimal(data["qty"]) or Decimal(0)
    if data.get("side") == "short" and qty > 0:
        qty = -qty
    return Position(symbol=str(data["symbol"]), qty=qty, avg_price=to_decimal(data["avg_entry_price"]) or Decimal(0),
                    market_price=to_decimal(data.get("current_price")),
                    market_value=to_decimal(data.get("market_value")),
                    unrealized_pnl=to_decimal(data.get("unrealized_pl")),
                    unrealized_pnl_pct=to_decimal(data.get("unrealized_plpc")), raw=data)


# GET /v2/account
# {"id":"2d9a0a5c-6d8b-4d0e-9a39-1f3f0b1f2c11","account_number":"PA3ABCDEF12","status":"ACTIVE","currency":"USD",
#  "cash":"100000","buying_power":"200000","portfolio_value":"100000","equity":"100000","last_equity":"100000",
#  "long_market_value":"0","short_market_value":"0","multiplier":"2","pattern_day_trader":false, ...}
@_parser
def parse_account(data: dict[str, Any]) -> AccountInfo:
    """An Alpaca account -> AccountInfo. ``last_equity`` is Alpaca's own (equity at the previous close)."""

    def money(key: str, *fallback: str) -> Decimal:
        for name in (key, *fallback):
            value = to_decimal(data.get(name))
            if value is not None:
                return value
        return Decimal(0)

    equity = money("equity", "portfolio_value")
    return AccountInfo(id=str(data.get("account_number") or data["id"]), currency=str(data.get("currency") or "USD"),
                       cash=money("cash"), buying_power=money("buying_power"), equity=equity,
                       portfolio_value=money("portfolio_value", "equity"), last_equity=money("last_equity", "equity"),
                       raw=data)


# GET /v2/clock
# {"timestamp":"2024-05-01T10:30:00.123456789-04:00","is_open":true,
#  "next_open":"2024-05-02T09:30:00-04:00","next_close":"2024-05-01T16:00:00-04:00"}
@_parser
def parse_clock(data: dict[str, Any]) -> MarketClock:
    return MarketClock(ts=parse_time(data["timestamp"]), is_open=bool(data["is_open"]),
                       next_open=parse_time(data["next_open"]), next_close=parse_time(data["next_close"]))


# -- market data -------------------------------------------------------------------------------


def timeframe(interval: Interval) -> tuple[int, str]:
    """Alpaca's timeframe (amount, unit) for an interval: ``{1..59}Min``, ``{1..23}Hour``, ``1Day``, ``1Week``,
    ``{1,2,3,6,12}Month``; sent as e.g. ``timeframe=15Min``."""
    if interval.minutes is not None:
        m = interval.minutes
        if m < 60:
            return m, "Min"
        if m % 60 == 0 and m // 60 < 24:
            return m // 60, "Hour"
    elif interval.name == "1d":
        return 1, "Day"
    elif interval.name == "1wk":
        return 1, "Week"
    elif interval.name in ("1mo", "2mo", "3mo", "6mo", "12mo"):
        return int(interval.name[:-2]), "Month"
    raise NotSupported(f"Alpaca has no {interval.name} bars", broker=BROKER, field="interval")


# GET /v2/stocks/bars -> {"bars": {"AAPL": [ <this>, ... ]}, "next_page_token": null}
# {"t":"2024-04-29T04:00:00Z","o":173.37,"h":176.03,"l":173.10,"c":173.50,"v":68169419,"n":800000,"vw":174.2}
@_parser
def bars_frame(bars: list[dict[str, Any]], intraday: bool, **attrs: Any) -> pd.DataFrame:
    """Alpaca bars -> history frame. Daily and longer bars (stamped at New York midnight) are labelled with
    their session date at 00:00 UTC, like every other source; intraday bars keep their UTC start."""
    if not bars:
        return empty_history(**attrs)
    stamps = pd.to_datetime([b["t"] for b in bars], utc=True, format="ISO8601")
    if not intraday:
        stamps = stamps.tz_convert("America/New_York").normalize().tz_localize(None).tz_localize("UTC")
    cols = {k: np.fromiter((b[k] for b in bars), dtype="float64", count=len(bars)) for k in "ohlcv"}
    return history_frame(stamps, cols["o"], cols["h"], cols["l"], cols["c"], cols["v"], **attrs)


def _stream_time(value: Any) -> datetime | None:
    """A market-data stream timestamp: a msgpack ``Timestamp`` (alpaca-py's codec) or RFC 3339 text (JSON)."""
    return value.to_datetime() if hasattr(value, "to_datetime") else parse_time(value)


# market-data websocket, one trade (msgpack; "t" is a msgpack Timestamp, RFC 3339 text in JSON):
# {"T":"t","S":"AAPL","i":52983525029461,"x":"V","p":170.1,"s":100,"c":["@"],"z":"C",
#  "t":Timestamp(seconds=1714573800, nanoseconds=123456789)}
@_parser
def stream_trade(msg: dict[str, Any], previous: Quote) -> Quote:
    """``previous`` (the symbol's quote so far) with this trade's price as ``last``."""
    return trusted(Quote, {**previous.__dict__, "last": to_decimal(msg["p"]),
                           "ts": _stream_time(msg.get("t")) or previous.ts,
                           "simulated": bool(msg.get("wb_simulated", previous.simulated))})


# market-data websocket, one quote:
# {"T":"q","S":"AAPL","bx":"V","bp":170.0,"bs":2,"ax":"V","ap":170.2,"as":1,"c":["R"],"z":"C","t":Timestamp(...)}
@_parser
def stream_quote(msg: dict[str, Any], previous: Quote) -> Quote:
    """``previous`` with this quote's bid and ask (a zero price means no bid / no ask)."""
    return trusted(Quote, {**previous.__dict__, "bid": to_decimal(msg.get("bp")) or None,
                           "ask": to_decimal(msg.get("ap")) or None,
                           "ts": _stream_time(msg.get("t")) or previous.ts,
                           "simulated": bool(msg.get("wb_simulated", previous.simulated))})
