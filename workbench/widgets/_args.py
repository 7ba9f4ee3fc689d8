"""The desk widgets' argument checks, run before a constructor makes any widget, subscription, timer or thread.

A bad argument is one typed error naming the field (:class:`~workbench.core.errors.InvalidInput`; a broker
name the factory does not know is the same ConfigError ``workbench.connect`` raises), and nothing is left
behind. The history and fills windows are checked by the facade's own argument checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.core.enums import OrderStatus
from workbench.core.errors import InvalidInput, shown
from workbench.core.intervals import parse_interval
from workbench.core.models import MAX_QTY, parse_symbol
from workbench.facade_args import check_timeout, history_args, order_id_args, orders_history_args

from .orderform import parse_number

if TYPE_CHECKING:
    from datetime import datetime

    from workbench.facade import Broker

__all__ = ["open_broker", "ticket_args", "chart_args", "feed_args", "seconds_arg", "callback_arg", "wait_args",
           "check_timeout", "order_id_arg", "parse_symbol"]

#: Chart kinds: candles, or OHLC bars.
CHART_KINDS = ("candle", "ohlc")
#: The longest refresh period a blotter takes (a day), as ``widgets.refresh_seconds`` allows.
MAX_REFRESH_SECONDS = 86_400.0


F = TypeVar("F", bound=Callable[..., Any])


def _unchained(fn: F) -> F:
    """Refused input carries no chained library complaint (a date parser's, say), as the facade's errors do not."""

    @functools.wraps(fn)
    def check(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            raise exc from None

    return check  # type: ignore[return-value]


def open_broker(value: Any, field: str = "broker") -> Broker:
    """``value`` if it is an open :class:`~workbench.Broker`; InvalidInput naming ``field``, or BrokerClosed."""
    from workbench.facade import Broker

    if not isinstance(value, Broker):
        raise InvalidInput(f"{field} must be a Broker from workbench.connect(), not {shown(value)}", field=field)
    value._refuse_if_closed()
    return value


@_unchained
def ticket_args(broker: Any, symbol: Any, qty: Any, settings: Any) -> tuple[str, float]:
    """The ticket's (symbol, qty), with ``broker`` checked: None or a broker name (the ticket connects it, with
    ``settings``; an unknown name is refused by the factory when it does), or an open Broker (then no
    ``settings``: it has its own)."""
    if broker is not None and not isinstance(broker, str):
        open_broker(broker)
        if settings is not None:
            raise InvalidInput("settings are for the broker the ticket connects (broker=None or a broker name); "
                               f"this {broker.name} Broker has its own", field="settings")
    symbol = parse_symbol(symbol)
    number = parse_number(qty, "qty")  # None: 0 or empty, "enter a quantity" on the ticket
    if number is not None and not 0 < number <= MAX_QTY:
        raise InvalidInput(f"qty must be a number of shares from 0 to {MAX_QTY:,.0f}, got {shown(qty)}", field="qty")
    return symbol, float(number or 0)


@_unchained
def chart_args(broker: Any, symbol: Any, days: Any, interval: Any, kind: Any) -> tuple[str, int, str, str]:
    """The chart's (symbol, days, interval name, kind), checked as ``get_history`` checks them."""
    open_broker(broker)
    symbol = parse_symbol(symbol)
    if days is None:
        raise InvalidInput("days must be a whole number of days, not None", field="days")
    _, window = history_args(broker, symbol, days=days, interval=interval)
    if kind not in CHART_KINDS:
        raise InvalidInput(f"kind must be 'candle' or 'ohlc', not {shown(kind)}", field="kind")
    return symbol, window["days"], parse_interval(interval).name, kind


@_unchained
def feed_args(broker: Any, limit: Any, since: Any) -> tuple[int | None, datetime | None]:
    """The fills feed's (limit, since), checked as ``get_orders_history`` checks them."""
    open_broker(broker)
    _, window = orders_history_args(broker, limit=limit, since=since)
    return window["limit"], window["since"]


def seconds_arg(value: Any, field: str, upper: float = MAX_REFRESH_SECONDS) -> float | None:
    """None, or a number of seconds in (0, ``upper``]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= upper:  # (NaN: False)
        raise InvalidInput(f"{field} must be a number of seconds in (0, {upper:g}] or None, got {shown(value)}",
                           field=field)
    return float(value)


def callback_arg(value: Any, takes: str, field: str = "callback") -> Callable[..., Any]:
    if not callable(value):
        raise InvalidInput(f"{field} must be callable (it receives {takes}), not {shown(value)}", field=field)
    return value


def order_id_arg(broker: Broker, order_id: Any) -> str:
    (order_id,), _ = order_id_args(broker, order_id)
    return order_id


def wait_args(status: Any, timeout: Any) -> tuple[OrderStatus | None, float]:
    """``wait(status, timeout)``: a status spelling (or None) and a timeout in seconds."""
    wanted = None
    if status is not None:
        try:
            wanted = OrderStatus(status)
        except (ValueError, TypeError):
            names = ", ".join(s.value for s in OrderStatus)
            raise InvalidInput(f"status must be one of {names}, not {shown(status)}", field="status") from None
    return wanted, check_timeout(timeout)
