"""Broker-neutral models (pydantic v2), validated on construction.

Money and quantities are :class:`~decimal.Decimal` inside; DataFrames built by
:mod:`workbench.core.frames` turn them into float64 columns. Timestamps are tz-aware UTC.
Objects that come from a broker keep the broker's own payload in ``raw`` (and ``raw_status``).
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import display
from .enums import OrderStatus, OrderType, Side, TimeInForce
from .errors import InvalidInput, InvalidOrder, shown, shown_input, validation_message
from .settings import normalize_broker

__all__ = [
    "NeutralOrder",
    "Order",
    "FillEvent",
    "Position",
    "AccountInfo",
    "Bar",
    "Quote",
    "MarketClock",
    "new_client_order_id",
    "parse_symbol",
    "trusted",
    "MAX_QTY",
    "MAX_PRICE",
    "MIN_QUANTUM",
]

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]{0,23}$")
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
_BROKER = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")

#: Bounds on order sizes and prices: beyond them Decimal arithmetic in any ledger would overflow its
#: precision, and no real order is that large (or that small).
MAX_QTY = Decimal("1e12")
MAX_PRICE = Decimal("1e9")
MIN_QUANTUM = Decimal("1e-9")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


def _symbol(value: str) -> str:
    value = value.strip().upper()
    if not _SYMBOL.match(value):
        hint = " (several symbols? pass a list: ['AAPL', 'MSFT'])" if "," in value else ""
        raise ValueError(f"not a valid symbol: {shown(value)}{hint}")
    return value


def parse_symbol(value: Any, field: str = "symbol") -> str:
    """``value`` as a symbol (stripped, upper case), or InvalidInput naming ``field``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a symbol string such as 'AAPL', not {type(value).__name__}",
                           field=field)
    try:
        return _symbol(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None


def _not_tiny(value: Decimal) -> Decimal:
    if value < MIN_QUANTUM:
        raise ValueError(f"must be at least {MIN_QUANTUM}")
    return value


def _broker_name(value: str | None) -> str | None:
    if value is None:
        return None
    key = normalize_broker(value)
    if not _BROKER.match(key):
        raise ValueError(f"not a broker name: {shown(value)}")
    return key


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Symbol = Annotated[str, AfterValidator(_symbol)]
Qty = Annotated[Decimal, Field(gt=0, le=MAX_QTY, allow_inf_nan=False), AfterValidator(_not_tiny)]
Price = Annotated[Decimal, Field(gt=0, le=MAX_PRICE, allow_inf_nan=False), AfterValidator(_not_tiny)]
Notional = Annotated[Decimal, Field(gt=0, le=MAX_QTY, allow_inf_nan=False), AfterValidator(_not_tiny)]
Percent = Annotated[Decimal, Field(gt=0, lt=100, allow_inf_nan=False), AfterValidator(_not_tiny)]
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
BrokerName = Annotated[str | None, AfterValidator(_broker_name)]


def new_client_order_id() -> str:
    """A fresh client order id: ``wb-`` plus 24 hex digits."""
    return "wb-" + os.urandom(12).hex()  # as random as uuid4's hex, 5x cheaper on the order path


M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """``cls.model_construct(**values)`` for values that name every field and are already valid and of the right
    types (an engine's own rows, a broker payload parsed field by field), at a fraction of its cost (the order and
    fill hot paths): no defaults to fill, no extras or private state. ``values`` becomes the model's ``__dict__``."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    def __repr__(self) -> str:  # readable in notebooks and logs (workbench.core.display)
        return display.model_text(self)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return display.model_html(self)


class NeutralOrder(_Model):
    """An order request, the same for every broker.

    Bad input raises :class:`~workbench.core.errors.InvalidOrder` naming the field.

    >>> NeutralOrder(symbol="aapl", side="buy", qty=10)  # market DAY order, id generated
    """

    symbol: Symbol
    side: Side
    qty: Qty | None = None  # required unless ``notional`` is given
    order_type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    limit_price: Price | None = None
    stop_price: Price | None = None
    trail_price: Price | None = None  # TRAILING_STOP: the stop trails the best price by this amount...
    trail_percent: Percent | None = None  # ...or by this percentage (exactly one of the two)
    notional: Notional | None = None  # MARKET only: spend/raise this much cash instead of giving ``qty``
    client_order_id: str = Field(default_factory=new_client_order_id)
    broker: BrokerName = None  # which broker the order is meant for (checked by the Broker it is sent to)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # not chained: pydantic's text quotes the input (maybe a secret)
            raise _invalid_order(exc) from None

    @classmethod
    def parse(cls, payload: NeutralOrder | Mapping[str, Any]) -> NeutralOrder:
        """Build from a dict (ticket, JSON), raising InvalidOrder on bad input."""
        if isinstance(payload, NeutralOrder):
            return payload
        if not isinstance(payload, Mapping):
            raise InvalidOrder(f"an order payload must be a dict, not {type(payload).__name__}", field="order")
        for key in payload:
            if not isinstance(key, str):
                raise InvalidOrder(f"order field names must be strings, got {shown(key)}", field="order")
        return cls(**payload)

    @model_validator(mode="before")
    @classmethod
    def _plain_inputs(cls, data: Any) -> Any:
        """One pass over what the caller gave: NumPy scalars (``np.int64`` from a DataFrame) become the Python
        numbers they hold, and enum fields that are not strings are refused by type (the enum's own refusal
        would quote the value's repr, which may fail)."""
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            if isinstance(value, (str, int, float, Decimal)) or value is None:
                continue
            if isinstance(value, (bytes, bytearray)):  # (pydantic would decode them as text)
                raise InvalidOrder(f"{name} must be text, not {type(value).__name__}", field=name)
            if name in _ENUM_FIELDS:
                raise InvalidOrder(f"{name} must be a string such as {_ENUM_FIELDS[name]!r}, "
                                   f"not {type(value).__name__}", field=name)
            if isinstance(value, numbers.Real) and hasattr(value, "dtype") and not isinstance(value, bool):
                data = {**data, name: value.item()}
        return data

    @model_validator(mode="after")
    def _check_prices(self) -> NeutralOrder:
        kind = self.order_type
        if self.qty is None and self.notional is None:
            raise InvalidOrder("qty is required (or notional, for a market order sized in cash)", field="qty")
        if self.qty is not None and self.notional is not None:
            raise InvalidOrder("give qty or notional, not both", field="notional")
        if self.notional is not None and kind is not OrderType.MARKET:
            raise InvalidOrder(f"notional is for market orders only, not {kind}", field="notional")
        if kind.needs_trail and (self.trail_price is None) == (self.trail_percent is None):
            raise InvalidOrder("a TRAILING_STOP order needs exactly one of trail_price and trail_percent",
                               field="trail_price" if self.trail_price is None else "trail_percent")
        if not kind.needs_trail:
            for name in ("trail_price", "trail_percent"):
                if getattr(self, name) is not None:
                    raise InvalidOrder(f"a {kind} order takes no {name}", field=name)
        if kind.needs_limit_price and self.limit_price is None:
            raise InvalidOrder(f"a {kind} order needs limit_price", field="limit_price")
        if not kind.needs_limit_price and self.limit_price is not None:
            raise InvalidOrder(f"a {kind} order takes no limit_price", field="limit_price")
        if kind.needs_stop_price and self.stop_price is None:
            raise InvalidOrder(f"a {kind} order needs stop_price", field="stop_price")
        if not kind.needs_stop_price and self.stop_price is not None:
            raise InvalidOrder(f"a {kind} order takes no stop_price", field="stop_price")
        if not _CLIENT_ID.match(self.client_order_id):
            raise InvalidOrder("client_order_id must be 1-64 printable characters without spaces",
                               field="client_order_id")
        return self


_ENUM_FIELDS = {"side": "buy", "order_type": "limit", "tif": "day"}


def _invalid_order(exc: ValidationError) -> InvalidOrder:
    details = exc.errors(include_url=False)
    first = details[0]
    field = ".".join(str(p) for p in first["loc"]) or "order"
    message, got = validation_message(first), shown_input(first.get("input"))
    if not message.endswith(f": {got}"):  # our own validators quote the value already ("not a valid symbol: ''")
        message += f" (got {got})"
    return InvalidOrder(f"{field}: {message}", field=field, errors=details)


class Order(_Model):
    """An order as the broker knows it, with its canonical status and the broker's raw status."""

    broker: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal | None  # None only for a notional order the broker has not sized yet
    order_type: OrderType
    tif: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None  # for a TRAILING_STOP: the current trigger price, if known
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    notional: Decimal | None = None
    status: OrderStatus
    raw_status: str = ""
    filled_qty: Decimal = Decimal(0)
    avg_fill_price: Decimal | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    raw: Any = Field(default=None, repr=False)

    @property
    def remaining_qty(self) -> Decimal | None:
        """Quantity still to fill (None while a notional order is unsized)."""
        return None if self.qty is None else self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status.is_open


class FillEvent(_Model):
    """One execution. ``qty`` is the quantity of *this* fill, never the cumulative filled quantity."""

    broker: str
    local_id: str  # our client order id
    broker_id: str  # the broker's order id
    exec_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)
    ts: UtcDatetime
    raw: Any = Field(default=None, repr=False)


class Position(_Model):
    """A holding, marked to the latest price. ``qty`` is negative for a short."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    unrealized_pnl_pct: Decimal | None = None
    raw: Any = Field(default=None, repr=False)


class AccountInfo(_Model):
    """Balances of one account, in ``currency``."""

    id: str
    currency: str = "USD"
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    portfolio_value: Decimal
    last_equity: Decimal
    raw: Any = Field(default=None, repr=False)


class Bar(_Model):
    """One OHLCV bar; ``ts`` is the bar's start in UTC."""

    ts: UtcDatetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    symbol: str | None = None


class Quote(_Model):
    """A price snapshot. ``source`` names the data source; ``simulated`` is True for sim data."""

    symbol: str
    last: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    ts: UtcDatetime
    source: str
    simulated: bool = False
    delayed: bool = False  # True when the broker served delayed data (no live-data entitlement)


class MarketClock(_Model):
    """Whether the market is open at ``ts``, and the next open and close."""

    ts: UtcDatetime
    is_open: bool
    next_open: UtcDatetime
    next_close: UtcDatetime
    calendar: str = "XNYS"

