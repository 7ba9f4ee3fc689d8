"""Stdlib logging with secret masking, for every logger of the process.

Each registered secret (see :func:`register_secret`) is replaced with ``**********`` in every log record,
whichever library writes it (workbench, ib_async, alpaca-py, websockets, urllib3...): a log-record factory
masks the message, its arguments and its traceback when the record is made, before any handler sees it
(the loggers of :func:`get_logger` also carry a filter doing the same, in case another record factory
replaces ours). :func:`register_env_secrets` registers secret-looking environment variables; it runs when
this module is imported (before any validation) and again at every settings load.

How a secret is matched, by length (case is ignored throughout, so an upper-cased secret is masked too):

- under 4 characters: not masked (it would mask the same letters in every word; nothing that short is
  a real credential);
- 4 to 11 characters (a short password, an emulator's rehearsal key): where it stands alone, not inside
  a longer word, so a key ``"test"`` masks ``key=test`` but leaves ``latest`` alone;
- 12 characters or more (API keys): anywhere; and from 20 characters on, any run of 12 of its characters
  as well, because libraries shorten what they log (websockets prints a long frame as its head, ``...``
  and its last 24 characters, which were the second half of Alpaca's secret key).
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
_anchors: tuple[str, ...] = ()  # lower-case pieces one of which every match contains: a fast first check
_lock = threading.Lock()

#: Shorter secrets are not masked; shorter than SUBSTRING_MIN, they are masked only where they stand alone.
MIN_SECRET, SUBSTRING_MIN = 4, 12
#: Secrets this long are also masked in parts of FRAGMENT characters.
FRAGMENT_MIN, FRAGMENT = 20, 12
_ALNUM = "A-Za-z0-9"

#: Environment variables whose values are secrets: the broker prefixes and a secret-sounding name.
_SECRET_ENV = re.compile(r"^(IBKR|IB|TWS|ALPACA|APCA|WORKBENCH)_\w*(KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)\w*$",
                         re.IGNORECASE)


def register_secret(value: str) -> None:
    """Mask ``value`` (in any letter case) from now on; see the module docstring for short values."""
    global _pattern, _anchors
    if not isinstance(value, str) or len(value) < MIN_SECRET:
        return
    with _lock:
        if value.casefold() in {s.casefold() for s in _secrets}:
            return
        _secrets.add(value)
        # Any match holds one of these: a whole short secret, or a 4-character piece at a multiple of 4 of
        # a long one (a FRAGMENT-long part of it spans one).
        _anchors = tuple({s.lower()[i:i + MIN_SECRET] for s in _secrets for i in range(0, len(s) - MIN_SECRET + 1, 4)})
        _pattern = _compile(_secrets)


def _compile(secrets: set[str]) -> re.Pattern[str]:
    """One zero-width pattern whose group 1 is, at each position, the longest secret (or part) starting there."""
    whole = sorted(secrets, key=len, reverse=True)
    alternatives = [re.escape(s) if len(s) >= SUBSTRING_MIN else rf"(?<![{_ALNUM}]){re.escape(s)}(?![{_ALNUM}])"
                    for s in whole]
    parts = {s[i:i + FRAGMENT] for s in whole if len(s) >= FRAGMENT_MIN for i in range(len(s) - FRAGMENT + 1)}
    alternatives += [re.escape(part) for part in sorted(parts)]
    return re.compile(f"(?=({'|'.join(alternatives)}))", re.IGNORECASE)


def register_env_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the value of every secret-looking broker variable (``ALPACA_SECRET_KEY``, ``IBKR_PASSWORD``...)."""
    for name, value in (os.environ if environ is None else environ).items():
        if value and _SECRET_ENV.match(name):
            register_secret(value)


def mask_secrets(text: str) -> str:
    """``text`` with every registered secret (and every long part of one) replaced by one mask each."""
    pattern = _pattern
    if pattern is None or not isinstance(text, str):
        return text
    lowered = text.lower()
    if not any(anchor in lowered for anchor in _anchors):
        return text
    spans: list[list[int]] = []
    for match in pattern.finditer(text):  # every position a secret (or part) starts at; merged into spans
        first, last = match.span(1)
        if spans and first <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], last)
        else:
            spans.append([first, last])
    if not spans:
        return text
    pieces, done = [], 0
    for first, last in spans:
        pieces += [text[done:first], MASK]
        done = last
    pieces.append(text[done:])
    return "".join(pieces)


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


def _mask_record(record: logging.LogRecord) -> None:
    if _pattern is None or getattr(record, "_workbench_masked", False):
        return
    record._workbench_masked = True  # type: ignore[attr-defined]
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it to logging's own error report
        return
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:  # the traceback text too (formatted now, only if it changes)
        text = logging.Formatter().formatException(record.exc_info)
        if mask_secrets(text) != text:
            record.exc_text = mask_secrets(text)
    if record.stack_info:
        record.stack_info = mask_secrets(record.stack_info)


class _SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record)
        return True


_FILTER = _SecretFilter()


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger whose records have secrets masked."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def _install_record_factory() -> None:
    """Mask the records of every logger, SDKs' included, when they are made (chaining the current factory)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_workbench_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    factory._workbench_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()
register_env_secrets()  # at import: before any model or setting is validated (settings loads add later ones)
