"""A loopback TCP proxy between an IB client and the TWS emulator: the network, made controllable.

Tests use it to lose a connection at an exact moment: ``blackhole("up")`` drops what the client sends (an order
that never reaches the gateway), ``blackhole("down")`` drops what the gateway answers (an order the gateway has
but whose acknowledgement never arrives), ``cut()`` closes the open connections (``keep_gateway_side=True`` leaves
the gateway believing the old client is still connected: a half-open connection; ``release_gateway_side()``
closes it later, as a gateway does once it notices). Frame level, gateway -> client: ``on_down(fn)`` passes each
message's fields through ``fn``, which returns the messages to forward instead (``[]`` holds or drops it), and
``inject(fields)`` sends a message to the client now, as if the gateway had. Runs on its own loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable
from typing import Any

from workbench.emulators.tws.codec import encode, split

Fields = list[str]

__all__ = ["Proxy"]


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, gateway: asyncio.StreamWriter) -> None:
        self.client, self.gateway = client, gateway
        self.cut = False  # the client side is gone
        self.holes: set[str] = set()
        self.keep_gateway = False  # ... but the gateway side stays open (half-open)
        self.down = b""  # gateway bytes not yet a whole message


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.dropped = {"up": 0, "down": 0}  # bytes swallowed by a blackhole
        self.connections = 0  # accepted so far
        self._holes: set[str] = set()
        self._pairs: list[_Pair] = []
        self._down: Callable[[Fields], list[Fields]] | None = None
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-ib-proxy", daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._start())
        return self

    def blackhole(self, direction: str, new_connections: bool = False) -> None:
        """Drop every byte going ``"up"`` (client -> gateway) or ``"down"`` on the open connections (and, with
        ``new_connections``, on every later one too)."""
        self._call(self._blackhole(direction, new_connections))

    def cut(self, keep_gateway_side: bool = False) -> None:
        """Close every connection (the client sees the gateway vanish); new connections forward again."""
        self._call(self._cut(keep_gateway_side))

    def release_gateway_side(self) -> None:
        """Close the gateway side kept open by ``cut(keep_gateway_side=True)`` (the gateway noticed at last)."""
        self._call(self._release())

    def on_down(self, fn: Callable[[Fields], list[Fields]] | None, send_first: list[Fields] = ()) -> None:
        """Pass every later gateway message through ``fn`` (on the proxy's thread); None: forward as is.
        ``send_first`` (messages held so far, say) goes to the client before anything else."""
        self._call(self._set_down(fn, [encode(f) for f in send_first]))

    def inject(self, fields: list[Any]) -> None:
        """Send one message to the connected client(s), as if the gateway had sent it."""
        self._call(self._inject(encode(fields)))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # -- loop side ---------------------------------------------------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = _Pair(writer, up_writer)
        pair.holes |= self._holes
        self._pairs.append(pair)
        await asyncio.gather(self._pump(pair, reader, "up"), self._pump(pair, up_reader, "down"),
                             return_exceptions=True)

    async def _pump(self, pair: _Pair, reader: asyncio.StreamReader, direction: str) -> None:
        writer = pair.gateway if direction == "up" else pair.client
        try:
            while data := await reader.read(65536):
                if pair.cut:
                    continue  # a kept gateway side keeps talking to nobody
                if direction in pair.holes:
                    self.dropped[direction] += len(data)
                    continue
                if direction == "down":
                    data = self._messages(pair, data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not (direction == "up" and pair.keep_gateway):
                with contextlib.suppress(Exception):
                    writer.close()

    def _messages(self, pair: _Pair, data: bytes) -> bytes:
        """Whole gateway messages, each passed through the ``on_down`` function."""
        buf, out = pair.down + data, []
        while len(buf) >= 4:
            (size,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + size:
                break
            frame, buf = buf[:4 + size], buf[4 + size:]
            fn = self._down
            out += [frame] if fn is None else [encode(f) for f in fn(split(frame[4:]))]
        pair.down = buf
        return b"".join(out)

    async def _set_down(self, fn: Callable[[Fields], list[Fields]] | None, frames: list[bytes]) -> None:
        self._down = fn
        for frame in frames:
            await self._inject(frame)

    async def _inject(self, frame: bytes) -> None:
        for pair in self._pairs:
            if not pair.cut:
                pair.client.write(frame)
                await pair.client.drain()

    async def _release(self) -> None:
        for pair in self._pairs:
            if pair.keep_gateway:
                pair.keep_gateway = False
                pair.gateway.close()

    async def _cut(self, keep_gateway_side: bool) -> None:
        pairs = [p for p in self._pairs if not p.cut]
        for pair in pairs:
            pair.cut, pair.keep_gateway = True, keep_gateway_side
            pair.client.close()
            if not keep_gateway_side:
                pair.gateway.close()

    async def _blackhole(self, direction: str, new_connections: bool) -> None:
        for pair in self._pairs:
            pair.holes.add(direction)
        if new_connections:
            self._holes.add(direction)

    async def _stop(self) -> None:
        for pair in self._pairs:
            pair.cut = True
            pair.client.close()
            pair.gateway.close()
        if self._server is not None:
            self._server.close()
