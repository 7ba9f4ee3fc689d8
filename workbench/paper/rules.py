"""Pure rules of the paper engine: bounds and tick sizes (also of a modification), trailing stops, notional sizing,
which orders reserve at the market price, position marks."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.enums import OrderType, Side
from workbench.core.errors import InvalidOrder
from workbench.core.models import MAX_PRICE, MAX_QTY, NeutralOrder, Position

if TYPE_CHECKING:
    from .ledger import OrderRow

__all__ = ["check_bounds", "check_tick_size", "modified_order", "trail_stop", "notional_qty", "reserves_at_market",
           "mark", "ENGINE_ID", "engine_id"]

PRICE_Q = Decimal("0.0001")
AVG_Q = Decimal("0.000001")
#: Fractional shares are sized to 9 decimal places (as Alpaca does).
QTY_Q = Decimal("0.000000001")
_PENNY = Decimal("0.01")
_SUB_PENNY = Decimal("0.0001")
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)

#: The shape of the engine's own order ids; client order ids of this shape are refused, so that an id
#: is never ambiguous (``P000000002`` is always an order id).
ENGINE_ID = re.compile(r"P[0-9]{9,}")


def engine_id(seq: int) -> str:
    return f"P{seq:09d}"


#: Quantities and notionals are whole to 9 decimal places; the largest sizes and prices are the contract's
#: (beyond them Decimal arithmetic at 28 digits would start rounding cash). NeutralOrder validation already
#: refuses larger values: the engine checks again for orders built without validation (model_construct).
QTY_PLACES = 9


def check_bounds(order: NeutralOrder, broker: str) -> None:
    """InvalidOrder (naming the field) for sizes and prices no account can trade, or too finely divided."""
    for field in ("qty", "notional"):
        value = getattr(order, field)
        if value is None:
            continue
        if not -MAX_QTY <= value <= MAX_QTY:
            _out_of_range(field, value, MAX_QTY, broker)
        if value.quantize(QTY_Q, rounding=ROUND_DOWN) != value:  # exact: at most 21 digits here
            raise InvalidOrder(f"{field} {value} has more than {QTY_PLACES} decimal places", field=field,
                               broker=broker, code="too_precise")
    if order.limit_price is order.stop_price is order.trail_price is None:  # a market order
        return
    for field in ("limit_price", "stop_price", "trail_price"):
        value = getattr(order, field)
        if value is not None and value > MAX_PRICE:
            _out_of_range(field, value, MAX_PRICE, broker)


def _out_of_range(field: str, value: Decimal, most: Decimal, broker: str) -> None:
    raise InvalidOrder(f"{field} {value} is beyond what the paper broker takes (at most {most:,})",
                       field=field, broker=broker, code="out_of_range")


def check_tick_size(order: NeutralOrder, broker: str) -> None:
    """US equities quote in pennies at or above $1 and in 0.0001 below (SEC Rule 612)."""
    if order.limit_price is order.stop_price is order.trail_price is None:  # a market order
        return
    for field in ("limit_price", "stop_price", "trail_price"):
        price = getattr(order, field)
        if price is None:
            continue
        tick = _PENNY if price >= 1 or field == "trail_price" and price >= _PENNY else _SUB_PENNY
        if price % tick:
            raise InvalidOrder(f"{field} {price} is not a multiple of the tick size {tick}", field=field,
                               broker=broker, code="tick_size")


def modified_order(row: OrderRow, broker: str, **changes: Decimal | None) -> NeutralOrder:
    """The order ``row`` would be with ``changes`` applied, validated as a new order."""
    if row.notional is not None and changes.get("qty") is not None:
        raise InvalidOrder("a notional order is sized at its fill; its qty cannot be changed", field="qty",
                           broker=broker, code="notional_qty")
    fields: dict[str, Any] = {"symbol": row.symbol, "side": row.side, "order_type": row.order_type, "tif": row.tif,
                              "client_order_id": row.client_order_id, "limit_price": row.limit_price,
                              "trail_price": row.trail_price, "trail_percent": row.trail_percent,
                              "qty": row.qty if row.notional is None else None, "notional": row.notional,
                              "stop_price": None if row.order_type is OrderType.TRAILING_STOP else row.stop_price}
    if changes.get("trail_price") is not None:
        fields["trail_percent"] = None
    if changes.get("trail_percent") is not None:
        fields["trail_price"] = None
    fields.update({k: v for k, v in changes.items() if v is not None})
    try:
        request = NeutralOrder(**fields)
    except InvalidOrder as exc:
        raise InvalidOrder(exc.message, field=exc.field or "order", broker=broker, code="invalid_order") from exc
    check_bounds(request, broker)
    check_tick_size(request, broker)
    if request.qty is not None and request.qty < row.filled_qty:
        raise InvalidOrder(f"qty {request.qty} is below the filled {row.filled_qty}", field="qty",
                           broker=broker, code="qty_below_filled")
    return request


def trail_stop(side: Side, best: Decimal, trail_price: Decimal | None, trail_percent: Decimal | None) -> Decimal:
    """A trailing stop's trigger: ``best`` (the high for a sell, the low for a buy) moved by the trail.

    A sell stop sits below the high-water mark, a buy stop above the low-water mark.
    """
    if trail_price is not None:
        offset = trail_price
    else:
        assert trail_percent is not None
        offset = best * trail_percent / _HUNDRED
    return (best - offset if side is Side.SELL else best + offset).quantize(PRICE_Q)


def improves(side: Side, price: Decimal, best: Decimal) -> bool:
    """Whether ``price`` is a new high-water mark (sell) or low-water mark (buy)."""
    return price > best if side is Side.SELL else price < best


def crossed(side: Side, price: Decimal, stop: Decimal) -> bool:
    """Whether ``price`` triggers a stop at ``stop`` (a buy stop from below, a sell stop from above)."""
    return price >= stop if side is Side.BUY else price <= stop


def fill_price(side: Side, price: Decimal, slip: Decimal, limit: Decimal | None = None) -> Decimal:
    """What an order executing from ``price`` fills at: moved against the trader by ``slip`` (a fraction) and
    rounded against him to 0.0001 (a rounding never gives back part of the slippage), never beyond ``limit``."""
    if side is Side.BUY:
        fill = (price * (1 + slip)).quantize(PRICE_Q, rounding=ROUND_CEILING)
        return fill if limit is None else min(fill, limit)
    fill = (price * (1 - slip)).quantize(PRICE_Q, rounding=ROUND_FLOOR)
    return fill if limit is None else max(fill, limit)


def notional_qty(notional: Decimal, price: Decimal) -> Decimal:
    """Shares that ``notional`` buys (or raises) at ``price``, rounded down to 9 decimals."""
    return (notional / price).quantize(QTY_Q, rounding=ROUND_DOWN).normalize()


def initial_stop(order: NeutralOrder, price: Decimal) -> Decimal | None:
    """The trigger an order starts with (a trailing stop's first one comes from the current price)."""
    if order.order_type is OrderType.TRAILING_STOP:
        return trail_stop(order.side, price, order.trail_price, order.trail_percent)
    return order.stop_price


def reserves_at_market(row: OrderRow) -> bool:
    """Whether an open order reserves buying power at the market price (a buy with no limit or stop price,
    not yet partly filled: a market order, sized by qty or notional, waiting for its session)."""
    return row.side is Side.BUY and row.limit_price is None and row.stop_price is None and row.avg_fill_price is None


def mark(symbol: str, qty: Decimal, avg: Decimal, price: Decimal | None) -> Position:
    """A position marked at ``price``; ``unrealized_pnl_pct`` is a fraction of the cost (0.05 = 5 %)."""
    if price is None:
        return Position(symbol=symbol, qty=qty, avg_price=avg)
    pnl = (price - avg) * qty
    cost = abs(qty * avg)
    pct = (pnl / cost).quantize(AVG_Q) if cost else _ZERO
    return Position(symbol=symbol, qty=qty, avg_price=avg, market_price=price, market_value=qty * price,
                    unrealized_pnl=pnl, unrealized_pnl_pct=pct)
