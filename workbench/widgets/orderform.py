"""Pure rules behind the order ticket: tick sizes, typed numbers, the fat-finger guard, the preview's arithmetic.

No widgets here, so each rule is tested on its own and the ticket only wires them to its fields.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from workbench.core import display
from workbench.core.enums import Side
from workbench.core.errors import InvalidInput, shown
from workbench.core.models import NeutralOrder

from .config import WidgetsConfig

__all__ = ["tick_size", "round_to_tick", "parse_number", "order_notional", "guard_reason", "buying_power_after"]

_PENNY, _SUB_PENNY = Decimal("0.01"), Decimal("0.0001")


def tick_size(price: Decimal) -> Decimal:
    """US equity tick: 0.01 at or above $1, 0.0001 below (SEC Rule 612)."""
    return _PENNY if price >= 1 else _SUB_PENNY


def round_to_tick(price: Decimal) -> Decimal:
    """``price`` on its tick (half-even): 145.127 -> 145.13, 0.43217 -> 0.4322."""
    tick = tick_size(price)
    return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick


def parse_number(value: Any, field: str) -> Decimal | None:
    """A number typed into the ticket; 0 / empty means "not given" (InvalidInput naming ``field`` if not a number)."""
    if value is None or isinstance(value, str) and not value:
        return None
    try:
        number = Decimal(repr(float(value)) if isinstance(value, float) else str(value))  # (np.float64 too)
    except InvalidOperation:
        raise InvalidInput(f"{shown(value)} is not a number", field=field) from None
    if not number.is_finite():
        raise InvalidInput(f"{shown(value)} is not a finite number", field=field)
    if number == 0:
        return None
    if number != number.to_integral_value():
        return number
    try:
        return number.quantize(Decimal(1))  # 10.0 -> 10
    except InvalidOperation:  # more digits than Decimal holds: out of every bound anyway, the order refuses it
        return number


def order_notional(order: NeutralOrder, last: Decimal | None) -> Decimal | None:
    """What ``order`` is worth: its cash amount, or qty x (limit, else stop, else the last price); None if unknown."""
    if order.notional is not None:
        return order.notional
    price = order.limit_price or order.stop_price or last
    return None if price is None or order.qty is None else order.qty * price


def guard_reason(order: NeutralOrder, last: Decimal | None, config: WidgetsConfig) -> str | None:
    """Why ``order`` needs an explicit confirm click (the fat-finger guard), or None.

    The guard fails safe: an order it cannot check (no last price yet) needs the confirm too.
    """
    notional = order_notional(order, last)
    if notional is None:
        return "no last price yet to check the order's notional"
    if notional > config.confirm_notional:
        return (f"notional {display.fmt_num(notional)} is above widgets.confirm_notional "
                f"{display.fmt_num(config.confirm_notional)}")
    for name in ("limit_price", "stop_price"):
        value = getattr(order, name)
        if value is None:
            continue
        if not last:
            return f"no last price yet to check {name} {display.fmt_price(value)} against"
        away = abs(value - last) / last * 100
        if away > config.confirm_away_pct:
            return (f"{name} {display.fmt_price(value)} is {away:.1f}% away from the last price "
                    f"{display.fmt_price(last)} (widgets.confirm_away_pct {config.confirm_away_pct}%)")
    return None


def buying_power_after(buying_power: Decimal, side: Side, qty: Decimal, price: Decimal, commission: Decimal,
                       held: Decimal, cash_account: bool) -> Decimal:
    """Buying power once ``side`` ``qty`` at ``price`` has filled and its commission is paid.

    ``cash_account`` (the paper broker): a buy spends its notional and a sell (closing or short) credits it,
    exactly as the paper ledger books it. Otherwise (margin brokers; an estimate): the part of the trade that
    closes the ``held`` position (signed qty) frees buying power, the part that opens or adds to one uses it.
    """
    notional = qty * price
    if cash_account:
        return buying_power - side.sign * notional - commission
    closes = held > 0 if side is Side.SELL else held < 0
    closing = min(qty, abs(held)) * price if closes else Decimal(0)
    return buying_power + closing - (notional - closing) - commission
