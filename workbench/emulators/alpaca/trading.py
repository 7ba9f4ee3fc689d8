"""Trading API routes (``/v2/...``): account, clock, calendar, assets, positions, orders, FILL activities.

Bodies and error answers follow Alpaca's (``../shared/reference/alpaca-and-yfinance.md`` A2): money as
strings, UUID ids, ``{"code": ..., "message": ...}`` errors.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import pandas as pd
from aiohttp import web

from workbench.adapters.alpaca.parse import check_order
from workbench.core.enums import OrderType, Side, TimeInForce
from workbench.core.errors import (InsufficientFunds, InvalidOrder, MarketClosed, NotSupported, OrderRejected,
                                   SymbolNotFound, WorkbenchError)
from workbench.core.log import get_logger
from workbench.core.models import NeutralOrder, Order

from .book import Entry, asset_id, num
from .server import EMULATOR, error

if TYPE_CHECKING:
    from .server import AlpacaEmulator

log = get_logger(__name__)
_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF", "XLK", "EEM", "VTI", "VOO", "IVV"})
#: Neutral field -> the name Alpaca's error messages use.
_ALPACA_FIELD = {"tif": "time_in_force", "order_type": "type"}
_ZERO = Decimal(0)


def _emu(request: web.Request) -> AlpacaEmulator:
    return request.app[EMULATOR]


def _dec(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(value if isinstance(value, str) else repr(value))
    except (InvalidOperation, TypeError):
        raise InvalidOrder(f"invalid {field}", field=field) from None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def _reject(exc: WorkbenchError) -> web.Response:
    """An engine refusal as Alpaca answers it."""
    message = getattr(exc, "message", str(exc))
    if isinstance(exc, InsufficientFunds):
        return error(403, 40310000, "insufficient buying power")
    if isinstance(exc, SymbolNotFound):
        return error(422, 40010001, f"asset not found: {message}")
    if isinstance(exc, InvalidOrder):
        field = _ALPACA_FIELD.get(exc.field or "", exc.field or "order")
        return error(422, 40010001, f"invalid {field}: {message}")
    if isinstance(exc, NotSupported):
        return error(422, 42210000, f"not supported: {message}")
    if isinstance(exc, MarketClosed):
        return error(422, 42210000, f"market is closed: {message}")
    if isinstance(exc, OrderRejected) and exc.code == "short_not_allowed":
        return error(403, 40310000, f"insufficient qty available for order ({message})")
    return error(422, 42210000, message)


def _symbol_known(emu: AlpacaEmulator, symbol: str) -> bool:
    has = getattr(emu.engine.prices, "has_symbol", None)
    return bool(has(symbol)) if has is not None else True


# -- account, clock, calendar, assets ----------------------------------------------------------


async def get_account(request: web.Request) -> web.Response:
    emu = _emu(request)
    info = await emu.run_engine(emu.engine.account)
    positions = await emu.run_engine(emu.engine.positions)
    long_value = sum((p.market_value or _ZERO for p in positions if p.qty > 0), _ZERO)
    short_value = sum((p.market_value or _ZERO for p in positions if p.qty < 0), _ZERO)
    money = {k: num(v) for k, v in (("cash", info.cash), ("buying_power", info.buying_power),
                                    ("regt_buying_power", info.buying_power), ("daytrading_buying_power", _ZERO),
                                    ("non_marginable_buying_power", info.buying_power),
                                    ("options_buying_power", info.buying_power), ("portfolio_value", info.equity),
                                    ("equity", info.equity), ("last_equity", info.last_equity),
                                    ("long_market_value", long_value), ("short_market_value", short_value),
                                    ("initial_margin", _ZERO), ("maintenance_margin", _ZERO),
                                    ("last_maintenance_margin", _ZERO), ("sma", _ZERO), ("multiplier", Decimal(1)),
                                    ("accrued_fees", _ZERO))}
    return web.json_response({
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "account:" + info.id)), "account_number": info.id,
        "status": "ACTIVE", "crypto_status": "INACTIVE", "currency": info.currency, **money,
        "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
        "trade_suspended_by_user": False, "shorting_enabled": bool(emu.engine.config.allow_short),
        "daytrade_count": 0, "options_approved_level": 0, "options_trading_level": 0,
        "wb_simulated": bool(getattr(emu.engine.prices, "simulated", False)),  # an extra key alpaca-py ignores
        "created_at": "2024-01-02T15:04:05.000000Z"})


async def get_clock(request: web.Request) -> web.Response:
    emu = _emu(request)
    clock = emu.engine.calendar.clock(emu.engine.clock())
    ny = "America/New_York"
    return web.json_response({
        "timestamp": pd.Timestamp(clock.ts).tz_convert(ny).isoformat(), "is_open": clock.is_open,
        "next_open": pd.Timestamp(clock.next_open).tz_convert(ny).isoformat(),
        "next_close": pd.Timestamp(clock.next_close).tz_convert(ny).isoformat()})


async def get_calendar(request: web.Request) -> web.Response:
    emu = _emu(request)
    cal = emu.engine.calendar._cal  # exchange_calendars: sessions with their open and close
    today = emu.engine.clock().date()
    start = date.fromisoformat(request.query.get("start", str(today - timedelta(days=30)))[:10])
    end = date.fromisoformat(request.query.get("end", str(today + timedelta(days=30)))[:10])
    sessions = cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end)) if start <= end else []
    out = []
    for session in sessions:
        opens = cal.session_open(session).tz_convert("America/New_York")
        closes = cal.session_close(session).tz_convert("America/New_York")
        out.append({"date": session.strftime("%Y-%m-%d"), "open": opens.strftime("%H:%M"),
                    "close": closes.strftime("%H:%M"), "session_open": "0400", "session_close": "2000",
                    "settlement_date": (session + pd.offsets.BDay(1)).strftime("%Y-%m-%d")})
    return web.json_response(out)


def _asset(symbol: str) -> dict[str, Any]:
    return {"id": asset_id(symbol), "class": "us_equity", "exchange": "ARCA" if symbol in _ETFS else "NASDAQ",
            "symbol": symbol, "name": symbol, "status": "active", "tradable": True, "marginable": True,
            "shortable": True, "easy_to_borrow": True, "fractionable": True, "min_order_size": "1",
            "min_trade_increment": "0.000000001", "price_increment": "0.01", "maintenance_margin_requirement": 30,
            "attributes": []}


async def get_assets(request: web.Request) -> web.Response:
    symbols = getattr(_emu(request).engine.prices, "symbols", lambda: [])()
    if request.query.get("status", "active") not in ("active", ""):
        symbols = []
    return web.json_response([_asset(s) for s in symbols])


async def get_asset(request: web.Request) -> web.Response:
    symbol = request.match_info["symbol"].upper()
    if not _symbol_known(_emu(request), symbol):
        return error(404, 40410000, "asset not found")
    return web.json_response(_asset(symbol))


# -- positions ---------------------------------------------------------------------------------


def _position(p: Any, working: list[Order]) -> dict[str, Any]:
    """Alpaca's position; ``qty_available`` is what open orders on the closing side do not hold yet."""
    qty = p.qty
    cost = abs(qty * p.avg_price)
    closing = Side.SELL if qty > 0 else Side.BUY
    held = sum(((o.qty or _ZERO) - o.filled_qty for o in working if o.symbol == p.symbol and o.side is closing),
               _ZERO)
    available = (abs(qty) - held).max(_ZERO) * (1 if qty > 0 else -1)
    return {"asset_id": asset_id(p.symbol), "symbol": p.symbol, "exchange": "ARCA" if p.symbol in _ETFS else "NASDAQ",
            "asset_class": "us_equity", "asset_marginable": True, "qty": num(qty), "qty_available": num(available),
            "avg_entry_price": num(p.avg_price), "side": "long" if qty > 0 else "short",
            "market_value": num(p.market_value), "cost_basis": num(cost), "unrealized_pl": num(p.unrealized_pnl),
            "unrealized_plpc": num(p.unrealized_pnl_pct), "unrealized_intraday_pl": num(p.unrealized_pnl),
            "unrealized_intraday_plpc": num(p.unrealized_pnl_pct), "current_price": num(p.market_price),
            "lastday_price": num(p.market_price), "change_today": "0"}


async def get_positions(request: web.Request) -> web.Response:
    emu = _emu(request)
    working = await emu.run_engine(emu.engine.open_orders)
    return web.json_response([_position(p, working) for p in await emu.run_engine(emu.engine.positions)])


async def get_position(request: web.Request) -> web.Response:
    emu = _emu(request)
    position = await emu.run_engine(emu.engine.position, request.match_info["symbol"])
    if position is None:
        return error(404, 40410000, "position does not exist")
    return web.json_response(_position(position, await emu.run_engine(emu.engine.open_orders)))


async def _close(emu: AlpacaEmulator, position: Any, qty: Decimal | None = None) -> web.Response:
    size = abs(position.qty) if qty is None else qty
    order = NeutralOrder(symbol=position.symbol, side="sell" if position.qty > 0 else "buy", qty=size)
    try:
        result = await emu.run_engine(emu.engine.submit, order)
    except WorkbenchError as exc:
        return _reject(exc)
    return web.json_response(emu.book.order_json(emu.book.add(result)))


async def close_position(request: web.Request) -> web.Response:
    emu = _emu(request)
    position = await emu.run_engine(emu.engine.position, request.match_info["symbol"])
    if position is None:
        return error(404, 40410000, "position does not exist")
    qty = _dec(request.query.get("qty"), "qty")
    pct = _dec(request.query.get("percentage"), "percentage")
    if pct is not None:
        qty = (abs(position.qty) * pct / 100).quantize(Decimal("0.000000001"))
    if qty is not None and not 0 < qty <= abs(position.qty):
        return error(422, 40010001, f"invalid qty: must be in (0, {abs(position.qty)}]")
    return await _close(emu, position, qty)


async def close_all_positions(request: web.Request) -> web.Response:
    emu = _emu(request)
    if request.query.get("cancel_orders", "").lower() == "true":
        await _cancel_all(emu)
    out = []
    for position in await emu.run_engine(emu.engine.positions):
        answer = await _close(emu, position)
        out.append({"symbol": position.symbol, "status": answer.status, "body": _json(answer)})
    return web.json_response(out, status=207)


def _json(response: web.Response) -> Any:
    import json

    return json.loads(response.text or "null")


# -- orders ------------------------------------------------------------------------------------


def _neutral(body: dict[str, Any], client_order_id: str | None = None) -> tuple[NeutralOrder, Decimal | None]:
    if body.get("order_class") not in (None, "", "simple"):
        raise NotSupported(f"order_class {body['order_class']!r} is not supported by the emulator",
                           field="order_class")
    fields: dict[str, Any] = {"symbol": body.get("symbol"), "side": Side(str(body.get("side", ""))),
                              "order_type": OrderType(str(body.get("type") or body.get("order_type") or "")),
                              "tif": TimeInForce(str(body.get("time_in_force", "")))}
    for name in ("qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent"):
        value = _dec(body.get(name), name)
        if value is not None:
            fields[name] = value
    if client_order_id or body.get("client_order_id"):
        fields["client_order_id"] = client_order_id or body["client_order_id"]
    order = NeutralOrder(**fields)
    check_order(order)  # Alpaca's own rules: fractional and notional orders are DAY only
    return order, order.notional


async def submit_order(request: web.Request) -> web.Response:
    emu = _emu(request)
    try:
        body = await request.json()
        order, notional = _neutral(body)
    except WorkbenchError as exc:
        return _reject(exc)
    except ValueError as exc:
        return error(422, 40010001, f"invalid order: {exc}")
    if emu.book.by_client_id(order.client_order_id) is not None:
        return error(422, 40010001, "client_order_id must be unique")
    if not _symbol_known(emu, order.symbol):
        return error(422, 40010001, f"asset {order.symbol!r} not found")
    try:
        result = await emu.run_engine(emu.engine.submit, order)
    except WorkbenchError as exc:
        return _reject(exc)
    return web.json_response(emu.book.order_json(emu.book.add(result, notional=notional)))


def _entry(emu: AlpacaEmulator, key: str) -> Entry | None:
    return emu.book.find(key)


async def _fresh(emu: AlpacaEmulator, entry: Entry) -> Entry:
    order: Order = await emu.run_engine(emu.engine.get_order, entry.engine_id)
    return emu.book.add(order)


async def get_order(request: web.Request) -> web.Response:
    emu = _emu(request)
    entry = _entry(emu, request.match_info["order_id"])
    if entry is None:
        return error(404, 40410000, "order not found")
    return web.json_response(emu.book.order_json(await _fresh(emu, entry)))


async def get_order_by_client_id(request: web.Request) -> web.Response:
    emu = _emu(request)
    entry = emu.book.by_client_id(request.query.get("client_order_id", ""))
    if entry is None:
        return error(404, 40410000, "order not found")
    return web.json_response(emu.book.order_json(await _fresh(emu, entry)))


async def get_orders(request: web.Request) -> web.Response:
    emu = _emu(request)
    q = request.query
    status = q.get("status", "open")
    if status not in ("open", "closed", "all"):
        return error(422, 42210000, f"invalid status: {status!r} (open, closed or all)")
    if q.get("side") not in (None, "buy", "sell") or q.get("direction") not in (None, "asc", "desc"):
        return error(422, 42210000, "invalid side or direction")
    limit = min(int(q.get("limit", 50)), 500)
    after, until = _when(q.get("after")), _when(q.get("until"))
    symbols = {s.strip().upper() for s in q.get("symbols", "").split(",") if s.strip()}
    side = q.get("side")
    orders = await emu.run_engine(emu.engine.orders)
    picked = []
    for order in orders:
        if status == "open" and not order.is_open or status == "closed" and order.is_open:
            continue
        if after is not None and order.created_at <= after or until is not None and order.created_at >= until:
            continue
        if symbols and order.symbol not in symbols or side and order.side.value.lower() != side:
            continue
        picked.append(order)
    picked.sort(key=lambda o: (o.created_at, o.order_id), reverse=q.get("direction", "desc") == "desc")
    return web.json_response([emu.book.order_json(emu.book.add(o)) for o in picked[:limit]])


async def replace_order(request: web.Request) -> web.Response:
    """Alpaca's replace: the old order becomes ``replaced`` and a new order (new id) takes its place.

    A replacement Alpaca refuses (bad price, buying power...) leaves the old order working: it is checked
    first, against the account without the order it replaces, and only then is the old one cancelled.
    """
    emu = _emu(request)
    old = _entry(emu, request.match_info["order_id"])
    if old is None:
        return error(404, 40410000, "order not found")
    old = await _fresh(emu, old)
    o = old.order
    if not o.is_open:
        return error(422, 42210000, f"order is not replaceable: it is in \"{emu.book.order_json(old)['status']}\" state")
    if o.notional is not None:
        return error(422, 42210000, "notional orders cannot be replaced; cancel it and submit a new one")
    body = await request.json()
    remaining = (o.qty or _ZERO) - o.filled_qty
    fields = {"symbol": o.symbol, "side": o.side.value.lower(), "type": body.get("type", o.order_type.value.lower()),
              "time_in_force": body.get("time_in_force") or o.tif.value.lower(),
              "qty": body.get("qty") if body.get("qty") is not None else remaining,
              "limit_price": body.get("limit_price", o.limit_price), "stop_price": body.get("stop_price", o.stop_price),
              "client_order_id": body.get("client_order_id") or uuid.uuid4().hex}
    if o.order_type is OrderType.TRAILING_STOP:
        trail = body.get("trail")
        key = "trail_percent" if o.trail_percent is not None else "trail_price"
        fields[key] = trail if trail is not None else getattr(o, key)
        fields.pop("stop_price")
    try:
        replacement, _ = _neutral(fields)
        if emu.book.by_client_id(replacement.client_order_id) is not None:
            return error(422, 40010001, "client_order_id must be unique")
        await emu.run_engine(_check_replacement, emu.engine, old.engine_id, replacement, o.filled_qty)
    except WorkbenchError as exc:
        return _reject(exc)
    old.replacing = True
    cancelled = await emu.run_engine(emu.engine.cancel, old.engine_id)
    if not cancelled.status.name == "CANCELLED":  # it finished first
        old.replacing = False
        emu.book.add(cancelled)
        return error(422, 42210000, "order is not replaceable: it finished")
    try:
        result = await emu.run_engine(emu.engine.submit, replacement)
    except WorkbenchError as exc:  # refused although the check passed (the market closed meanwhile...)
        log.warning("replacement of %s refused after its check; the old order stays cancelled: %s", old.id, exc)
        emu.book.drain()
        old.replacing = False
        emu.book.emit("canceled", emu.book.add(cancelled))
        return _reject(exc)
    new = emu.book.add(result)
    emu.book.link(emu.book.add(cancelled), new)
    emu.book.emit("replaced", old, ts=datetime.now(UTC))
    emu.book.drain()
    return web.json_response(emu.book.order_json(new))


def _check_replacement(engine: Any, engine_id: str, new: NeutralOrder, filled: Decimal) -> None:
    """Raise what the engine refuses about ``new`` taking the place of order ``engine_id``; write nothing.

    The paper engine's own replace check (:meth:`PaperEngine.check_replace`: validated like a new order,
    buying power and position counted without the order being replaced) on the old order carrying the new
    order's terms; its filled part is added to the quantity so that what is left to fill is the new qty.
    """
    engine.check_replace(engine_id, qty=filled + new.qty if new.qty is not None else None,
                         limit_price=new.limit_price, stop_price=new.stop_price, trail_price=new.trail_price,
                         trail_percent=new.trail_percent)


async def cancel_order(request: web.Request) -> web.Response:
    emu = _emu(request)
    entry = _entry(emu, request.match_info["order_id"])
    if entry is None:
        return error(404, 40410000, "order not found")
    entry = await _fresh(emu, entry)
    if not entry.order.is_open:
        return error(422, 42210000, f"order is already in \"{emu.book.order_json(entry)['status']}\" state")
    await emu.run_engine(emu.engine.cancel, entry.engine_id)
    return web.Response(status=204)


async def _cancel_all(emu: AlpacaEmulator) -> list[dict[str, Any]]:
    out = []
    for order in await emu.run_engine(emu.engine.open_orders):
        result = await emu.run_engine(emu.engine.cancel, order.order_id)
        entry = emu.book.add(result)
        out.append({"id": entry.id, "status": 200, "body": emu.book.order_json(entry)})
    return out


async def cancel_orders(request: web.Request) -> web.Response:
    return web.json_response(await _cancel_all(_emu(request)), status=207)


# -- activities --------------------------------------------------------------------------------


async def get_fill_activities(request: web.Request) -> web.Response:
    emu = _emu(request)
    q = request.query
    if request.path.endswith("/activities") and "FILL" not in q.get("activity_types", "FILL").split(","):
        return web.json_response([])
    rows = await emu.run_engine(emu.book.fill_activities)
    after, until = _when(q.get("after")), _when(q.get("until"))
    rows = [r for r in rows if (after is None or _when(r["transaction_time"]) > after)
            and (until is None or _when(r["transaction_time"]) < until)]
    if q.get("direction", "desc") == "desc":
        rows.reverse()
    token = q.get("page_token")
    if token:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(token) + 1:] if token in ids else []
    size = min(int(q.get("page_size", 100)), 100)
    return web.json_response(rows[:size])


ROUTES = (
    ("GET", "/v2/account", get_account),
    ("GET", "/v2/clock", get_clock),
    ("GET", "/v2/calendar", get_calendar),
    ("GET", "/v2/assets", get_assets),
    ("GET", "/v2/assets/{symbol}", get_asset),
    ("GET", "/v2/positions", get_positions),
    ("DELETE", "/v2/positions", close_all_positions),
    ("GET", "/v2/positions/{symbol}", get_position),
    ("DELETE", "/v2/positions/{symbol}", close_position),
    ("POST", "/v2/orders", submit_order),
    ("GET", "/v2/orders", get_orders),
    ("DELETE", "/v2/orders", cancel_orders),
    ("GET", "/v2/orders:by_client_order_id", get_order_by_client_id),
    ("GET", "/v2/orders/{order_id}", get_order),
    ("PATCH", "/v2/orders/{order_id}", replace_order),
    ("DELETE", "/v2/orders/{order_id}", cancel_order),
    ("GET", "/v2/account/activities/FILL", get_fill_activities),
    ("GET", "/v2/account/activities", get_fill_activities),
)
