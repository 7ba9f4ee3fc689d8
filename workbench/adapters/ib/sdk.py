"""The SDK: ib_async (or ib_insync) imported on first use, its log records routed through workbench's logger
one level quieter.

The SDK logs every IB error message at ERROR ("Error 200, reqId 5: No security definition ...") and an
unknown contract at WARNING, although the adapter turns each of them into a typed exception. Left alone,
Python prints those lines into the notebook before the one clear error the user should see. Once the adapter
loads the SDK, the SDK's records go to ``workbench.adapters.ib.sdk.<sdk logger>`` instead: WARNING and ERROR
as INFO, INFO as DEBUG. Nothing is dropped; to see them::

    logging.basicConfig()
    logging.getLogger("workbench.adapters.ib.sdk").setLevel("INFO")  # the SDK's warnings and errors
    logging.getLogger("ib_async").setLevel("INFO")  # and, on top, its own INFO lines (as DEBUG: set DEBUG above)
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.log import get_logger

__all__ = ["SDK_LOGGER", "load_sdk", "route_sdk_logging"]

SDK_LOGGER = "workbench.adapters.ib.sdk"


def _quieter(level: int) -> int:
    if level >= logging.CRITICAL:
        return logging.WARNING
    return logging.INFO if level >= logging.WARNING else logging.DEBUG


class _Forward(logging.Handler):
    """Re-log an SDK record under workbench's logger tree at a quieter level."""

    def emit(self, record: logging.LogRecord) -> None:
        target = get_logger(f"{SDK_LOGGER}.{record.name}")
        level = _quieter(record.levelno)
        if not target.isEnabledFor(level):
            return
        routed = logging.makeLogRecord(record.__dict__)
        routed.name, routed.levelno, routed.levelname = target.name, level, logging.getLevelName(level)
        target.handle(routed)


def route_sdk_logging(module: str) -> None:
    """Route the ``module`` logger tree (``ib_async`` / ``ib_insync``) through workbench (idempotent)."""
    logger = logging.getLogger(module)
    if not any(isinstance(h, _Forward) for h in logger.handlers):
        logger.addHandler(_Forward())
        logger.propagate = False  # the forwarded copy propagates instead, from workbench's logger


def load_sdk(name: str) -> Any:
    """The ``ib_async`` module (``auto``: else ``ib_insync``), with its logging routed."""
    for module in ["ib_async", "ib_insync"] if name == "auto" else [name]:
        try:
            sdk = importlib.import_module(module)
        except ImportError:
            continue
        route_sdk_logging(module)
        return sdk
    raise ConfigError("the ib broker needs ib_async: pip install 'workbench[ib]'", key="ib.sdk")
