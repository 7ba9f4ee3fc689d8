"""Stdlib logging with secret masking.

Every workbench module logs through :func:`get_logger`, whose loggers carry a filter that replaces
each registered secret (see :func:`register_secret`) with ``**********`` in the message and its
arguments before any handler sees it.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["get_logger", "register_secret", "mask_secrets"]

_MASK = "**********"
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` in every workbench log line from now on (values under 4 chars are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by a mask."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


class _SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
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
