"""Connecting, re-syncing and reconnecting: the connection lifecycle of
:class:`~workbench.adapters.ib.adapter.IBAdapter` (a mixin).

One attempt is a handshake (trying ``ib.client_id_fallback`` ids on error 326), the account checks, then the
resync's bookkeeping (what happened while disconnected is delivered once). The loss of an established
connection starts one watchdog that retries with backoff until it connects, ``disconnect()`` stops it, or an
error is final (a refused account; 326 once ``ib.client_id_retry`` has passed).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from workbench.core.errors import BrokerUnavailable, ConfigError, WorkbenchError
from workbench.core.log import get_logger
from workbench.core.models import Order

from .config import IBConfig
from .convert import order_key
from .events import RETENTION, Journal
from .parse import client_id_in_use

if TYPE_CHECKING:
    from .streams import QuoteStreams

__all__ = ["Connection"]

log = get_logger(__name__)


class Connection:
    """One connection attempt and the reconnect watchdog. The adapter provides the state used here."""

    name: str
    config: IBConfig
    ib: Any
    account: str
    client_id: int
    simulated: bool
    last_error: WorkbenchError | None
    _lock: asyncio.Lock
    _state: str
    _closing: bool
    _reconnect: asyncio.Task[None] | None
    _epoch: int
    _synced_once: bool
    _journal: Journal
    _streams: QuoteStreams
    _errors: dict[int, list[tuple[int, str]]]
    _by_ref: dict[str, Any]
    _placing: set[str]
    _refused: dict[str, datetime]
    _sent_at: dict[str, datetime]
    _first_seen: dict[str, datetime]

    if TYPE_CHECKING:
        def is_connected(self) -> bool: ...
        def _wire(self) -> Any: ...
        def _index(self, trade: Any) -> None: ...
        def _hidden(self, trade: Any) -> bool: ...
        def _order(self, trade: Any) -> Order: ...
        def _poke(self, *_: Any) -> None: ...

    async def _attempt(self) -> None:
        """One connection: handshake (trying fallback client ids on 326), checks, resync bookkeeping."""
        async with self._lock:
            if self.is_connected():
                return
            self.config.check_endpoint()
            ib = self._wire()
            self._errors.clear()  # request ids are reused after a reconnect
            self.simulated = False  # until this gateway says otherwise, during the handshake
            ids = [self.config.client_id + n for n in range(self.config.client_id_fallback + 1)]
            for n, client_id in enumerate(ids):
                try:
                    await self._handshake(client_id)
                    break
                except ConfigError as exc:
                    if exc.code != 326 or n == len(ids) - 1:
                        raise
                    log.warning("IB client id %s is in use; trying %s (ib.client_id_fallback)", client_id, ids[n + 1])
            try:
                await self._after_handshake(ib, client_id)
                if self._closing:
                    raise BrokerUnavailable("IB connect interrupted by disconnect()", broker=self.name,
                                            code="disconnected")
            except WorkbenchError:  # a refused account is final: the caller does not retry it
                ib.disconnect()
                raise
            except (OSError, asyncio.TimeoutError) as exc:
                ib.disconnect()
                raise BrokerUnavailable(f"IB connection lost during the resync: {exc!r}", broker=self.name,
                                        code="connect") from exc
            self.last_error = None
            self._state = "connected"
        trades = [t for t in self.ib.trades() if not self._hidden(t) and t.order.orderRef not in self._placing]
        try:
            self._journal.sweep(trades, self.ib.fills(), self._order, publish=self._synced_once)
        except Exception:  # one odd order must not leave the resync half done (streams below not restored)
            log.exception("IB: delivering what happened while disconnected failed")
        self._synced_once = True
        self._forget({order_key(t) for t in self.ib.trades()}, datetime.now(UTC) - RETENTION)
        await self._streams.restore()

    async def _handshake(self, client_id: int) -> None:
        """ib_async's connectAsync, but failing at once on error 326 or a closed socket (instead of
        waiting out the timeout, which ib_async does for both)."""
        ib, cfg = self.ib, self.config
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[WorkbenchError] = loop.create_future()

        def on_error(req_id: int, code: int, message: str, *_: Any) -> None:
            if code == 326 and not refused.done():
                refused.set_result(client_id_in_use(client_id, message))

        def on_api_error(message: str) -> None:
            if not refused.done():
                refused.set_result(BrokerUnavailable(f"IB at {cfg.host}:{cfg.port} closed the connection: {message}",
                                                     broker=self.name, code="connect", raw=message))

        extra = {"raiseSyncErrors": True} if "raiseSyncErrors" in inspect.signature(ib.connectAsync).parameters else {}
        ib.errorEvent += on_error
        ib.client.apiError += on_api_error
        attempt = asyncio.ensure_future(ib.connectAsync(cfg.host, cfg.port, clientId=client_id,
                                                        timeout=cfg.connect_timeout, readonly=cfg.readonly,
                                                        account=cfg.account or "", **extra))
        try:
            done, _ = await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
            if attempt not in done:
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
                raise refused.result()
            attempt.result()
        except WorkbenchError:
            raise
        except Exception as exc:  # OSError / TimeoutError mostly: the SDK's own exceptions never reach the user
            if refused.done() and refused.result().code == 326:
                raise refused.result() from None
            text = str(exc) or f"no answer within {cfg.connect_timeout} s"
            raise BrokerUnavailable(f"cannot connect to IB at {cfg.host}:{cfg.port}: {text}", broker=self.name,
                                    code="connect", raw=repr(exc)) from exc
        finally:
            if not attempt.done():  # cancelled from outside (disconnect() during a reconnect)
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
            ib.errorEvent -= on_error
            ib.client.apiError -= on_api_error

    async def _after_handshake(self, ib: Any, client_id: int) -> None:
        accounts = ib.managedAccounts()
        if self.config.account and self.config.account not in accounts:
            raise ConfigError(f"account {self.config.account} is not managed by this IB login "
                              f"(managed: {', '.join(accounts) or 'none'})", key="ib.account", broker=self.name)
        for account in ([self.config.account] if self.config.account else accounts):
            self.config.check_account(account)
        self.account = self.config.account or (accounts[0] if accounts else "")
        if not self.config.account and len(accounts) > 1:  # ib_async subscribes account updates for one only
            await asyncio.wait_for(ib.reqAccountUpdatesAsync(self.account), self.config.connect_timeout)
        if client_id != self.config.client_id and not self.config.readonly:
            # orders sent under the configured id are not "ours" now: fetch them so resubmits find them
            await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), self.config.connect_timeout)
            log.warning("IB: connected as client id %s because %s is in use; orders placed under %s are visible "
                        "but IB lets only their own client modify or cancel them", client_id,
                        self.config.client_id, self.config.client_id)
        self.client_id = client_id
        self._by_ref = {}
        for trade in ib.trades():
            self._index(trade)

    def _forget(self, present: set[str | None], cutoff: datetime) -> None:
        """Bounded memory: drop what we remember of orders no resync reports any more and older than ``cutoff``."""
        for memory in (self._sent_at, self._first_seen, self._refused):
            for key in [k for k, t in memory.items() if t < cutoff and k not in present]:
                del memory[key]

    def _on_disconnected(self) -> None:
        self._lost()
        # Only the loss of an established connection starts the watchdog (ib_async also fires this event
        # when an attempt fails part-way, and on our own disconnect()).
        if self._closing or self._state != "connected":
            return
        self._state = "reconnecting"
        log.warning("IB connection lost; reconnecting")
        self._start_watchdog()

    def _lost(self) -> None:
        self._epoch += 1
        self._poke()  # waits in flight see the new epoch at once

    def _start_watchdog(self) -> None:
        if self._reconnect is None or self._reconnect.done():
            self._state = "reconnecting"
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop(),
                                                                   name="workbench-ib-reconnect")

    async def _stop_watchdog(self) -> None:
        task, self._reconnect = self._reconnect, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _reconnect_loop(self) -> None:
        loop = asyncio.get_running_loop()
        delay, held_since = 0.5, None
        while not self._closing:
            try:
                await self._attempt()
                log.warning("IB connection restored (orders, fills and positions re-synced)")
                return
            except WorkbenchError as exc:
                final = not exc.retryable  # client id taken for good, account refused: retrying cannot help
                if final and exc.code == 326:  # ... but this may be our own vanished connection
                    if held_since is None:
                        held_since = loop.time()
                        log.warning("IB client id %s is still held at the gateway, probably by the connection just "
                                    "lost (the gateway frees it once it notices); retrying for up to %g s",
                                    self.client_id, self.config.client_id_retry)
                    final = loop.time() - held_since >= self.config.client_id_retry
                if final:
                    log.error("IB reconnect stopped: %s", exc)
                    self.last_error = exc
                    self._state = "disconnected"
                    return
                log.info("IB reconnect failed (%s); next try in %.1f s", exc, delay)
            except Exception as exc:  # keep trying whatever the failure; never die silently
                log.info("IB reconnect failed (%s: %s); next try in %.1f s", type(exc).__name__, exc, delay)
            await asyncio.sleep(delay * (1 + random.random() / 4))  # backoff with jitter
            delay = min(delay * 2, self.config.reconnect_max_delay)
