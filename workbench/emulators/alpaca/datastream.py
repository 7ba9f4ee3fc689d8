"""The market-data websocket (``/v2/{feed}``) as alpaca-py's ``StockDataStream`` speaks it.

Frames are msgpack when the handshake asks for it (``Content-Type: application/msgpack``, as alpaca-py
does), JSON text otherwise; every server message is a list of objects with a type ``T``:

- on connect ``[{"T":"success","msg":"connected"}]``; ``{"action":"auth","key":…,"secret":…}`` answers
  ``[{"T":"success","msg":"authenticated"}]``, or ``[{"T":"error","code":402,"msg":"auth failed"}]`` /
  ``406 connection limit exceeded`` (beyond the emulator's ``data_connections``) and the socket closes;
- ``{"action":"subscribe"|"unsubscribe","trades":[…],"quotes":[…],"bars":[…]}`` answers the whole
  subscription, ``[{"T":"subscription","trades":[…],"quotes":[…],"bars":[…],…}]``;
- then, on every price update of the emulator, a trade ``{"T":"t","S":…,"p":…,"s":…,"t":…}`` and a quote
  ``{"T":"q","S":…,"bp":…,"bs":…,"ap":…,"as":…,"t":…}`` for each subscribed symbol whose price moved
  (``t`` a msgpack Timestamp, or RFC 3339 text in JSON), with ``wb_simulated`` for simulated data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
from aiohttp import WSMsgType, web

from workbench.core.errors import WorkbenchError
from workbench.core.log import get_logger

from .book import iso

if TYPE_CHECKING:
    from .server import AlpacaEmulator

__all__ = ["DataFeed", "FEEDS"]

log = get_logger(__name__)

#: The feeds Alpaca serves a stream for (the path's last part).
FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "test")
_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    msgpack: bool
    feed: str
    authorized: bool = False
    channels: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in _CHANNELS})
    sent: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # symbol -> (last, bid, ask) last sent

    def encode(self, messages: list[dict[str, Any]]) -> bytes | str:
        if self.msgpack:
            return msgpack.packb([{k: _msgpack_time(v) if k == "t" else v for k, v in m.items()} for m in messages])
        return json.dumps([{k: iso(v) if k == "t" else v for k, v in m.items()} for m in messages])

    async def send(self, messages: list[dict[str, Any]]) -> None:
        payload = self.encode(messages)
        if isinstance(payload, bytes):
            await self.ws.send_bytes(payload)
        else:
            await self.ws.send_str(payload)

    def subscription(self) -> dict[str, Any]:
        trades = sorted(self.channels["trades"])
        return {"T": "subscription", **{c: sorted(s) for c, s in self.channels.items()},
                "corrections": trades, "cancelErrors": trades}


class DataFeed:
    """The market-data websocket clients of one emulator, and what they subscribed."""

    def __init__(self, emulator: AlpacaEmulator) -> None:
        self.emu = emulator
        self.clients: set[_Client] = set()

    def subscribed(self) -> dict[str, set[str]]:
        """Every channel's symbols, over all connections (tests)."""
        out: dict[str, set[str]] = {c: set() for c in _CHANNELS}
        for client in self.clients:
            for channel, symbols in client.channels.items():
                out[channel] |= symbols
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        feed = request.path.rsplit("/", 1)[-1]
        if feed not in FEEDS:
            return web.Response(status=404, text=f"no {feed} stream")
        if not self.emu.accept_streams:
            return web.Response(status=503, text="stream unavailable")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        client = _Client(ws, "msgpack" in request.headers.get("Content-Type", ""), feed)
        self.emu.track(ws)
        try:
            await client.send([{"T": "success", "msg": "connected"}])
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    frame = msgpack.unpackb(msg.data) if msg.type is WSMsgType.BINARY else json.loads(msg.data)
                    action = frame.get("action")
                except (ValueError, AttributeError, msgpack.UnpackException):
                    await client.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
                    continue
                if not await self._on_action(client, action, frame):
                    break
        finally:
            self.clients.discard(client)
            self.emu.untrack(ws)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _on_action(self, client: _Client, action: Any, frame: dict[str, Any]) -> bool:
        """Answer one client message; False closes the connection."""
        if action == "auth":
            if not self.emu.accepts(str(frame.get("key", "")), str(frame.get("secret", ""))):
                await client.send([{"T": "error", "code": 402, "msg": "auth failed"}])
                return False
            limit = self.emu.data_connections
            if limit is not None and len(self.clients) >= limit:
                await client.send([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
                return False
            client.authorized = True
            self.clients.add(client)
            await client.send([{"T": "success", "msg": "authenticated"}])
        elif not client.authorized:
            await client.send([{"T": "error", "code": 401, "msg": "not authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            for channel in _CHANNELS:
                symbols = {str(s).upper() for s in frame.get(channel) or []}
                if action == "subscribe":
                    client.channels[channel] |= symbols
                else:
                    client.channels[channel] -= symbols
                    for sym in symbols:
                        client.sent.pop(sym, None)
            await client.send([client.subscription()])
        else:
            await client.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
        return True

    async def publish(self) -> None:
        """A trade and a quote for every subscribed symbol whose price moved since it was last sent."""
        clients = [c for c in self.clients if not c.ws.closed]
        symbols = {s for c in clients for s in c.channels["trades"] | c.channels["quotes"]}
        quotes = {}
        for sym in sorted(symbols):
            try:
                quotes[sym] = await self.emu.run_engine(self.emu.engine.prices.get_quote, sym)
            except WorkbenchError:  # an unknown symbol: Alpaca streams nothing for it
                continue
        sends = []
        for client in clients:
            messages = []
            for sym, q in quotes.items():
                key = (q.last, q.bid, q.ask)
                if client.sent.get(sym) == key:
                    continue
                client.sent[sym] = key
                if sym in client.channels["trades"]:
                    messages.append({"T": "t", "S": sym, "i": int(q.ts.timestamp() * 1e6), "x": "V",
                                     "p": float(q.last), "s": 100, "c": ["@"], "z": "C", "t": q.ts,
                                     "wb_simulated": bool(q.simulated)})
                if sym in client.channels["quotes"]:
                    bid, ask = q.bid if q.bid is not None else q.last, q.ask if q.ask is not None else q.last
                    messages.append({"T": "q", "S": sym, "bx": "V", "bp": float(bid), "bs": 1, "ax": "V",
                                     "ap": float(ask), "as": 1, "c": ["R"], "z": "C", "t": q.ts,
                                     "wb_simulated": bool(q.simulated)})
            if messages:
                sends.append(client.send(messages))
        for result in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(result, Exception):
                log.debug("market-data send failed (the client left): %s", result)


def _msgpack_time(value: Any) -> Any:
    return msgpack.Timestamp.from_datetime(value) if hasattr(value, "tzinfo") else value
