"""alpaca-py's ``TradingStream`` and ``StockDataStream`` run as tasks on workbench's loop (never ``run()``).

``run()`` calls ``asyncio.run`` and cannot work inside Jupyter's running loop, so the adapter awaits the
stream's own connection loop (``_run_forever``: connect, authenticate, listen, reconnect with exponential
backoff and equal jitter) as a task, and stops it by cancelling that task. The subclasses only add what
the adapter needs around that loop: the connection state, a callback after every (re)connection of the
trade stream (the adapter reconciles through REST), and subscription changes made on the loop itself.

The websocket library logs every frame at DEBUG, the authentication frame (with the key pair) included,
truncated in the middle so that the end of the secret shows: :func:`websocket_params` gives the streams a
logger that leaves such frames out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from alpaca.data.live.stock import StockDataStream
from alpaca.trading.stream import TradingStream

from workbench.core.log import get_logger, mask_secrets

__all__ = ["MarketDataStream", "TradeUpdatesStream", "stop_tasks", "websocket_params"]

log = get_logger(__name__)


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


async def stop_tasks(tasks: Any, what: str) -> None:
    """Cancel ``tasks`` and wait for them. A stream's ``asyncio.wait_for`` (3.11) can swallow a cancel that
    races a completion, so the cancel is repeated (each stream was also told to stop: it ends anyway)."""
    tasks = list(tasks)
    for _ in range(20):
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.25)
    log.warning("%s tasks still running after close: %s", what, [t for t in tasks if not t.done()])


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


class MarketDataStream(StockDataStream):
    """alpaca-py's stock data stream (msgpack trades and quotes) with its connection state and the reason
    Alpaca refused it. Subscriptions change through :meth:`watch` / :meth:`unwatch` on the stream's own
    loop (alpaca-py's ``subscribe_*`` block on a future of that loop, which deadlocks when called on it)."""

    def __init__(self, key: str, secret: str, url: str, on_trade: Callable[[dict[str, Any]], Awaitable[None]],
                 on_quote: Callable[[dict[str, Any]], Awaitable[None]], min_backoff: float,
                 max_backoff: float) -> None:
        super().__init__(key, secret, raw_data=True, url_override=url, websocket_params=websocket_params())
        self._reconnect_min_backoff = min_backoff
        self._reconnect_max_backoff = max_backoff
        self._on_trade, self._on_quote = on_trade, on_quote
        self.connected = False
        self.refusal: str | None = None  # Alpaca's error message when it refused the connection
        self.acked: set[str] = set()  # symbols whose trades and quotes Alpaca confirmed subscribing
        self.changed = asyncio.Event()

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()
        except ValueError as exc:  # alpaca-py's "auth failed", "connection limit exceeded"...
            self.refusal = str(exc)
            self.changed.set()
            raise
        self.connected, self.refusal = True, None
        self.changed.set()

    async def close(self) -> None:
        if self.connected:
            self.connected, self.acked = False, set()
            self.changed.set()
        await super().close()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("T") == "subscription":  # the whole subscription, after every (un)subscribe
            self.acked = set(msg.get("trades") or ()) & set(msg.get("quotes") or ())
            self.changed.set()
        await super()._dispatch(msg)

    @property
    def symbols(self) -> set[str]:
        return set(self._handlers["trades"])

    async def watch(self, symbols: set[str]) -> None:
        """Trades and quotes of ``symbols`` too (sent now if connected, else on the next connection)."""
        for sym in symbols:
            self._handlers["trades"][sym] = self._on_trade
            self._handlers["quotes"][sym] = self._on_quote
        if self._running and self._ws is not None:
            await self._send_subscribe_msg()

    async def unwatch(self, symbols: set[str]) -> None:
        for channel in ("trades", "quotes"):
            for sym in symbols:
                self._handlers[channel].pop(sym, None)
            if self._running and self._ws is not None and symbols:
                await self._send_unsubscribe_msg(channel, sorted(symbols))
