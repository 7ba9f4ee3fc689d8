"""Streaming quotes for the IB adapter: one shared streaming ticker per symbol, many subscribers.

A :class:`Feed` is one ``reqMktData`` stream; subscriptions join and leave feeds by key, so a subscription
restored after a reconnect (new tickers, new request ids) is still cancelled by the same ``cancel()``.
An account without a live-data entitlement gets error 354: the feed then falls back to delayed data
(``ib.delayed_data``, on by default), says so once in the log and marks every quote ``delayed=True``
(and the subscription's ``delayed`` symbols); with ``ib.delayed_data`` off it raises DataEntitlementError.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.adapters.base import Subscription
from workbench.core.errors import DataEntitlementError, RequestTimeout, SymbolNotFound
from workbench.core.log import get_logger
from workbench.core.models import Quote

if TYPE_CHECKING:
    from .adapter import IBAdapter

__all__ = ["QuoteStreams", "Feed", "price", "last_price", "DENIED_CODES"]

log = get_logger(__name__)

#: "Requested market data is not subscribed" (354), "... delayed market data is not enabled" (10168).
DENIED_CODES = frozenset({354, 10168})
LIVE, DELAYED = 1, 3  # reqMarketDataType: 3 = delayed where live is not entitled, live where it is


def price(ticker: Any, name: str) -> Decimal | None:
    """A ticker price as Decimal; None when unset (NaN) or not positive."""
    value = getattr(ticker, name, None)
    if value is None or (isinstance(value, float) and (math.isnan(value) or value <= 0)):
        return None
    return Decimal(repr(float(value)))


def last_price(ticker: Any) -> Decimal | None:
    return price(ticker, "last") or price(ticker, "close")


@dataclass(eq=False)
class _Subscriber:
    symbols: tuple[str, ...]
    callback: Callable[[Quote], Any]
    handle: Subscription | None = None


@dataclass(eq=False)
class Feed:
    """One streaming ticker for ``symbol``, fanned out to its subscribers."""

    symbol: str
    contract: Any
    ticker: Any = None
    delayed: bool = False
    simulated: bool = False  # from workbench's TWS emulator over simulated prices
    subscribers: dict[int, _Subscriber] = field(default_factory=dict)

    def on_update(self, ticker: Any, to: Iterable[_Subscriber] | None = None) -> None:
        last = last_price(ticker)
        if last is None:
            return
        quote = Quote(symbol=self.symbol, last=last, bid=price(ticker, "bid"), ask=price(ticker, "ask"),
                      ts=datetime.now(UTC), source="ib", delayed=self.delayed, simulated=self.simulated)
        for sub in list(self.subscribers.values()) if to is None else to:
            try:
                sub.callback(quote)
            except Exception:
                log.exception("market-data subscriber for %s failed", self.symbol)

    def attach(self, ticker: Any) -> None:
        self.detach()
        self.ticker = ticker
        ticker.updateEvent += self.on_update

    def detach(self) -> None:
        if self.ticker is not None:
            self.ticker.updateEvent -= self.on_update
            self.ticker = None


class QuoteStreams:
    """Every market-data subscription of one adapter (lives on the adapter's loop)."""

    def __init__(self, adapter: IBAdapter) -> None:
        self._adapter = adapter
        self._feeds: dict[str, Feed] = {}
        self._subs: dict[int, _Subscriber] = {}
        self._keys = itertools.count(1)
        #: conIds IB refused live data for on this connection (354): later requests go straight to delayed
        self._live_denied: set[int] = set()
        self._warned: set[str] = set()  # symbols whose fallback to delayed data was logged (once each)

    async def subscribe(self, symbols: tuple[str, ...], callback: Callable[[Quote], Any]) -> Subscription:
        contracts = [await self._adapter._contract(sym) for sym in symbols]  # SymbolNotFound: nothing opened
        key = next(self._keys)
        sub = _Subscriber(symbols, callback)
        joined: list[str] = []
        try:
            for sym, contract in zip(symbols, contracts):
                feed = self._feeds.get(sym)
                if feed is None:
                    feed = Feed(sym, contract)
                    try:
                        await self._open(feed, delayed=False)
                    except BaseException:
                        self._drop(feed)
                        raise
                    self._feeds[sym] = feed
                feed.subscribers[key] = sub
                joined.append(sym)
        except BaseException:
            for sym in joined:
                self._leave(sym, key)
            raise
        self._subs[key] = sub
        for sym in symbols:  # the price now, without waiting for it to change
            feed = self._feeds[sym]
            if feed.ticker is not None:
                feed.on_update(feed.ticker, to=[sub])
        loop = asyncio.get_running_loop()
        sub.handle = Subscription(symbols, lambda: loop.call_soon_threadsafe(self._cancel, key))
        sub.handle.delayed = frozenset(s for s in symbols if self._feeds[s].delayed)
        return sub.handle

    async def restore(self, resubscribe: bool = False) -> None:
        """After a reconnect: a fresh ticker for every feed (the old ones died with the connection). With
        ``resubscribe`` (the gateway lost its data, error 1101, on a live connection) the old streams are
        cancelled first."""
        if not resubscribe:
            self._live_denied.clear()  # a new connection: entitlements are asked again
        for feed in list(self._feeds.values()):
            if resubscribe:
                self._drop(feed)
            feed.detach()
            try:
                await self._open(feed, delayed=feed.delayed)
            except Exception as exc:  # keep restoring the others; say which one is silent now
                log.error("IB: market data for %s could not be restored after the reconnect: %s", feed.symbol, exc)

    def close(self) -> None:
        """Stop every subscription (their ``active`` turns False); cancels the streams if still connected."""
        for sub in self._subs.values():
            if sub.handle is not None:
                sub.handle.active = False
        self._subs.clear()
        for feed in list(self._feeds.values()):
            self._drop(feed)
        self._feeds.clear()

    async def quote(self, contract: Any) -> Quote:
        """A snapshot quote; without a live entitlement (354) one delayed snapshot, marked ``delayed``."""
        adapter = self._adapter
        denied: tuple[int, str] | None = None
        delayed = contract.conId in self._live_denied and adapter.config.delayed_data
        if not delayed:
            adapter._data_errors.pop(contract.conId, None)
            ticker = await self._snapshot(contract)
            last = last_price(ticker) if ticker is not None else None
            denied = adapter._data_errors.get(contract.conId)
            denied = denied if denied is not None and denied[0] in DENIED_CODES else None
            # No live entitlement (354; the SDK's shared Ticker may still hold an older answer's prices) or no
            # price at all: ask for delayed data.
            delayed = denied is not None or last is None
            if denied is not None and not adapter.config.delayed_data:
                raise self._denied(contract.symbol, denied, "set ib.delayed_data to true for delayed quotes",
                                   field="symbol")
        if delayed:
            ticker = await self._snapshot(contract, DELAYED)
            last = last_price(ticker) if ticker is not None else None
            if denied is not None:
                self._fell_back(contract, denied[0], "delayed quotes")
        if last is None:
            raise SymbolNotFound(f"IB gave no price for {contract.symbol}", broker="ib", code="no_price",
                                 field="symbol")
        # delayed: judged by what was asked (the SDK's Ticker is shared and keeps an older marketDataType)
        return Quote(symbol=contract.symbol, last=last, bid=price(ticker, "bid"), ask=price(ticker, "ask"),
                     ts=datetime.now(UTC), source="ib", delayed=delayed, simulated=adapter.simulated)

    def _fell_back(self, contract: Any, code: int, what: str) -> None:
        """Remember that live data is refused for ``contract``; say so once per symbol."""
        self._live_denied.add(contract.conId)
        if contract.symbol not in self._warned:
            self._warned.add(contract.symbol)
            log.warning("IB: no live market data for %s (error %s); %s instead (Quote.delayed=True)",
                        contract.symbol, code, what)

    # -- internals ------------------------------------------------------------------------------

    async def _snapshot(self, contract: Any, data_type: int = LIVE) -> Any:
        """One snapshot ticker. ``data_type`` applies to this request only: reqMarketDataType is one setting per
        connection, so it is set back to live as soon as the request is out, not once it is answered."""
        ib = self._adapter.ib
        if data_type != LIVE:
            ib.reqMarketDataType(data_type)
        try:
            pending = asyncio.ensure_future(ib.reqTickersAsync(contract))
            await asyncio.sleep(0)  # one loop step: reqTickersAsync sends its request before it first waits
        finally:
            if data_type != LIVE:
                ib.reqMarketDataType(LIVE)
        try:
            tickers = await pending
        except ConnectionError as exc:
            raise self._adapter._gone(f"the quote request for {contract.symbol}") from exc
        finally:
            pending.cancel()  # (done already, unless this wait was cancelled)
        return tickers[0] if tickers else None

    def _cancel(self, key: int) -> None:
        sub = self._subs.pop(key, None)
        if sub is not None:
            for sym in sub.symbols:
                self._leave(sym, key)

    def _leave(self, sym: str, key: int) -> None:
        feed = self._feeds.get(sym)
        if feed is None:
            return
        feed.subscribers.pop(key, None)
        if not feed.subscribers:
            del self._feeds[sym]
            self._drop(feed)

    def _drop(self, feed: Feed) -> None:
        streaming = feed.ticker is not None
        feed.detach()
        ib = self._adapter.ib
        if streaming and ib is not None and ib.isConnected():
            ib.cancelMktData(feed.contract)

    async def _open(self, feed: Feed, delayed: bool) -> None:
        """Start the stream; on error 354 retry with delayed data (or raise DataEntitlementError)."""
        delayed = delayed or (feed.contract.conId in self._live_denied and self._adapter.config.delayed_data)
        denied = await self._request(feed, DELAYED if delayed else LIVE)
        if denied is None:
            feed.delayed = delayed
            return
        if delayed:
            raise self._denied(feed.symbol, denied, "no delayed data either")
        if not self._adapter.config.delayed_data:
            raise self._denied(feed.symbol, denied, "set ib.delayed_data to true to stream delayed quotes")
        code, denied = denied[0], await self._request(feed, DELAYED)
        if denied is not None:
            raise self._denied(feed.symbol, denied, "no delayed data either")
        feed.delayed = True
        self._fell_back(feed.contract, code, "streaming delayed quotes")

    async def _request(self, feed: Feed, data_type: int) -> tuple[int, str] | None:
        """One reqMktData; waits for the first price or a refusal. Returns the refusal (code, message)."""
        adapter = self._adapter
        ib = adapter.ib
        con_id = feed.contract.conId
        adapter._data_errors.pop(con_id, None)
        if data_type != LIVE:
            ib.reqMarketDataType(data_type)
        try:
            ticker = adapter._sdk_call(lambda: ib.reqMktData(feed.contract, "", False, False), "reqMktData")
        finally:
            if data_type != LIVE:
                ib.reqMarketDataType(LIVE)  # per session: never leave every later request delayed
        feed.attach(ticker)
        feed.simulated = adapter.simulated
        ticks: list[object] = []  # updates since this request (the Ticker object may hold an older snapshot)

        def on_tick(_: Any) -> None:
            ticks.append(None)
            adapter._poke()

        ticker.updateEvent += on_tick
        try:
            await adapter._until(lambda: ticks or con_id in adapter._data_errors, f"first quote for {feed.symbol}",
                                 timeout=min(adapter.config.connect_timeout, 5))
        except RequestTimeout:
            pass  # a quiet instrument: the stream stays open and delivers when prices move
        finally:
            ticker.updateEvent -= on_tick
        denied = adapter._data_errors.get(con_id)
        if denied is not None and denied[0] in DENIED_CODES:
            self._drop(feed)  # IB ended the request; forget it on the SDK side too
            return denied
        return None

    @staticmethod
    def _denied(symbol: str, denied: tuple[int, str], hint: str, field: str = "symbols") -> DataEntitlementError:
        code, message = denied
        return DataEntitlementError(f"IB {code}: no market-data entitlement for {symbol} ({message}); {hint}",
                                    broker="ib", code=code, raw=message, field=field)

