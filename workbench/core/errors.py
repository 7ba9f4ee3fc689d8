"""Typed errors: one tree rooted at :class:`WorkbenchError`.

::

    WorkbenchError
    ├── ConfigError                 settings file/key is malformed or unknown
    ├── InvalidInput                bad argument (interval, dates...); ``field`` names it
    │   └── InvalidOrder            bad order input; ``field`` names the culprit (never retry)
    ├── NotSupported                the adapter cannot carry this order/feature (checked before sending)
    ├── SymbolNotFound              unknown instrument
    ├── OrderNotFound               unknown order id / client order id
    └── BrokerError                 the broker (or data source) said no, or could not be reached
        ├── BrokerUnavailable       connection lost / refused / timed out (retryable)
        │   ├── RequestTimeout      a request did not finish in time (retryable)
        │   └── BrokerClosed        the Broker/adapter was closed; make a new one (not retryable)
        ├── RateLimited             pacing / HTTP 429 (retryable, after ``retry_after``)
        ├── AuthError               bad or missing credentials
        ├── DataEntitlementError    no subscription for the requested data
        └── OrderRejected           the broker refused the order (do not retry as is)
            ├── InsufficientFunds   buying power / position too small
            └── MarketClosed        the order cannot be accepted outside the session

Every error carries ``broker`` (set by the :class:`~workbench.Broker` it came through when the raiser
did not), ``code`` (the broker's code, or a workbench code such as ``"timeout"``; None for input
validation) and ``raw`` (the broker's own message or payload; None when workbench itself refused the
call), so nothing is lost when a broker code is mapped onto this tree. Validation errors keep the
validator's detail in ``errors`` (a list of dicts, secrets masked) instead of chaining it. Adapters map
codes through tables and ``raise ... from`` the original exception unless its text may hold a secret.

Every rendered part of an error (message, ``field``, ``key``, ``file``, ``code``, ``raw``) has the
registered secrets masked (:func:`workbench.core.log.mask_secrets`).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .log import mask_secrets, mask_value

__all__ = [
    "WorkbenchError",
    "ConfigError",
    "InvalidInput",
    "InvalidOrder",
    "NotSupported",
    "SymbolNotFound",
    "OrderNotFound",
    "BrokerError",
    "BrokerUnavailable",
    "RequestTimeout",
    "BrokerClosed",
    "RateLimited",
    "AuthError",
    "DataEntitlementError",
    "OrderRejected",
    "InsufficientFunds",
    "MarketClosed",
    "ERROR_CLASSES",
    "shown",
    "validation_message",
    "shown_input",
]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 40, 4, 4, 4, 4


def shown(value: Any) -> str:
    """How an error message quotes a caller's value: ``repr``, on one line, at most about 60 characters
    (a 5,000-character string or a DataFrame does not make the error pages long), and never failing (an
    object whose ``repr`` raises is named by its type)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - the caller's repr failed; the error must not
        return f"<{type(value).__name__}>"
    return f"<{type(value).__name__}>" if "\n" in text else text


_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def validation_message(detail: Mapping[str, Any], limit: int = 160) -> str:
    """The message of one pydantic error detail in plain words: on one line, short, without the library's
    ``"Value error, "`` prefix (what our own validators raise reads as they wrote it)."""
    text = " ".join(str(detail.get("msg", "")).split())
    for prefix in _PYDANTIC_PREFIXES:
        text = text.removeprefix(prefix)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def shown_input(value: Any) -> str:
    """:func:`shown` for a value a validator rejected: a Decimal as its digits (``'10000000000000'``), not its
    Python repr."""
    return shown(str(value) if isinstance(value, Decimal) else value)


class WorkbenchError(Exception):
    """Root of every error workbench raises on purpose."""

    #: Whether repeating the same call later may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        broker: str | None = None,
        code: str | int | None = None,
        raw: Any = None,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        message = mask_secrets(message)  # secrets never reach any part of an error
        super().__init__(message)
        self.message = message
        self.broker = broker
        self.code = mask_value(code)
        self.raw = mask_value(raw)
        self.field = mask_value(field)
        #: The validator's detail (pydantic's ``errors()``), when a validation failed; secrets masked.
        self.errors: list[dict[str, Any]] = mask_value(errors or [])

    def __str__(self) -> str:
        tags = []
        if self.field:
            tags.append(f"field={self.field}")
        if self.broker:
            tags.append(f"broker={self.broker}")
        if self.code is not None:
            tags.append(f"code={self.code}")
        text = f"{self.message} [{', '.join(tags)}]" if tags else self.message
        return mask_secrets(text)  # again: a secret may have been registered since


class ConfigError(WorkbenchError):
    """Settings are malformed, or name something that does not exist.

    ``file`` and ``key`` (a dotted path such as ``paper.starting_cash``) say where.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None, **kw: Any):
        where = " ".join(p for p in (f"in {_printable(file)}" if file else "", f"at '{_printable(key)}'" if key else "")
                         if p)
        super().__init__(f"{message} ({where})" if where else message, field=key, **kw)
        self.file = mask_value(file)
        self.key = self.field


def _printable(text: str, limit: int = 200) -> str:
    """``text`` on one short line: control characters (a newline, a NUL in a path) escaped as in a repr,
    and the middle of a very long one left out (the attribute keeps it whole)."""
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-(limit // 2 - 1):]}"


class InvalidInput(WorkbenchError):
    """A call argument is malformed; ``field`` names it. Nothing was sent or recorded."""

    def __init__(self, message: str, *, field: str, **kw: Any):
        super().__init__(message, field=field, **kw)


class InvalidOrder(InvalidInput):
    """The order is malformed. ``field`` names the offending field; nothing was sent or recorded."""


class NotSupported(WorkbenchError):
    """The adapter cannot carry this order type / time in force / feature."""


class SymbolNotFound(WorkbenchError):
    """The instrument is unknown to the broker or data source."""


class OrderNotFound(WorkbenchError):
    """No order with that id (or client order id)."""


class BrokerError(WorkbenchError):
    """The broker or data source refused the request or could not be reached."""


class BrokerUnavailable(BrokerError):
    """Connection lost, refused or not yet established. Retryable."""

    retryable = True


class RequestTimeout(BrokerUnavailable):
    """A request did not complete within its timeout. Retryable."""


class BrokerClosed(BrokerUnavailable):
    """The Broker (or adapter) was closed; it cannot be used again. Make a new one with ``connect()``."""

    retryable = False


class RateLimited(BrokerError):
    """Pacing limit hit. Retryable after ``retry_after`` seconds (if known)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthError(BrokerError):
    """Missing or rejected credentials."""


class DataEntitlementError(BrokerError):
    """The account has no subscription for the requested market data."""


class OrderRejected(BrokerError):
    """The broker refused the order."""


class InsufficientFunds(OrderRejected):
    """Not enough buying power (or position, for a sell) for this order."""


class MarketClosed(OrderRejected):
    """The order cannot be accepted while the market is closed."""


#: Every public error class by name (used by tests and by ``workbench.__all__``).
ERROR_CLASSES: dict[str, type[WorkbenchError]] = {
    cls.__name__: cls
    for cls in (
        WorkbenchError,
        ConfigError,
        InvalidInput,
        InvalidOrder,
        NotSupported,
        SymbolNotFound,
        OrderNotFound,
        BrokerError,
        BrokerUnavailable,
        RequestTimeout,
        BrokerClosed,
        RateLimited,
        AuthError,
        DataEntitlementError,
        OrderRejected,
        InsufficientFunds,
        MarketClosed,
    )
}
