"""alpaca-py's ``TradingStream`` run as a task on workbench's loop (never ``stream.run()``).

``run()`` calls ``asyncio.run`` and cannot work inside Jupyter's running loop, so the adapter awaits the
stream's own connection loop (``_run_forever``: connect, authenticate, listen, reconnect with exponential
backoff and equal jitter) as a task, and stops it by cancelling that task. This subclass only adds what
the adapter needs around that loop: a callback after every (re)connection, so the adapter can reconcile
through REST, and the connection state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from alpaca.trading.stream import TradingStream

__all__ = ["TradeUpdatesStream"]


class TradeUpdatesStream(TradingStream):
    """trade_updates with ``on_connected(n)`` after the n-th successful authentication."""

    def __init__(self, key: str, secret: str, url: str, handler: Callable[[dict[str, Any]], Awaitable[None]],
                 on_connected: Callable[[int], None], min_backoff: float, max_backoff: float) -> None:
        super().__init__(key, secret, paper=True, raw_data=True, url_override=url)
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
