"""The asyncio TWS server: one :class:`Session` per client connection, dispatching on the message id.

Run it on its own loop in a daemon thread (:meth:`TwsEmulator.start_in_thread`) or inside a running
loop (``await emu.start()``). All engine calls happen on the emulator's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from workbench.core.errors import InvalidInput

from . import handlers_data, scanner  # noqa: F401  (register the market-data and scanner handlers)
from . import messages as m
from .._thread import LoopServer
from .bridge import Bridge
from .codec import encode, parse_greeting, read_frame, split
from .handlers import HANDLERS
from .instruments import Catalog
from .quotes import QuoteFeed
from .state import GatewayState, state_path_for
from .subscriptions import Subscriptions
from .unsupported import answer_unsupported, request_id

__all__ = ["TwsEmulator", "Session", "DEFAULT_SERVER_VERSION", "MIN_SERVER_VERSION", "MAX_SERVER_VERSION",
           "MIN_TICK_INTERVAL", "MAX_TICK_INTERVAL", "check_server_version", "check_tick_interval"]

log = logging.getLogger(__name__)

MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178
DEFAULT_SERVER_VERSION = 157
SKIPPED_SERVER_VERSIONS = (158, 163)  # odd gates ib_async mis-decodes (protocol reference §2.3)
#: The ticker's range: more often spins a core for nothing, longer overflows the loop's timers.
MIN_TICK_INTERVAL, MAX_TICK_INTERVAL = 0.01, 86_400.0
RECEIVED_LIMIT = 10_000
ACCOUNT_PUSH_SECONDS = 60
FARM_NOTICES = ((2104, "Market data farm connection is OK:usfarm"),
                (2106, "HMDS data farm connection is OK:ushmds"),
                (2158, "Sec-def data farm connection is OK:secdefnj"))
#: Sent at connect when the prices are simulated: what a real gateway never says (a notice code, so clients only
#: log it). workbench's ib adapter then labels this session's quotes and bars simulated.
SIMULATED_NOTICE = (2199, "workbench TWS emulator: simulated data")


def check_server_version(version: int) -> None:
    """InvalidInput unless ``version`` is one the emulator speaks."""
    if not MIN_SERVER_VERSION <= version <= MAX_SERVER_VERSION or version in SKIPPED_SERVER_VERSIONS:
        raise InvalidInput(f"server_version must be in {MIN_SERVER_VERSION}..{MAX_SERVER_VERSION} (not 158 or 163), "
                           f"got {version}", field="server_version")


def check_tick_interval(seconds: float | None) -> None:
    """InvalidInput unless ``seconds`` is None (no ticker) or a number of seconds in the ticker's range."""
    if seconds is None:
        return
    if not MIN_TICK_INTERVAL <= seconds <= MAX_TICK_INTERVAL:  # (NaN fails too)
        hint = " (None runs no ticker: prices move when you call tick())" if seconds == 0 else ""
        raise InvalidInput(f"tick_interval must be seconds in {MIN_TICK_INTERVAL:g}..{MAX_TICK_INTERVAL:g}, "
                           f"got {seconds!r}{hint}", field="tick_interval")


class Session:
    """One client connection: handshake, then frames dispatched to :data:`HANDLERS`."""

    def __init__(self, server: TwsEmulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.sv = 0
        self.client_id: int = -1
        self.started = False
        self.closed = False
        self.subs = Subscriptions()
        self.market_data_type = 1  # reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen
        self.received: deque[list[str]] = deque(maxlen=RECEIVED_LIMIT)
        #: The id of every message sent (the latest RECEIVED_LIMIT), for tests.
        self.sent_ids: deque[int] = deque(maxlen=RECEIVED_LIMIT)
        self.connect_options = ""
        self._out: list[bytes] = []

    def send(self, fields: list[Any]) -> None:
        """Queue one message; everything queued in one loop iteration goes out in one write."""
        if self.closed:
            return
        first = not self._out
        self._out.append(encode(fields))
        self.sent_ids.append(int(fields[0]))
        if first:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if not self._out:
            return
        data, self._out = b"".join(self._out), []
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(m.error(self.sv, req_id, code, text))

    async def run(self) -> None:
        try:
            if await self.reader.readexactly(4) != b"API\0":
                return
            low, high, self.connect_options = parse_greeting(await read_frame(self.reader))
            sv = min(high, self.server.server_version)
            if sv < max(low, MIN_SERVER_VERSION):
                log.warning("client versions v%s..%s are not supported", low, high)
                return
            self.sv = sv
            self.send(m.handshake(sv, datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")))
            while not self.closed:
                fields = split(await read_frame(self.reader))
                if not fields:
                    continue
                self.received.append(fields)
                self.server.received.append((self.client_id, fields))
                self.dispatch(fields)
                self.flush()
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            if not isinstance(exc, asyncio.IncompleteReadError):
                log.info("connection closed: %s", exc)
        finally:
            self.close()

    def dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("bad message id %r", fields[0])
            return
        if not self.started and msg_id != 71:
            log.warning("message %s before startApi ignored", msg_id)
            return
        handler = HANDLERS.get(msg_id, answer_unsupported)
        try:
            handler(self, fields)
        except (IndexError, ValueError) as exc:
            log.warning("malformed request %s (%s): %s", msg_id, exc, fields)
            self.error(request_id(fields), 320,
                       f"Server error when reading an API client request:-'{msg_id}' : cause - {exc}")
        except Exception as exc:
            log.exception("request %s failed", msg_id)
            self.error(request_id(fields), 322, f"Error processing request:-'{msg_id}' : cause - {exc}")

    def start_api(self, client_id: int) -> bool:
        """Register the clientId; False (after error 326) when a live connection already holds it."""
        if not self.server.register(self, client_id):
            self.send(m.error(self.sv, -1, 326, "Unable to connect as the client id is already in use. "
                                                "Retry with a unique client id."))
            self.close()
            return False
        self.client_id = client_id
        self.started = True
        self.send(m.managed_accounts(self.server.accounts))
        self.send(m.next_valid_id(self.server.bridge.next_order_id()))
        if self.server.farm_notices:
            for code, text in FARM_NOTICES:
                self.error(-1, code, text)
        if getattr(self.server.engine.prices, "simulated", False):
            self.error(-1, *SIMULATED_NOTICE)
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        self.server.unregister(self)
        with contextlib.suppress(Exception):
            self.writer.close()


class TwsEmulator(LoopServer):
    """A TWS / IB Gateway emulator over a :class:`~workbench.paper.engine.PaperEngine`, on 127.0.0.1 and a
    free port by default.

    Without ``engine`` it builds its own from ``settings`` (workbench settings: the paper rules and the
    market-data provider) over an in-memory ledger, or ``db``, and closes it on stop. ``tick_interval``
    (seconds, 0.01 .. 86400) drives resting orders and streaming quotes from a background task; ``None``
    runs none (tests call :meth:`tick`). A bad ``server_version`` or ``tick_interval`` raises InvalidInput.

    >>> with TwsEmulator(margin=True) as emu:           # a notebook cell: stopped when the block ends
    ...     broker = workbench.connect("ib", settings={"ib": emu.settings()})

    Or ``emu = TwsEmulator().start_in_thread()`` ... ``emu.stop_thread()``; ``await emu.start()`` / ``emu.stop()``
    inside a running loop; :meth:`call` runs a function on its loop from any thread.
    """

    label = "TWS emulator"

    def __init__(self, engine: Any = None, *, host: str = "127.0.0.1", port: int = 0,
                 server_version: int = DEFAULT_SERVER_VERSION, accounts: tuple[str, ...] = ("DU1234567",),
                 tick_interval: float | None = 1.0, farm_notices: bool = True, live_data: bool = True,
                 margin: bool | None = None, state_path: str | None = None, settings: Any = None,
                 db: str | None = None) -> None:
        check_server_version(server_version)
        check_tick_interval(tick_interval)
        if not accounts:
            raise InvalidInput("at least one account is needed", field="accounts")
        #: Built here (from ``settings``): closed on stop.
        self.owns_engine = engine is None
        if engine is None:
            from . import build_engine

            engine = build_engine(db, settings, margin=bool(margin))
        self.engine = engine
        self.host = host
        self._port = port
        self.server_version = server_version
        self.accounts = list(accounts)
        self.tick_interval = tick_interval
        self.farm_notices = farm_notices
        #: False: the account has no live-data subscription (354 for live requests; delayed data works).
        self.live_data = live_data
        #: A margin account (Reg T requirements; shorting allowed when the engine allows it) or cash.
        self.margin = bool(engine.config.allow_short) if margin is None else margin
        #: Where order ids, permIds and the exec-id prefix are kept (default: next to the ledger).
        self.state_path = state_path or state_path_for(engine.config.db_file)
        self.catalog = Catalog(engine.prices, engine.calendar)
        self.feed = QuoteFeed(engine.prices, engine.calendar)
        #: Every request received, as (clientId, fields), for tests to assert on (the latest RECEIVED_LIMIT).
        self.received: deque[tuple[int, list[str]]] = deque(maxlen=RECEIVED_LIMIT)
        self.sessions: set[Session] = set()
        self._clients: dict[int, Session] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.bridge: Bridge = None  # type: ignore[assignment]
        self.state: GatewayState = None  # type: ignore[assignment]
        self._last_account_push: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    def settings(self) -> dict[str, Any]:
        """The ``ib`` settings section that points workbench at this emulator (``{"ib": emu.settings()}``)."""
        return {"host": self.host, "port": self._port, "account": self.accounts[0]}

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self.bridge is not None else "not running"
        return (f"<TwsEmulator {where} server version {self.server_version}, "
                f"{'margin' if self.margin else 'cash'} account {self.accounts[0]}>")

    async def start(self) -> TwsEmulator:
        self._loop = asyncio.get_running_loop()
        self.state = GatewayState(self.state_path)
        self.bridge = Bridge(self, self.state)
        _warm_up(self.engine)
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self._port)
        except BaseException:  # e.g. the port is taken: release what start() made (and an engine built here)
            await self.stop()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        if self.tick_interval:
            self._ticker = asyncio.create_task(self._tick_loop())
        log.info("TWS emulator listening on %s:%s (server version %s)", self.host, self._port, self.server_version)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for session in list(self.sessions):
            session.close()  # its transport closes: the session's reader sees EOF and run() returns
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        if self.bridge is not None:
            self.bridge.close()
            self.state.close()
            self.bridge = None  # type: ignore[assignment]
        if self.owns_engine:
            self.engine.close()

    def requests(self, client_id: int | None = None) -> list[list[str]]:
        """A copy of the requests received (from ``client_id`` only, if given); safe from any thread."""
        log_copy = self.call(lambda: list(self.received)) if self._loop is not None else list(self.received)
        return [f for cid, f in log_copy if client_id is None or cid == client_id]

    def responses(self, client_id: int) -> list[int]:
        """The ids of the messages sent to ``client_id``'s connection so far (latest first is last)."""
        session = self._clients.get(client_id)
        return self.call(lambda: list(session.sent_ids)) if session is not None else []

    def tick(self) -> int:
        """Process one price update for working orders and streaming quotes (thread-safe)."""
        return self.call(self._tick_once)

    # -- sessions ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = Session(self, reader, writer)
        self.sessions.add(session)
        try:
            await session.run()
        except asyncio.CancelledError:  # stop() gave up waiting: end like a closed connection (Python 3.11's
            session.close()             # start_server logs a cancelled handler as an error)
        finally:
            self.sessions.discard(session)
            if task is not None:
                self._tasks.discard(task)

    def register(self, session: Session, client_id: int) -> bool:
        holder = self._clients.get(client_id)
        if holder is not None and holder is not session and not holder.closed:
            return False
        self._clients[client_id] = session
        return True

    def unregister(self, session: Session) -> None:
        if self._clients.get(session.client_id) is session:
            del self._clients[session.client_id]

    def session_for(self, client_id: int) -> Session | None:
        session = self._clients.get(client_id)
        return session if session is not None and not session.closed else None

    def live_sessions(self) -> list[Session]:
        return [s for s in self._clients.values() if not s.closed]

    def wake(self) -> None:
        """Engine events arrived (possibly on another thread): drain them on the loop."""
        self.soon(self._safe_drain)

    def _safe_drain(self) -> None:
        if self.bridge is None:  # stopped meanwhile
            return
        try:
            self.bridge.drain()
        except Exception:
            log.exception("draining engine events failed")

    async def _tick_loop(self) -> None:
        assert self.tick_interval
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self._tick_once()
            except Exception:
                log.exception("tick failed")

    def _tick_once(self) -> int:
        from .handlers_data import push_market_data

        changed = self.engine.tick()
        self.bridge.drain()
        now = self.engine.clock()
        for session in self.live_sessions():
            push_market_data(session, now)
        if self._last_account_push is None or (now - self._last_account_push).total_seconds() >= ACCOUNT_PUSH_SECONDS:
            self.push_account(now)
        return changed

    def push_account(self, now: Any = None) -> None:
        """Positions to reqPositions subscribers, portfolio and values to account subscribers (after fills,
        and every ACCOUNT_PUSH_SECONDS of emulator time as prices move, as a gateway does)."""
        from .handlers import push_account
        from .handlers_data import push_pnl

        self._last_account_push = now or self.engine.clock()
        push_account(self)
        for session in self.live_sessions():
            push_pnl(session)


def _warm_up(engine: Any) -> None:
    """Load the exchange calendar now, so the first DAY order is not slowed by it."""
    try:
        engine.calendar.next_close(engine.clock())
    except Exception as exc:  # only a speed-up
        log.debug("calendar warm-up failed: %s", exc)
