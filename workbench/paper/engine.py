"""The paper matching engine: orders in, fills out, every state change one ledger transaction.

Rules (see README "Paper broker"):

- MARKET fills at the current price moved against you by ``slippage_bps`` (rounded against you to
  0.0001); LIMIT fills when the price reaches the limit (never worse than the limit); STOP / STOP_LIMIT
  trigger when the price crosses the stop, then behave as MARKET / LIMIT. TRAILING_STOP keeps its stop
  ``trail_price`` (or ``trail_percent`` %) away from the best price since acceptance (the high for a
  sell, the low for a buy); ``Order.stop_price`` is the current trigger. A notional MARKET order is sized at its first
  fill price (fractional, 9 decimals) and keeps ``notional``.
- IOC fills what it can at once and cancels the rest; FOK fills completely at once or is cancelled.
  DAY expires at the session close (also with no price: on the ticker and on every read); GTC never
  expires; OPG / CLS execute only at the first price of the session open / close they were placed
  for (within ``max(AUCTION_WINDOW, 2 × tick_interval)``), else expire.
- ``partial_fill_fraction`` > 0 caps each fill at that fraction of the order (per price update).
- Commission is ``max(minimum, per_order + per_share × filled)`` per order, charged fill by fill.
- Buying power is cash minus what open buy orders reserve (price × remaining qty plus the expected
  commission); a sell beyond the position (net of open sells) is refused unless ``allow_short``.
  :meth:`PaperEngine.replace` runs the same checks (:meth:`PaperEngine.check_replace`: only the checks).
  A market buy waiting for its session reserves at the last price seen (after a reopen: the provider's).
- ``enforce_market_hours``: outside the session nothing executes (DAY/GTC orders wait for the open)
  and IOC/FOK are refused with MarketClosed. Off by default, so rehearsals work at night.
- Resubmitting a ``client_order_id`` returns the existing order and never fills twice. Client order
  ids shaped like the engine's ids (``P000000001``) are refused, so a lookup key is never ambiguous.

Prices arrive through :meth:`PaperEngine.on_price` (or :meth:`tick`, which polls the provider); a price
older than an order never fills it. Listeners see every change after it is committed, in commit order.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from workbench.core.enums import OrderStatus, OrderType, TimeInForce
from workbench.core.errors import (BrokerUnavailable, InvalidInput, InvalidOrder, MarketClosed, OrderNotFound,
                                   OrderRejected, SymbolNotFound, WorkbenchError)
from workbench.core.log import get_logger
from workbench.core.models import AccountInfo, FillEvent, NeutralOrder, Order, Position, trusted
from workbench.marketdata.base import MarketDataProvider
from workbench.paper.config import PaperConfig

from . import rules
from .events import Listeners
from .ledger import Change, Ledger, OrderRow
from .matching import _IMMEDIATE, Matching

__all__ = ["PaperEngine", "AUCTION_WINDOW"]

log = get_logger(__name__)

#: How long after the open (OPG) or the close (CLS) a one-shot order may still get its price.
AUCTION_WINDOW = timedelta(minutes=1)

_ZERO = Decimal(0)


class PaperEngine(Matching):
    """A simulated broker over a :class:`Ledger` (which it owns: one engine per ledger file). Thread-safe."""

    broker = "paper"

    def __init__(
        self,
        config: PaperConfig,
        prices: MarketDataProvider,
        clock: Callable[[], datetime] | None = None,
        ledger: Ledger | None = None,
        calendar: Any = None,
    ) -> None:
        self.config = config
        self.prices = prices
        self.clock = clock or (lambda: datetime.now(UTC))
        self.ledger = ledger or Ledger(config.db_file, config.starting_cash, config.synchronous)
        self._calendar = calendar
        self._lock = threading.RLock()
        self._slip = config.slippage_bps / Decimal(10_000)
        self._fraction = config.partial_fill_fraction
        self._commission = config.commission
        self._window = max(AUCTION_WINDOW, timedelta(seconds=2 * config.tick_interval))
        self._closed = False
        self._last_prices: dict[str, Decimal] = {}
        self.listeners = Listeners()  # events queued in commit order, delivered outside the lock
        self._ticker: threading.Thread | None = None
        self._stop_ticking = threading.Event()
        try:
            self.reload()
        except BaseException:
            self.ledger.close()
            raise

    # -- state ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the whole state from the ledger (done at start and after a failed commit)."""
        with self._lock:
            self._cash, self._last_equity, self._last_equity_day = self.ledger.account()
            self._positions = self.ledger.positions()
            self._open = {row.order_id: row for row in self.ledger.open_orders()}
            self._client_ids = self.ledger.client_ids()
            self._next_seq = self.ledger.last_order_seq() + 1
            self._next_expiry = min((r.expires_at for r in self._open.values() if r.expires_at), default=None)
            # Resting buys that reserve at the market price need one; after a restart none was seen yet.
            at_market = {r.symbol for r in self._open.values() if rules.reserves_at_market(r)}
            self._unpriced = at_market - set(self._last_prices)

    @property
    def calendar(self) -> Any:
        if self._calendar is None:
            from workbench.core.calendar import get_calendar

            self._calendar = get_calendar("XNYS")
        return self._calendar

    @property
    def closed(self) -> bool:
        return self._closed

    def add_fill_listener(self, callback: Callable[[FillEvent], None], *,
                          wanted: Callable[[], bool] | None = None) -> Callable[[], None]:
        """Call ``callback(fill)`` after each committed fill; returns a function that unsubscribes.

        ``wanted()``, if given, says whether the listener currently wants events; when no listener
        does, the engine builds none (the hot path stays cheap).
        """
        return self.listeners.add("fills", callback, wanted)

    def add_order_listener(self, callback: Callable[[Order], None], *,
                           wanted: Callable[[], bool] | None = None) -> Callable[[], None]:
        """Call ``callback(order)`` after each committed order change; returns an unsubscribe function."""
        return self.listeners.add("orders", callback, wanted)

    # -- orders -----------------------------------------------------------------------------

    def submit(self, order: NeutralOrder) -> Order:
        """Accept (and, if marketable, fill) an order, in one transaction. Errors leave the ledger untouched."""
        if rules.ENGINE_ID.fullmatch(order.client_order_id):
            raise InvalidOrder(f"client_order_id {order.client_order_id!r} looks like a paper order id; choose "
                               "another (ids of the form P000000001 are the engine's own)", field="client_order_id",
                               broker=self.broker, code="reserved_id")
        rules.check_bounds(order, self.broker)
        rules.check_tick_size(order, self.broker)
        now = self.clock()
        price = self._price(order.symbol, now)  # may do I/O: never under the lock
        if self._unpriced:
            self._price_reservations(now)
        try:
            with self._lock:
                self._require_open()
                self._sweep(now)
                existing = self._find_client(order.client_order_id)
                if existing is not None:
                    return self._resubmitted(existing, order)
                row = self._accept(order, price, now)
                change = Change(new_orders=[row])
                self._work(row, price, now, change)
                if row.status.is_open and row.tif is TimeInForce.DAY:
                    row.expires_at = self.calendar.next_close(now)
                self._commit(change)
        finally:
            self._deliver()
        return self._snapshot(row)

    def _accept(self, order: NeutralOrder, price: Decimal, now: datetime) -> OrderRow:
        """The new order's row, once it passed every check (nothing is written here)."""
        self._last_prices[order.symbol] = price
        if self.config.enforce_market_hours and order.tif in _IMMEDIATE and not self.calendar.is_open(now):
            raise MarketClosed(f"{order.tif} orders are refused while the market is closed",
                               broker=self.broker, code="market_closed")
        trailing = order.order_type is OrderType.TRAILING_STOP
        row = OrderRow(
            order_id=rules.engine_id(self._next_seq), client_order_id=order.client_order_id,
            symbol=order.symbol, side=order.side, qty=order.qty, order_type=order.order_type, tif=order.tif,
            limit_price=order.limit_price, stop_price=rules.initial_stop(order, price), status=OrderStatus.NEW,
            raw_status="new", filled_qty=_ZERO, avg_fill_price=None, created_at=now, updated_at=now,
            trail_price=order.trail_price, trail_percent=order.trail_percent, notional=order.notional,
            best_price=price if trailing else None)
        self._check_buying_power(row, price)
        if order.tif is TimeInForce.OPG:
            row.not_before = self.calendar.next_open(now)
            row.expires_at = row.not_before + self._window
        elif order.tif is TimeInForce.CLS:
            row.not_before = self.calendar.next_close(now)
            row.expires_at = row.not_before + self._window
        return row

    def replace(self, order_id: str, *, qty: Decimal | None = None, limit_price: Decimal | None = None,
                stop_price: Decimal | None = None, trail_price: Decimal | None = None,
                trail_percent: Decimal | None = None) -> Order:
        """Modify a working order's quantity, prices or trail in place (one transaction).

        The new values are validated like a new order (InvalidOrder names the field) and checked like
        one (buying power, no short) against the order as it stands when the change is applied; a change
        that makes the order marketable fills at once. A finished order raises OrderRejected.
        """
        changes = {"qty": qty, "limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price,
                   "trail_percent": trail_percent}
        now, price = self._replace_price(order_id)
        try:
            with self._lock:  # everything below sees and changes the fresh row: concurrent replaces lose nothing
                self._require_open()
                self._sweep(now)
                work = self._replaced(self._existing(order_id), price, now, **changes)
                change = Change(orders=[work])
                if work.qty is not None and work.filled_qty == work.qty:  # reduced to the filled part: done
                    self._close(work, OrderStatus.FILLED, "filled", now)
                else:
                    self._work(work, price, now, change)
                self._commit(change)
        finally:
            self._deliver()
        return self._snapshot(work)

    def check_replace(self, order_id: str, *, qty: Decimal | None = None, limit_price: Decimal | None = None,
                      stop_price: Decimal | None = None, trail_price: Decimal | None = None,
                      trail_percent: Decimal | None = None) -> Order:
        """The order as :meth:`replace` would make it, refused exactly as ``replace`` refuses it (InvalidOrder,
        InsufficientFunds, OrderRejected...), with nothing of it written (orders whose time is up expire, as
        on every call): the check of a cancel-and-replace (Alpaca's replace is a new order taking the old
        one's place: buying power and position are counted without the order being replaced)."""
        changes = {"qty": qty, "limit_price": limit_price, "stop_price": stop_price, "trail_price": trail_price,
                   "trail_percent": trail_percent}
        now, price = self._replace_price(order_id)
        try:
            with self._lock:
                self._require_open()
                self._sweep(now)  # an order whose day is over cannot be replaced
                work = self._replaced(self._existing(order_id), price, now, **changes)
        finally:
            self._deliver()
        return self._snapshot(work)

    def _replace_price(self, order_id: str) -> tuple[datetime, Decimal]:
        """(now, the current price of the order's symbol), the price looked up outside the lock."""
        now = self.clock()
        with self._lock:
            self._require_open()
            symbol = self._existing(order_id).symbol
        price = self._price(symbol, now)
        if self._unpriced:
            self._price_reservations(now)
        return now, price

    def _replaced(self, row: OrderRow, price: Decimal, now: datetime, **changes: Decimal | None) -> OrderRow:
        """``row`` with ``changes``, validated and checked like a new order (nothing is written here)."""
        if row.status.is_terminal:
            raise OrderRejected(f"order {row.order_id} is {row.status} and cannot be modified", broker=self.broker,
                                code="not_modifiable")
        request = rules.modified_order(row, self.broker, **changes)
        work = dataclasses.replace(row, qty=row.qty if row.notional is not None else request.qty,
                                   limit_price=request.limit_price,
                                   trail_price=request.trail_price, trail_percent=request.trail_percent,
                                   raw_status="replaced", updated_at=now)
        if row.order_type is OrderType.TRAILING_STOP:
            assert row.best_price is not None
            work.stop_price = rules.trail_stop(row.side, row.best_price, work.trail_price, work.trail_percent)
        else:
            work.stop_price = request.stop_price
        self._check_buying_power(work, price, exclude=row.order_id)
        return work

    def cancel(self, order_id: str) -> Order:
        """Cancel a working order (by order id or client order id). A finished order is returned as is."""
        now = self.clock()
        try:
            with self._lock:
                self._require_open()
                self._sweep(now)
                row = self._existing(order_id)
                if row.status.is_open:
                    row = dataclasses.replace(row)
                    self._close(row, OrderStatus.CANCELLED, "canceled", now)
                    self._commit(Change(orders=[row]))
        finally:
            self._deliver()
        return self._snapshot(row)

    def get_order(self, order_id: str) -> Order:
        """An order by order id (``P000000001``) or client order id."""
        self._sweep_now()
        with self._lock:
            self._require_open()
            row = self._existing(order_id)
        return self._snapshot(row)

    def orders(self, limit: int | None = None, since: datetime | None = None) -> list[Order]:
        """Order history, most recent first."""
        self._sweep_now()
        return [self._snapshot(r) for r in self.ledger.orders(limit=limit, since=since)]

    def open_orders(self) -> list[Order]:
        self._sweep_now()
        with self._lock:
            self._require_open()
            rows = list(self._open.values())
        return [self._snapshot(r) for r in rows]

    def fills(self, since: datetime | None = None, order_id: str | None = None) -> list[FillEvent]:
        self._require_open()
        return self.ledger.fills(since=since, order_id=order_id, broker=self.broker)

    # -- prices -----------------------------------------------------------------------------

    def on_price(self, symbol: str, price: Decimal, ts: datetime | None = None) -> int:
        """Process one price update for ``symbol``; returns how many orders changed.

        Each order's change is its own transaction. If one fails, the error is raised after the
        events of the changes that did commit are delivered.
        """
        if not isinstance(symbol, str):
            raise InvalidInput(f"symbol must be a string, not {type(symbol).__name__}", field="symbol",
                               broker=self.broker, code="invalid_symbol")
        ts = ts or self.clock()
        symbol = symbol.strip().upper()
        price = _feed_price(price)
        changed = 0
        try:
            with self._lock:
                if self._closed:
                    return 0
                self._last_prices[symbol] = price
                self._unpriced.discard(symbol)
                # A price from before an order existed (a tick that started earlier) is not the order's to act on.
                for row in [r for r in self._open.values() if r.symbol == symbol and r.created_at <= ts]:
                    work = dataclasses.replace(row)
                    change = Change(orders=[work])
                    if work.expires_at is not None and ts >= work.expires_at:
                        self._close(work, OrderStatus.EXPIRED, "expired", work.expires_at)
                    else:
                        self._work(work, price, ts, change)
                    if work != row:
                        self._commit(change)
                        changed += 1
        finally:
            self._deliver()
        return changed

    def tick(self, now: datetime | None = None) -> int:
        """Expire what is due, then poll the provider for every symbol with working orders."""
        now = now or self.clock()
        try:
            with self._lock:
                if self._closed:
                    return 0
                working = len(self._open)
                self._sweep(now)
                changed = working - len(self._open)  # expired
                symbols = sorted({r.symbol for r in self._open.values()})
        finally:
            self._deliver()
        for symbol in symbols:
            try:
                price = self.prices.get_market_price(symbol, now)
            except Exception as exc:  # a data outage must not kill the loop; the next tick retries
                log.warning("no price for %s: %s", symbol, exc)
                continue
            changed += self.on_price(symbol, price, now)
        return changed

    def start_ticker(self, interval: float) -> None:
        """Call :meth:`tick` every ``interval`` seconds in a daemon thread until :meth:`close`."""
        with self._lock:
            self._require_open()
            if self._ticker is not None:
                return
            self._ticker = threading.Thread(target=self._tick_loop, args=(interval,), daemon=True,
                                            name=f"workbench-paper-ticker:{self.ledger.path}")
            self._ticker.start()

    def _tick_loop(self, interval: float) -> None:
        while not self._stop_ticking.wait(interval):
            try:
                self.tick()
            except Exception:  # keep ticking: one bad price or a full disk must not stop order triggering
                log.exception("paper tick failed")

    # -- account ----------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        """Positions marked to the provider's current price (unmarked if it has none)."""
        with self._lock:
            self._require_open()
            held = dict(self._positions)
        return self._marked(held)

    def _marked(self, held: dict[str, tuple[Decimal, Decimal]]) -> list[Position]:
        now = self.clock()
        out = []
        for symbol, (qty, avg) in sorted(held.items()):
            try:
                mark = self.prices.get_market_price(symbol, now)
            except Exception as exc:
                log.warning("cannot mark %s: %s", symbol, exc)
                mark = None
            out.append(rules.mark(symbol, qty, avg, mark))
        return out

    def position(self, symbol: str) -> Position | None:
        symbol = symbol.strip().upper()
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def account(self) -> AccountInfo:
        if self._unpriced:
            self._price_reservations(self.clock())
        self._sweep_now()  # expired DAY orders stop reserving buying power
        with self._lock:  # cash and holdings from the same instant; marks are fetched after
            self._require_open()
            cash, held = self._cash, dict(self._positions)
            reserved = self._reserved_cash()
        positions = self._marked(held)
        value = sum((p.market_value if p.market_value is not None else p.qty * p.avg_price for p in positions), _ZERO)
        equity = cash + value
        today = self.clock().date().isoformat()
        with self._lock:
            self._require_open()
            if self._last_equity_day != today:  # first look at the account today: roll last_equity
                self.ledger.commit(Change(last_equity=(equity, today)))
                self._last_equity, self._last_equity_day = equity, today
            last_equity = self._last_equity
        return AccountInfo(id=self.config.account_id, currency="USD", cash=cash, buying_power=cash - reserved,
                           equity=equity, portfolio_value=equity, last_equity=last_equity)

    @property
    def cash(self) -> Decimal:
        return self._cash

    def close(self) -> None:
        """Stop the ticker and close the ledger (releasing the file); waits for any operation in progress."""
        self._stop_ticking.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=30)
        with self._lock:
            if not self._closed:
                self._closed = True
                self.listeners.clear()
                self.ledger.close()

    def _require_open(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the paper engine is closed", broker=self.broker, code="closed")

    # -- internals --------------------------------------------------------------------------

    def _price(self, symbol: str, now: datetime) -> Decimal:
        try:
            return self.prices.get_market_price(symbol, now)
        except WorkbenchError as exc:
            claim(exc, self.broker)
            raise

    def _price_reservations(self, now: datetime) -> None:
        """Look up (outside the lock) a price for each symbol whose resting buys reserve at the market price
        but have none yet (opened from the ledger): without it they would reserve nothing until the ticker's
        first price for them."""
        for symbol in list(self._unpriced):
            try:
                price: Decimal | None = self.prices.get_market_price(symbol, now)
            except Exception as exc:  # once: the ticker's price will do
                log.warning("no price for %s to reserve its resting buy orders at: %s", symbol, exc)
                price = None
            with self._lock:
                if price is not None:
                    self._last_prices.setdefault(symbol, price)
                self._unpriced.discard(symbol)

    def _find_client(self, client_order_id: str) -> OrderRow | None:
        order_id = self._client_ids.get(client_order_id)
        return None if order_id is None else self._open.get(order_id) or self.ledger.order(order_id)

    def _existing(self, key: str) -> OrderRow:
        """The order with this order id (``P...``) or else client order id; OrderNotFound otherwise."""
        if not isinstance(key, str):
            raise InvalidInput(f"an order id or client order id is a string, not {type(key).__name__}",
                               field="order_id", broker=self.broker, code="invalid_order_id")
        if rules.ENGINE_ID.fullmatch(key):
            row = self._open.get(key) or self.ledger.order(key)
        else:
            row = self._find_client(key)
        if row is None:
            raise OrderNotFound(f"no order {key!r}", broker=self.broker, code="not_found", raw=key)
        return row

    def _resubmitted(self, row: OrderRow, order: NeutralOrder) -> Order:
        same = ["symbol", "side", "order_type", "tif", "limit_price", "trail_price", "trail_percent", "notional"]
        if order.notional is None:
            same.append("qty")
        if order.order_type is not OrderType.TRAILING_STOP:
            same.append("stop_price")  # a trailing stop's stop_price is its moving trigger
        diff = [f for f in same if getattr(row, f) != getattr(order, f)]
        if diff:
            raise InvalidOrder(f"client_order_id {order.client_order_id!r} was already used for a different order "
                               f"(differs in {', '.join(diff)})", field="client_order_id", broker=self.broker,
                               code="client_order_id_reused")
        return self._snapshot(row)

    def _sweep(self, now: datetime) -> None:
        """Expire every open order whose time is up (DAY at the close, OPG/CLS after their window).

        Under the lock; one transaction; its events are queued for delivery.
        """
        if self._next_expiry is None or now < self._next_expiry:
            return
        change = Change()
        for row in self._open.values():
            if row.expires_at is not None and now >= row.expires_at:
                work = dataclasses.replace(row)
                self._close(work, OrderStatus.EXPIRED, "expired", row.expires_at)
                change.orders.append(work)
        if change.orders:
            self._commit(change)
        self._next_expiry = min((r.expires_at for r in self._open.values() if r.expires_at), default=None)

    def _sweep_now(self) -> None:
        try:
            with self._lock:
                self._require_open()
                self._sweep(self.clock())
        finally:
            self._deliver()

    def _commit(self, change: Change) -> None:
        """Write ``change`` in one transaction, then apply it to memory and queue its events (under the lock)."""
        try:
            self.ledger.commit(change)
        except Exception:
            self.reload()
            raise
        if change.cash is not None:
            self._cash = change.cash
        for symbol, pos in change.positions.items():
            if pos is None:
                self._positions.pop(symbol, None)
            else:
                self._positions[symbol] = pos
        for row in change.new_orders:
            self._client_ids[row.client_order_id] = row.order_id
            self._next_seq += 1
        rows = change.new_orders + change.orders if change.new_orders else change.orders
        for row in rows:
            if row.status.is_open:
                self._open[row.order_id] = row
                if row.expires_at is not None and (self._next_expiry is None or row.expires_at < self._next_expiry):
                    self._next_expiry = row.expires_at
            else:
                self._open.pop(row.order_id, None)
        # Events are built only for listeners that want them; the hot path without any builds none.
        listeners = self.listeners
        if change.fills and listeners.fills and listeners.wanted(listeners.fills):
            listeners.queue(f.to_event(self.broker) for f in change.fills)
        if listeners.orders and listeners.wanted(listeners.orders):
            listeners.queue(self._snapshot(row) for row in rows)

    def _deliver(self) -> None:
        self.listeners.deliver()

    def _snapshot(self, row: OrderRow) -> Order:
        return trusted(Order, {  # values the engine holds validated
            "broker": self.broker, "order_id": row.order_id, "client_order_id": row.client_order_id,
            "symbol": row.symbol, "side": row.side, "qty": row.qty, "order_type": row.order_type, "tif": row.tif,
            "limit_price": row.limit_price, "stop_price": row.stop_price, "trail_price": row.trail_price,
            "trail_percent": row.trail_percent, "notional": row.notional, "status": row.status,
            "raw_status": row.raw_status, "filled_qty": row.filled_qty, "avg_fill_price": row.avg_fill_price,
            "created_at": row.created_at, "updated_at": row.updated_at, "raw": None})


def _feed_price(price: Any) -> Decimal:
    """A price update as a finite positive Decimal; InvalidInput (field ``price``) otherwise."""
    try:
        value = price if isinstance(price, Decimal) else Decimal(str(price))
        ok = not isinstance(price, bool) and value.is_finite() and value > 0
    except ArithmeticError:  # decimal.InvalidOperation for text that is not a number
        ok = False
    if not ok:
        raise InvalidInput(f"a price update must be a finite positive number, got {price!r}", field="price",
                           broker=PaperEngine.broker, code="invalid_price")
    return value


def claim(exc: WorkbenchError, broker: str) -> None:
    """An error of the price source (SymbolNotFound...) is said by this broker, with a code."""
    if exc.broker is None:
        exc.broker = broker
    if exc.code is None:
        exc.code = "unknown_symbol" if isinstance(exc, SymbolNotFound) else type(exc).__name__
    if exc.raw is None:
        exc.raw = exc.message
