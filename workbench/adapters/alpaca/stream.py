"""alpaca-py's ``TradingStream`` run as a task on workbench's loop (never ``stream.run()``).

``run()`` calls ``asyncio.run`` and cannot work inside Jupyter's running loop, so the adapter awaits the
stream's own connection loop (``_run_forever``: connect, authenticate, listen, reconnect with exponential
backoff and equal jitter) as a task, and stops it by cancelling that task. This subclass only adds what
the adapter needs around that loop: a callback after every (re)connection, so the adapter can reconcile
through REST, and the connection state.

The websocket library logs every frame at DEBUG, the authentication frame (with the key pair) included,
truncated in the middle so that the end of the secret shows: :func:`websocket_params` gives the streams a
logger that leaves such frames out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from alpaca.trading.stream import TradingStream

from workbench.core.log import get_logger, mask_secrets

__all__ = ["TradeUpdatesStream", "websocket_params"]


class _CredentialFrames(logging.Filter):
    """Replace the log line of a websocket frame whose payload holds a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        for arg in record.args if isinstance(record.args, tuple) else ():
            data = getattr(arg, "data", None)
            if isinstance(data, bytes | bytearray | memoryview):
                text = bytes(data).decode("utf-8", "replace")
                if mask_secrets(text) != text:
                    record.msg, record.args = "%s frame carrying credentials (not logged)", (str(record.msg)[:1],)
                    break
        return True


_WS_LOG = logging.getLogger("workbench.adapters.alpaca.websocket")
_WS_LOG.addFilter(_CredentialFrames())
get_logger(_WS_LOG.name)  # and workbench's own masking after it


def websocket_params() -> dict[str, Any]:
    """alpaca-py's own websocket settings, with a frame logger that never logs the key pair."""
    return {"ping_interval": 10, "ping_timeout": 180, "max_queue": 1024, "logger": _WS_LOG}


class TradeUpdatesStream(TradingStream):
    """trade_updates with ``on_connected(n)`` after the n-th successful authentication."""

    def __init__(self, key: str, secret: str, url: str, handler: Callable[[dict[str, Any]], Awaitable[None]],
                 on_connected: Callable[[int], None], min_backoff: float, max_backoff: float) -> None:
        super().__init__(key, secret, paper=True, raw_data=True, url_override=url,
                         websocket_params=websocket_params())
        self._reconnect_min_backoff = min_backoff
        self._reconnect_max_backoff = max_backoff
        self._on_connected = on_connected
        self.connected = False
        self.connections = 0
        self.auth_failed = False
        self.changed = asyncio.Event()  # set on every connect, disconnect and refused authentication
        self.subscribe_trade_updates(handler)

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()
        except ValueError:  # alpaca-py's "failed to authenticate"
            self.auth_failed = True
            self.changed.set()
            raise
        self.connected, self.auth_failed = True, False
        self.connections += 1
        self.changed.set()
        self._on_connected(self.connections)

    async def close(self) -> None:
        if self.connected:
            self.connected = False
            self.changed.set()
        await super().close()
