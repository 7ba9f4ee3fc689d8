"""Stdlib logging with secret masking.

Every workbench module logs through :func:`get_logger`, whose loggers carry a filter that replaces
each registered secret (see :func:`register_secret`) with ``**********`` in the message and its
arguments before any handler sees it. Masking ignores case, so an upper-cased secret (a symbol, a
header) is masked too. :func:`register_env_secrets` registers secret-looking environment variables; it
runs when this module is imported (before any validation) and again at every settings load.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["get_logger", "register_secret", "register_env_secrets", "mask_secrets", "mask_value", "MASK"]

MASK = "**********"
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()

#: Environment variables whose values are secrets: the broker prefixes and a secret-sounding name.
_SECRET_ENV = re.compile(r"^(IBKR|IB|TWS|ALPACA|APCA|WORKBENCH)_\w*(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)\w*$",
                         re.IGNORECASE)


def register_secret(value: str) -> None:
    """Mask ``value`` (in any letter case) from now on (values under 4 chars are ignored)."""
    global _pattern
    if not isinstance(value, str) or len(value) < 4:
        return
    with _lock:
        if value.casefold() in {s.casefold() for s in _secrets}:
            return
        _secrets.add(value)
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered), re.IGNORECASE)


def register_env_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the value of every secret-looking broker variable (``ALPACA_SECRET_KEY``, ``IBKR_PASSWORD``...)."""
    for name, value in (os.environ if environ is None else environ).items():
        if value and _SECRET_ENV.match(name):
            register_secret(value)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    pattern = _pattern
    if pattern is None or not isinstance(text, str):
        return text
    return pattern.sub(MASK, text)


def mask_value(value: Any) -> Any:
    """``value`` with secrets masked in its strings (through dicts, lists and tuples); other objects as is."""
    if _pattern is None:
        return value
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, BaseException):  # e.g. the ValueError in a pydantic error's context
        return mask_secrets(f"{type(value).__name__}: {value}")
    if isinstance(value, Mapping):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value) if type(value) in (list, tuple) else value
    return value


class _SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            record.msg = mask_secrets(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:  # the traceback text too
                record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = _SecretFilter()


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger whose records have secrets masked."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


register_env_secrets()  # at import: before any model or setting is validated (settings loads add later ones)
