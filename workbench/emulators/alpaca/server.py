"""The Alpaca emulator: one aiohttp server for the trading API, the market-data API, the trade_updates
websocket and the market-data websocket, backed by a :class:`~workbench.paper.engine.PaperEngine` and its
market-data provider.

Run it on its own loop in a daemon thread (:meth:`AlpacaEmulator.start_in_thread`, or ``with
AlpacaEmulator(...) as emu:``) or inside a running loop (``await emu.start()``). Engine calls run on the
server's loop, or in a worker thread when the provider does I/O (yfinance).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import os
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from workbench.adapters.alpaca.config import KEY_ENV, SECRET_ENV
from workbench.core.errors import ConfigError
from workbench.core.log import get_logger

from .._thread import LoopServer
from .book import Book

__all__ = ["AlpacaEmulator", "Fault", "accepted_pair", "error", "EMULATOR"]

log = get_logger(__name__)
T = TypeVar("T")
#: The application key under which route handlers find their emulator.
EMULATOR: web.AppKey[Any] = web.AppKey("emulator", object)


def error(status: int, code: int, message: str) -> web.Response:
    """An Alpaca error answer: ``{"code": 40410000, "message": "order not found"}``."""
    return web.json_response({"code": code, "message": message}, status=status)


def accepted_pair(key: str | None, secret: str | None, arguments: str = "key= and secret=") -> tuple[str, str]:
    """The key pair an emulator accepts: ``key`` / ``secret``, else ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``.

    ConfigError naming both variables and ``arguments`` (how the caller passes them) when either is missing.
    """
    key = key if key is not None else os.environ.get(KEY_ENV)
    secret = secret if secret is not None else os.environ.get(SECRET_ENV)
    if not key or not secret:
        missing = [name for name, value in ((KEY_ENV, key), (SECRET_ENV, secret)) if not value]
        raise ConfigError(f"the Alpaca emulator needs a key pair: set {KEY_ENV} and {SECRET_ENV} (or pass "
                          f"{arguments}); missing: {', '.join(missing)}", code="emulator_keys")
    return key, secret


@dataclass
class Fault:
    """An injected answer for the next ``times`` requests whose path starts with ``path`` (tests).

    ``status`` 0 passes the request through and delays the real answer by ``delay`` (the request took
    effect, the client times out).
    """

    method: str
    path: str
    status: int
    body: str
    times: int = 1
    delay: float = 0.0


class AlpacaEmulator(LoopServer):
    """Alpaca's REST + trade_updates API over a paper engine, on 127.0.0.1 by default.

    ``key`` / ``secret`` default to ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``; any other pair gets 401 (REST)
    or an authorization failure (streams). ``tick_interval`` drives resting orders and the market-data
    stream (None: tests call :meth:`tick`). ``page_limit`` caps bars per page (Alpaca: 10000), to exercise
    pagination. ``data_connections`` caps market-data websockets at once as Alpaca does (it allows one).

    Without ``engine`` it builds (and on stop closes) its own from ``settings`` (workbench settings: the
    market-data provider and paper rules) over ``db`` or a temporary ledger that is removed on stop.

    >>> with AlpacaEmulator(key="PKTEST", secret="s3cret") as emu:
    ...     settings = {"alpaca": emu.settings()}

    Or ``emu = AlpacaEmulator().start_in_thread()`` ... ``emu.stop_thread()``; ``await emu.start()`` /
    ``emu.stop()`` inside a running loop; :meth:`call` runs a function on its loop from any thread.
    """

    label = "Alpaca emulator"

    def __init__(self, engine: Any = None, *, host: str = "127.0.0.1", port: int = 0, key: str | None = None,
                 secret: str | None = None, tick_interval: float | None = 1.0, page_limit: int = 10_000,
                 settings: Any = None, db: str | None = None, data_connections: int | None = None) -> None:
        key, secret = accepted_pair(key, secret)
        self._owns_engine = engine is None  # built here from settings: closed (and its temp ledger removed) on stop
        if engine is None:
            from . import build_engine

            engine = build_engine(settings, db)
        self.engine = engine
        # Closes the engine built here and removes its temporary ledger: on stop, on a failed start, and
        # when an emulator that never ran is dropped.
        temp = Path(engine.config.db_path).parent if self._owns_engine and db is None else None
        self._release = weakref.finalize(self, _release, engine if self._owns_engine else None, temp)
        self.host = host
        self._port = port
        self._key, self._secret = key, secret
        self.tick_interval = tick_interval
        self.page_limit = page_limit
        #: Market-data websocket connections allowed at once (Alpaca: one per account); None: no limit.
        self.data_connections = data_connections
        self.faults: list[Fault] = []
        #: False: new stream connections are refused (503) until set back to True (tests of reconnects).
        self.accept_streams = True
        self.requests: list[tuple[str, str]] = []  # (method, path + query) of every REST request
        #: (time.monotonic(), path) of every websocket connection attempt, refused ones included.
        self.stream_attempts: list[tuple[float, str]] = []
        self.book: Book = None  # type: ignore[assignment]
        self.data: Any = None  # the market-data websocket (DataFeed), once started
        self._stream_paths: set[str] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._listeners: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never the key pair
        return f"<AlpacaEmulator {self.base_url if self._loop else 'not started'}>"

    # -- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def data_url(self) -> str:
        return self.base_url

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self._port}/stream"

    @property
    def data_stream_url(self) -> str:
        """The market-data websocket's origin (``/v2/<feed>`` follows, as on Alpaca)."""
        return f"ws://{self.host}:{self._port}"

    def settings(self) -> dict[str, str]:
        """The ``alpaca`` settings section that points workbench at this emulator."""
        return {"base_url": self.base_url, "data_url": self.data_url, "stream_url": self.stream_url,
                "data_stream_url": self.data_stream_url}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> AlpacaEmulator:
        self._loop = asyncio.get_running_loop()
        try:
            await self._start()
        except BaseException:  # the port is taken...: nothing stays open
            await self.stop()
            raise
        log.info("Alpaca emulator listening on %s", self.base_url)
        return self

    async def _start(self) -> None:
        from .datastream import FEEDS, DataFeed
        from .marketdata import ROUTES as DATA_ROUTES
        from .trading import ROUTES as TRADING_ROUTES

        self.book = Book(self.engine, self.broadcast, self._wake)
        with contextlib.suppress(Exception):  # load the exchange calendar now, not on the first DAY order
            self.engine.calendar.next_close(self.engine.clock())
        app = web.Application(middlewares=[self._middleware])
        app[EMULATOR] = self
        for method, path, handler in (*TRADING_ROUTES, *DATA_ROUTES):
            app.router.add_route(method, path, handler)
        app.router.add_get("/stream", self._stream)
        self.data = DataFeed(self)
        for feed in FEEDS:  # the market-data websocket, wss://stream.data.alpaca.markets/v2/<feed>
            app.router.add_get(f"/v2/{feed}", self.data.handle)
        self._stream_paths = {"/stream", *(f"/v2/{feed}" for feed in FEEDS)}
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.tick_interval:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        await self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.book is not None:
            self.book.close()
        self._release()

    def tick(self) -> int:
        """One price update (from another thread): working orders, then the market-data stream; returns
        how many orders changed."""
        return self.call(self._tick_once)

    def fail_next(self, method: str, path: str, status: int, body: Any = None, times: int = 1,
                  delay: float = 0.0) -> None:
        """Answer the next ``times`` ``method`` requests under ``path`` with ``status`` and ``body`` (tests).

        ``delay`` seconds pass before the answer (a hanging server, for timeouts); ``status`` 0 lets the
        request through and only delays its answer.
        """
        text = body if isinstance(body, str) else json.dumps(body if body is not None else
                                                             {"code": status * 100000, "message": "injected"})
        self.call(self.faults.append, Fault(method.upper(), path, status, text, times, delay))

    def disconnect_streams(self) -> None:
        """Close every websocket now (clients reconnect by themselves)."""
        self.call(self.drop_streams)

    def track(self, ws: web.WebSocketResponse) -> None:
        """A websocket that :meth:`drop_streams` closes."""
        self._sockets.add(ws)

    def untrack(self, ws: web.WebSocketResponse) -> None:
        self._sockets.discard(ws)

    def accepts(self, key: str, secret: str) -> bool:
        """Whether this is the key pair the emulator accepts (compared in constant time)."""
        return hmac.compare_digest(key, self._key) and hmac.compare_digest(secret, self._secret)

    async def drop_streams(self) -> None:
        """Close every websocket, trade updates and market data (clients reconnect by themselves)."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        self._sockets.clear()
        self._listeners.clear()

    # -- engine plumbing ----------------------------------------------------------------------

    async def run_engine(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An engine/provider call: inline, or in a worker thread when the provider does I/O."""
        if getattr(self.engine.prices, "blocking", False):
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    def _wake(self) -> None:
        self.soon(self.book.drain)

    async def _tick_loop(self) -> None:
        assert self.tick_interval
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                await self._tick_once()
            except Exception:
                log.exception("tick failed")

    async def _tick_once(self) -> int:
        changed = await self.run_engine(self.engine.tick)
        self.book.drain()
        await self.data.publish()
        return changed

    # -- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if request.path in self._stream_paths:  # websockets authenticate in-band
            self.stream_attempts.append((time.monotonic(), request.path))
            return await handler(request)
        self.requests.append((request.method, request.path_qs))
        if not self._authorized(request.headers):
            return error(401, 40110000, "request is not authorized")
        for fault in self.faults:
            if fault.method == request.method and request.path.startswith(fault.path) and fault.times > 0:
                fault.times -= 1
                answer = await handler(request) if fault.status == 0 else None
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if answer is not None:
                    return answer
                return web.Response(text=fault.body, status=fault.status, content_type="application/json")
        self.faults = [f for f in self.faults if f.times > 0]
        try:
            return await handler(request)
        except web.HTTPNotFound:  # a route Alpaca does not have: its JSON error body, not aiohttp's text
            return error(404, 40410000, "endpoint not found")
        except web.HTTPMethodNotAllowed:
            return error(405, 40510000, "method not allowed")
        except web.HTTPException:
            raise
        except (ValueError, KeyError, ArithmeticError) as exc:
            return error(422, 40010000, f"invalid request: {exc}")

    def _authorized(self, headers: Any) -> bool:
        key, secret = headers.get("APCA-API-KEY-ID", ""), headers.get("APCA-API-SECRET-KEY", "")
        if not key and headers.get("Authorization", "").startswith("Basic "):
            import base64

            with contextlib.suppress(ValueError):
                key, _, secret = base64.b64decode(headers["Authorization"][6:]).decode().partition(":")
        return self.accepts(key, secret)

    # -- the trade_updates stream ---------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if not self.accept_streams:
            return web.Response(status=503, text="stream unavailable")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.track(ws)
        authorized = False
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    frame = json.loads(msg.data)
                    action, data = frame.get("action"), frame.get("data") or {}
                except (ValueError, AttributeError):
                    await self._send(ws, {"stream": "error", "data": {"error_message": "invalid syntax"}})
                    continue
                if action == "authenticate":
                    authorized = self.accepts(str(data.get("key_id", "")), str(data.get("secret_key", "")))
                    status = "authorized" if authorized else "unauthorized"
                    await self._send(ws, {"stream": "authorization",
                                          "data": {"action": "authenticate", "status": status}})
                    if not authorized:
                        break
                elif action == "listen" and authorized:
                    streams = [s for s in data.get("streams", []) if s == "trade_updates"]
                    if streams:
                        self._listeners.add(ws)
                    else:
                        self._listeners.discard(ws)
                    await self._send(ws, {"stream": "listening", "data": {"streams": streams}})
                else:
                    await self._send(ws, {"stream": "authorization",
                                          "data": {"action": str(action), "status": "unauthorized"}})
        finally:
            self.untrack(ws)
            self._listeners.discard(ws)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _send(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        await ws.send_bytes(json.dumps(message).encode())  # Alpaca's paper stream sends binary frames

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send one trade_updates message to every listening connection (loop thread)."""
        payload = json.dumps(message).encode()
        for ws in list(self._listeners):
            if ws.closed:
                self._listeners.discard(ws)
                continue
            task = asyncio.ensure_future(ws.send_bytes(payload))
            task.add_done_callback(_ignore_closed)


def _release(engine: Any, temp: Path | None) -> None:
    """Close the emulator's own engine and remove its temporary ledger folder (either may be None)."""
    if engine is not None and not engine.closed:
        engine.close()
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)


def _ignore_closed(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a connection closing under the send is not an error
