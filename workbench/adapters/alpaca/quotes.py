"""``subscribe_market_data`` over Alpaca's market-data websocket (``alpaca.quotes: stream``, the default).

One alpaca-py ``StockDataStream`` (:class:`~.stream.MarketDataStream`) on workbench's loop serves every
subscription of an adapter: trades set ``last``, quotes ``bid`` / ``ask``, and each subscriber is called
with the merged :class:`Quote` whenever one of them changes. The socket opens with the first subscription
and closes with the last (Alpaca gives an account one market-data connection per feed).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.adapters.base import Subscription
from workbench.core.errors import AuthError, BrokerUnavailable, DataEntitlementError, WorkbenchError
from workbench.core.log import get_logger
from workbench.core.models import Quote

from . import parse as p
from .stream import MarketDataStream, stop_tasks

if TYPE_CHECKING:
    from pydantic import SecretStr

    from .config import AlpacaConfig

__all__ = ["QuoteFeed"]

log = get_logger(__name__)


class QuoteFeed:
    """Every market-data subscription of one adapter, over one websocket."""

    def __init__(self, config: AlpacaConfig, key: SecretStr, secret: SecretStr) -> None:
        self.config = config
        self._key, self._secret = key, secret
        self.stream: MarketDataStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._subs: dict[int, tuple[Subscription, Callable[[Quote], Any]]] = {}
        self._latest: dict[str, Quote] = {}  # symbol -> its quote so far
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[set[str]] = []  # symbols of subscriptions waiting for Alpaca's confirmation

    async def subscribe(self, symbols: list[str], callback: Callable[[Quote], Any],
                        first: dict[str, Quote]) -> Subscription:
        """Call ``callback`` with ``first`` (the snapshot), then on every change streamed for ``symbols``.

        Returns once Alpaca confirmed the subscription; its refusal or silence is a typed error.
        """
        loop = asyncio.get_running_loop()
        token = next(self._ids)
        sub = Subscription(symbols, lambda: _soon(loop, self._cancel, token))
        for sym, quote in first.items():
            self._latest.setdefault(sym, quote)
        if self.stream is None:
            self._open()
        assert self.stream is not None
        pending = set(symbols)
        self._pending.append(pending)  # wanted meanwhile, should another subscription end
        try:
            await self.stream.watch(pending - self.stream.symbols)
            await self._confirmed(pending)
        except BaseException:
            self._pending.remove(pending)
            await self._drop_unwanted()
            raise
        self._pending.remove(pending)
        self._subs[token] = (sub, callback)
        for quote in first.values():
            _call(callback, quote)
        return sub

    async def close(self) -> None:
        for sub, _ in self._subs.values():
            sub.active = False
        self._subs.clear()
        if self._tasks:  # cancellations in flight (a Broker cancels its subscriptions first): let them end
            await asyncio.wait(list(self._tasks), timeout=self.config.timeout)
        await self._close_stream()
        await stop_tasks(self._tasks, "Alpaca market-data")

    # -- the socket ---------------------------------------------------------------------------

    def _open(self) -> None:
        self.stream = MarketDataStream(self._key.get_secret_value(), self._secret.get_secret_value(),
                                       self.config.data_stream, self._on_trade, self._on_quote,
                                       self.config.reconnect_min, self.config.reconnect_max)

    async def _confirmed(self, symbols: set[str]) -> None:
        """Wait until Alpaca's subscription message lists ``symbols``; its refusal or a timeout raises."""
        stream = self.stream
        assert stream is not None
        if self._task is None:  # started only now that it has symbols: alpaca-py spins until it has some
            self._task = asyncio.get_running_loop().create_task(stream._run_forever(),
                                                                name="workbench-alpaca-quotes")
        deadline = asyncio.get_running_loop().time() + self.config.timeout
        while not symbols <= stream.acked:
            if stream.refusal is not None or self._task.done():
                raise _refused(stream.refusal or "the stream ended", self.config.data_stream)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise BrokerUnavailable(f"the market-data stream {self.config.data_stream} did not confirm "
                                        f"{', '.join(sorted(symbols))} within {self.config.timeout} s ({_POLL_HINT})",
                                        broker=p.BROKER, code="data_stream")
            stream.changed.clear()
            try:
                await asyncio.wait_for(stream.changed.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass

    async def _close_stream(self) -> None:
        stream, task, self.stream, self._task = self.stream, self._task, None, None
        if stream is not None:  # shielded: a cancelled caller must not leave the socket half closed
            await asyncio.shield(self._spawned(self._stop(stream, task)))

    def _spawned(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _stop(self, stream: MarketDataStream, task: asyncio.Task[None] | None) -> None:
        await stream.stop_ws()
        await stop_tasks([task] if task is not None else [], "Alpaca market-data stream")
        try:
            await stream.close()
        except Exception as exc:  # the socket may already be gone
            log.debug("closing the market-data stream: %s", exc)

    async def _remove(self, token: int) -> None:
        if self._subs.pop(token, None) is not None:
            await self._drop_unwanted()

    async def _drop_unwanted(self) -> None:
        """Unsubscribe symbols no subscription wants any more; close the socket when none is left."""
        wanted = {sym for sub, _ in self._subs.values() for sym in sub.symbols}.union(*self._pending)
        for sym in set(self._latest) - wanted:
            del self._latest[sym]
        if not wanted:
            await self._close_stream()
        elif self.stream is not None:
            await self.stream.unwatch(self.stream.symbols - wanted)

    def _cancel(self, token: int) -> None:
        self._spawned(self._remove(token))

    # -- messages -----------------------------------------------------------------------------

    async def _on_trade(self, msg: dict[str, Any]) -> None:
        self._update(msg, p.stream_trade)

    async def _on_quote(self, msg: dict[str, Any]) -> None:
        self._update(msg, p.stream_quote)

    def _update(self, msg: dict[str, Any], parse: Callable[[dict[str, Any], Quote], Quote]) -> None:
        previous = self._latest.get(str(msg.get("S")))
        if previous is None:
            return
        try:
            quote = parse(msg, previous)
        except WorkbenchError as exc:
            log.warning("unreadable market-data message ignored: %s", exc)
            return
        self._latest[quote.symbol] = quote
        if (quote.last, quote.bid, quote.ask) == (previous.last, previous.bid, previous.ask):
            return
        for sub, callback in list(self._subs.values()):
            if sub.active and quote.symbol in sub.symbols:
                _call(callback, quote)


_POLL_HINT = "set alpaca.quotes to 'poll' to poll the latest quotes instead"


def _refused(reason: str, url: str) -> WorkbenchError:
    """Alpaca's refusal of the market-data connection (alpaca-py's message) as a typed error."""
    text = f"Alpaca's market-data stream {url} refused the connection: {reason} ({_POLL_HINT})"
    lower = reason.lower()
    if "auth" in lower:
        return AuthError(text, broker=p.BROKER, code="data_stream_auth", raw=reason)
    if "subscription" in lower:
        return DataEntitlementError(text, broker=p.BROKER, code="data_stream", raw=reason)
    return BrokerUnavailable(text, broker=p.BROKER, code="data_stream", raw=reason)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """``fn(*args)`` on ``loop`` from any thread; nothing once the loop is gone (everything stopped with it)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


def _call(callback: Callable[[Quote], Any], quote: Quote) -> None:
    try:
        callback(quote)
    except Exception:
        log.exception("market-data subscriber for %s failed", quote.symbol)

