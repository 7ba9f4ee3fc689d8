"""The SDK: ib_async (or ib_insync) imported on first use, its log records routed through workbench's logger.

The SDK logs every IB message it receives ("Error 200, reqId 5: No security definition ...", at ERROR) and its
own notes on what follows from them ("Canceled order: Trade(...)", "Unknown contract: ...", "Peer closed
connection"), although the adapter turns each into a typed exception or logs it itself, at the level it deserves
(connectivity lost, 1100, as a WARNING). Left alone, Python prints those lines into the notebook before the one
clear error the user should see. So the SDK's records go to ``workbench.adapters.ib.sdk.<sdk logger>``: these
echoes at DEBUG, everything else at the SDK's own level (a record the adapter knows nothing about, such as a
sync request that timed out or a message the SDK could not decode, stays visible). To see the echoes::

    logging.basicConfig()
    logging.getLogger("workbench.adapters.ib.sdk").setLevel("DEBUG")
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.log import get_logger

__all__ = ["SDK_LOGGER", "is_echo", "load_sdk", "route_sdk_logging"]

SDK_LOGGER = "workbench.adapters.ib.sdk"

#: SDK lines the adapter reports itself (raised as a typed error or logged by ``_on_error`` / the watchdog).
_ECHOES = re.compile(
    r"(Error|Warning) -?\d+, reqId -?\d+: "  # every IB message (ib_async / ib_insync wrapper.error)
    r"|Canceled order: |IBKR API validation warning: |Unknown contract: |orderStatus: No order found"
    r"|\w+: Unknown reqId|cancelMktData: No reqId found|cancelOrder: Unknown orderId"
    r"|API connection failed: |Make sure API port|Peer closed connection")


def is_echo(message: str) -> bool:
    """Whether an SDK log line repeats something the adapter reports itself."""
    return _ECHOES.match(message) is not None


class _Forward(logging.Handler):
    """Re-log an SDK record under workbench's logger tree (echoes at DEBUG)."""

    def emit(self, record: logging.LogRecord) -> None:
        target = get_logger(f"{SDK_LOGGER}.{record.name}")
        level = logging.DEBUG if record.levelno > logging.DEBUG and is_echo(record.getMessage()) else record.levelno
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
