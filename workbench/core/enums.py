"""Broker-neutral enums and the canonical order-status state machine.

Every enum accepts what users type, case-insensitively (``Side("buy")``, ``OrderType("limit")``), plus
the common broker spellings listed in each ``_ALIASES`` table (``"LMT"``, ``"canceled"``...).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = ["Side", "OrderType", "TimeInForce", "OrderStatus", "Feature", "status_from_fills"]


class _ParseEnum(StrEnum):
    """A StrEnum that looks values up case-insensitively and through an alias table."""

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def _missing_(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return None
        key = value.strip().upper().replace("-", "_")
        return cls._lookup().get(cls._aliases().get(key, key))

    @classmethod
    def _lookup(cls) -> dict[str, Any]:
        """Value -> member, built once per class (``_missing_`` runs on every lower-case spelling)."""
        table = cls.__dict__.get("_lookup_table")
        if table is None:
            table = {member.value: member for member in cls}
            type.__setattr__(cls, "_lookup_table", table)  # Enum classes refuse new attributes otherwise
        return table


class Side(_ParseEnum):
    BUY = "BUY"
    SELL = "SELL"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"B": "BUY", "S": "SELL", "BOT": "BUY", "SLD": "SELL"}

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Side.BUY else -1


class OrderType(_ParseEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"  # a stop that follows the price by trail_price or trail_percent

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"MKT": "MARKET", "LMT": "LIMIT", "STP": "STOP", "STP LMT": "STOP_LIMIT", "STOPLIMIT": "STOP_LIMIT",
                "TRAIL": "TRAILING_STOP", "TRAILING": "TRAILING_STOP", "TRAILINGSTOP": "TRAILING_STOP"}

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)

    @property
    def needs_trail(self) -> bool:
        """Whether the order takes ``trail_price`` or ``trail_percent`` (exactly one)."""
        return self is OrderType.TRAILING_STOP


class TimeInForce(_ParseEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    OPG = "OPG"  # at the opening auction
    CLS = "CLS"  # at the closing auction


class Feature(_ParseEnum):
    """Optional adapter features, advertised in ``AdapterBase.capabilities``."""

    STREAM_FILLS = "STREAM_FILLS"
    MARKET_DATA_STREAM = "MARKET_DATA_STREAM"
    HISTORY = "HISTORY"
    SHORTING = "SHORTING"
    FRACTIONAL = "FRACTIONAL"
    PARTIAL_FILLS = "PARTIAL_FILLS"
    MARKET_CALENDAR = "MARKET_CALENDAR"
    PERSISTENT_LEDGER = "PERSISTENT_LEDGER"
    NOTIONAL = "NOTIONAL"  # market orders sized by cash amount (``notional``) instead of ``qty``
    STREAM_ORDERS = "STREAM_ORDERS"  # ``stream_orders()``: an Order snapshot on every status/fill change


class OrderStatus(_ParseEnum):
    """Canonical order status.

    Transitions only move forward (see :data:`_TRANSITIONS`): a late ``NEW`` never overwrites
    ``FILLED``. Use :meth:`advance` to merge an incoming status into the current one.
    """

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"CANCELED": "CANCELLED", "OPEN": "NEW", "PARTIAL": "PARTIALLY_FILLED"}

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in _TERMINAL

    def can_become(self, new: OrderStatus) -> bool:
        """Whether moving from this status to ``new`` is a legal forward transition."""
        return new in _TRANSITIONS[self]

    def advance(self, new: OrderStatus | str) -> OrderStatus:
        """Return the status after seeing ``new``: ``new`` if the transition is legal, else ``self``.

        Stale or out-of-order updates (``NEW`` after ``FILLED``) are ignored rather than raised,
        because brokers do deliver them late.
        """
        if not isinstance(new, OrderStatus):
            new = OrderStatus(new)
        return new if new is self or self.can_become(new) else self


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_S = OrderStatus
_END = {_S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.REJECTED}
#: Legal transitions. A pending cancel may fall back to a working state when the cancel is refused.
_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_NEW: frozenset({_S.NEW, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL} | _END),
    _S.NEW: frozenset({_S.PARTIALLY_FILLED, _S.PENDING_CANCEL} | _END),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.PENDING_CANCEL} | _END),
    _S.PENDING_CANCEL: frozenset({_S.NEW, _S.PARTIALLY_FILLED} | _END),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REJECTED: frozenset(),
}
del _S, _END


def status_from_fills(status: OrderStatus, filled_qty: Decimal, qty: Decimal) -> OrderStatus:
    """Refine a working status with the filled quantity.

    Brokers such as IB never send a partial-fill status; it is derived here: a working order with
    ``0 < filled < qty`` is PARTIALLY_FILLED, and one with ``filled >= qty`` is FILLED.
    """
    if status.is_terminal and status is not OrderStatus.CANCELLED:
        return status
    if filled_qty >= qty > 0:
        return OrderStatus.FILLED
    if filled_qty > 0 and status in (OrderStatus.NEW, OrderStatus.PENDING_NEW):
        return OrderStatus.PARTIALLY_FILLED
    return status
