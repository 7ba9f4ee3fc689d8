"""The facade's argument checks: each Broker method's arguments are validated here, in the caller's thread,
before anything is sent, and every bad one becomes one typed error naming the field.

The ``*_args`` functions are the ``prepare`` step of :data:`workbench.facade.OPERATIONS`; their signatures
(minus the first parameter) are the public signatures of the generated Broker methods.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.adapters.factory import known_adapters
from workbench.core.enums import Side
from workbench.core.errors import InvalidInput, InvalidOrder, shown
from workbench.core.models import NeutralOrder, Quote, parse_symbol
from workbench.core.settings import MAX_REQUEST_TIMEOUT
from workbench.marketdata.base import utc_timestamp

if TYPE_CHECKING:
    from workbench.facade import Broker

__all__ = ["MAX_HISTORY_DAYS", "MAX_LIMIT", "HISTORY_RANGE", "Number", "argument_error", "check_timeout",
           "order_args", "market_args", "limit_args", "symbol_args", "order_id_args", "history_args",
           "subscribe_args", "orders_history_args", "fills_args"]

#: The longest ``days=`` a history request may span (a century).
MAX_HISTORY_DAYS = 36_600

#: The most rows one ``limit=`` may ask for.
MAX_LIMIT = 10**9

#: No broker's order ids or client order ids are longer.
MAX_ORDER_ID = 128

Number = Decimal | int | float | str


def order_args(session: Broker, /, order: NeutralOrder | Mapping[str, Any] | None = None, **fields: Any):
    if order is None:
        payload: Any = fields
    elif fields:
        raise InvalidOrder("pass either an order or keyword fields, not both", field="order")
    else:
        payload = order
    parsed = NeutralOrder.parse(payload)
    if parsed.broker is not None and parsed.broker != session.name:
        known = known_adapters()
        hint = "" if parsed.broker in known else f" (unknown broker; known: {', '.join(sorted(known))})"
        raise InvalidOrder(f"order is for broker {shown(parsed.broker)} but this is {session.name!r}{hint}",
                           field="broker")
    return (parsed,), {}


def _no_order_type(method: str, fields: Mapping[str, Any]) -> None:
    if "order_type" in fields:
        raise InvalidOrder(f"{method} sets the order type itself; for another type use "
                           f"place_order(order_type={shown(fields['order_type'])}, ...)", field="order_type")


def market_args(session: Broker, /, symbol: str, qty: Number, side: Side | str, **fields: Any):
    _no_order_type("place_market_order", fields)
    return order_args(session, symbol=symbol, qty=qty, side=side, order_type="MARKET", **fields)


def limit_args(session: Broker, /, symbol: str, qty: Number, side: Side | str, limit_price: Number,
               **fields: Any):
    _no_order_type("place_limit_order", fields)
    return order_args(session, symbol=symbol, qty=qty, side=side, order_type="LIMIT", limit_price=limit_price,
                      **fields)


def symbol_args(session: Broker, /, symbol: str):
    return (parse_symbol(symbol),), {}


def order_id_args(session: Broker, /, order_id: str):
    if not isinstance(order_id, str) or not order_id.strip() or len(order_id) > MAX_ORDER_ID:
        raise InvalidInput(f"order_id must be an order id or client order id string, not {shown(order_id)}",
                           field="order_id")
    return (order_id.strip(),), {}


def history_args(session: Broker, /, symbol: str | Iterable[str], days: int | None = None,
                  start: datetime | str | None = None, end: datetime | str | None = None, interval: str = "1d"):
    days = _whole(days)
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_HISTORY_DAYS):
        raise InvalidInput(f"days must be a whole number of days from 1 to {MAX_HISTORY_DAYS}, got {shown(days)}",
                           field="days")
    if not isinstance(interval, str):
        raise InvalidInput(f"interval must be a string such as '1d' or '5m', not {shown(interval)}", field="interval")
    kwargs = {"days": days, "start": _date_arg(start, "start"), "end": _date_arg(end, "end"), "interval": interval}
    if isinstance(symbol, str):
        return (parse_symbol(symbol),), kwargs
    symbols = _symbol_list(symbol)
    return (symbols,), kwargs, "get_history_many"  # several symbols: one long (symbol, ts) frame


#: Dates given to history: wide, yet ``days`` (at most a century) on either side stays within pandas'
#: nanosecond timestamps (1677-2262).
HISTORY_RANGE = (pd.Timestamp("1800-01-01", tz="UTC"), pd.Timestamp("2150-01-01", tz="UTC"))


def _date_arg(value: Any, field: str, bounds: tuple[pd.Timestamp, pd.Timestamp] | None = HISTORY_RANGE
              ) -> datetime | None:
    """``start``/``end``/``since`` as a UTC datetime (naive = UTC), checked once here for every adapter."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float, Decimal)):
        raise InvalidInput(f"{field} must be a date, a datetime or an ISO date string, not {shown(value)}", field=field)
    if not isinstance(value, (str, date, np.datetime64)) or isinstance(value, str) and len(value) > 64:
        raise InvalidInput(f"{field} must be a date, a datetime or an ISO date string, not {shown(value)}", field=field)
    stamp = utc_timestamp(value, field)
    if stamp is None or (bounds is not None and not bounds[0] <= stamp <= bounds[1]):
        raise InvalidInput(f"{field} must be between {bounds[0].date()} and {bounds[1].date()}, got {shown(value)}",
                           field=field)
    try:
        return stamp.to_pydatetime(warn=False)  # (nanoseconds: finer than any broker keeps)
    except (ValueError, OverflowError):  # year 0, or past 9999
        raise InvalidInput(f"{field} is not a date Python can hold: {shown(value)}", field=field) from None


def _symbol_list(symbols: Any, field: str = "symbol") -> tuple[str, ...]:
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, Iterable) or isinstance(symbols, Mapping):
        raise InvalidInput(f"{field} must be a symbol or a list of symbols, not {type(symbols).__name__}",
                           field=field)
    parsed = tuple(dict.fromkeys(parse_symbol(s, field) for s in symbols))  # (duplicates once)
    if not parsed:
        raise InvalidInput("give at least one symbol", field=field)
    return parsed


def subscribe_args(session: Broker, /, symbols: str | Iterable[str], callback: Callable[[Quote], Any]):
    wanted = (parse_symbol(symbols, "symbols"),) if isinstance(symbols, str) else _symbol_list(symbols, "symbols")
    if not callable(callback):
        raise InvalidInput(f"callback must be callable (it receives each Quote), not {type(callback).__name__}",
                           field="callback")
    return (wanted, callback), {}


def orders_history_args(session: Broker, /, limit: int | None = 100, since: datetime | str | None = None):
    return (), {"limit": _limit(limit), "since": _since(since)}


def fills_args(session: Broker, /, since: datetime | str | None = None):
    return (), {"since": _since(since)}


def _whole(value: Any) -> Any:
    """A NumPy integer (``np.int64`` from a DataFrame) as the int it holds; anything else as is."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        return int(value)
    return value


def _limit(limit: Any) -> int | None:
    limit = _whole(limit)
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT} or None, got {shown(limit)}",
                           field="limit")
    return limit


def _since(since: Any) -> datetime | None:
    """A tz-aware UTC datetime (naive values and date strings are read as UTC), for every adapter."""
    return _date_arg(since, "since", bounds=None)  # it only filters: any date will do


#: Hints for arguments users reach for that an operation does not take.
_ARGUMENT_HINTS = {
    ("get_history", "since"): "history takes start= and end= (end is exclusive) or days=, not since=",
    ("get_history", "limit"): "history takes start= and end= (end is exclusive) or days=, not limit=",
}



def check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= MAX_REQUEST_TIMEOUT:
        raise InvalidInput(f"timeout must be a number of seconds in (0, {MAX_REQUEST_TIMEOUT:g}], got {shown(value)}",
                           field="timeout")
    return float(value)


def argument_error(op: str, sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any],
                    error: type[InvalidInput]) -> InvalidInput | None:
    """The typed error for arguments that do not fit ``sig`` (None if they fit)."""
    params = list(sig.parameters.values())[1:]  # without self
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params if p.kind is not kinds.VAR_KEYWORD}
    takes = ", ".join(p.name if p.default is kinds.empty else f"{p.name}=" for p in params
                      if p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL))
    if len(args) > len(positional) and not any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return error(f"{op}() takes {len(positional)} positional argument(s) ({takes}), got {len(args)}; "
                     "pass the others by name", field="args")
    for name in kwargs:
        if name not in names and not any(p.kind is kinds.VAR_KEYWORD for p in params):
            hint = _ARGUMENT_HINTS.get((op, name), f"it takes {takes}")
            return error(f"{op}() has no argument {shown(name)}: {hint}", field=name)
        if name in {p.name for p in positional[:len(args)]}:
            return error(f"{op}() got {shown(name)} twice (by position and by name)", field=name)
    given = {p.name for p in positional[:len(args)]} | set(kwargs)
    for p in params:
        if p.default is kinds.empty and p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL) \
                and p.name not in given:
            return error(f"{op}() needs {p.name} ({takes})", field=p.name)
    return None
