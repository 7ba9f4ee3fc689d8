"""The paper matching engine: orders in, fills out, every state change one ledger transaction.

Rules (see README "Paper broker"):

- MARKET fills at the current price moved against you by ``slippage_bps``; LIMIT fills when the
  price reaches the limit (never worse than the limit); STOP / STOP_LIMIT trigger when the price
  crosses the stop, then behave as MARKET / LIMIT.
- IOC fills what it can at once and cancels the rest; FOK fills completely at once or is cancelled.
  DAY expires at the session close; GTC never expires; OPG / CLS get one chance at the first price
  at or after the session open / close, then expire.
- ``partial_fill_fraction`` > 0 caps each fill at that fraction of the order (per price update).
- Buying power is cash minus what open buy orders reserve; a sell beyond the position (net of open
  sells) is refused unless ``allow_short``.
- ``enforce_market_hours``: outside the session nothing executes (DAY/GTC orders wait for the open)
  and IOC/FOK are refused with MarketClosed. Off by default, so rehearsals work at night.
- Resubmitting a ``client_order_id`` returns the existing order and never fills twice.

Prices arrive through :meth:`PaperEngine.on_price` (or :meth:`tick`, which polls the provider).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import (InsufficientFunds, InvalidOrder, MarketClosed, NotSupported, OrderNotFound,
                                   OrderRejected)
from workbench.core.log import get_logger
from workbench.core.models import AccountInfo, FillEvent, NeutralOrder, Order, Position
from workbench.marketdata.base import MarketDataProvider
from workbench.paper.config import PaperConfig

from .ledger import Change, FillRow, Ledger, OrderRow

__all__ = ["PaperEngine"]

log = get_logger(__name__)

_PRICE_Q = Decimal("0.0001")
_AVG_Q = Decimal("0.000001")
_ONE = Decimal(1)
_ZERO = Decimal(0)
_SAME_FIELDS = ("symbol", "side", "qty", "order_type", "tif", "limit_price", "stop_price")


class PaperEngine:
    """A simulated broker over a :class:`Ledger`. Thread-safe."""

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
        self._closed = False
        self._last_prices: dict[str, Decimal] = {}
        self._fill_listeners: list[Callable[[FillEvent], None]] = []
        self._order_listeners: list[Callable[[Order], None]] = []
        self.reload()

    # -- state ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the whole state from the ledger (done at start and after a failed commit)."""
        with self._lock:
            self._cash, self._last_equity, self._last_equity_day = self.ledger.account()
            self._positions = self.ledger.positions()
            self._open = {row.order_id: row for row in self.ledger.open_orders()}
            self._client_ids = self.ledger.client_ids()
            self._next_seq = self.ledger.order_count() + 1

    @property
    def calendar(self) -> Any:
        if self._calendar is None:
            from workbench.core.calendar import get_calendar

            self._calendar = get_calendar("XNYS")
        return self._calendar

    def add_fill_listener(self, callback: Callable[[FillEvent], None]) -> Callable[[], None]:
        """Call ``callback(fill)`` after each committed fill; returns a function that unsubscribes."""
        self._fill_listeners.append(callback)
        return lambda: self._fill_listeners.remove(callback) if callback in self._fill_listeners else None

    def add_order_listener(self, callback: Callable[[Order], None]) -> Callable[[], None]:
        """Call ``callback(order)`` after each committed order change; returns an unsubscribe function."""
        self._order_listeners.append(callback)
        return lambda: self._order_listeners.remove(callback) if callback in self._order_listeners else None

    # -- orders -----------------------------------------------------------------------------

    def submit(self, order: NeutralOrder) -> Order:
        """Accept (and, if marketable, fill) an order. Errors leave the ledger untouched."""
        if order.qty is None or order.order_type is OrderType.TRAILING_STOP:  # TODO(paper branch)
            raise NotSupported("the paper engine does not carry notional or trailing-stop orders yet",
                               broker=self.broker, field="notional" if order.qty is None else "order_type")
        _check_tick_size(order)
        now = self.clock()
        price = self.prices.get_market_price(order.symbol, now)  # may do I/O: never under the lock
        with self._lock:
            self._require_open()
            existing = self._find(order.client_order_id, by_client_id=True)
            if existing is not None:
                return self._resubmitted(existing, order)
            self._last_prices[order.symbol] = price
            if self.config.enforce_market_hours and order.tif in (TimeInForce.IOC, TimeInForce.FOK) \
                    and not self.calendar.is_open(now):
                raise MarketClosed(f"{order.tif} orders are refused while the market is closed",
                                   broker=self.broker, code="market_closed")
            self._check_funds(order, price)
            row = OrderRow(
                order_id=f"P{self._next_seq:09d}", client_order_id=order.client_order_id, symbol=order.symbol,
                side=order.side, qty=order.qty, order_type=order.order_type, tif=order.tif,
                limit_price=order.limit_price, stop_price=order.stop_price, status=OrderStatus.NEW,
                raw_status="new", filled_qty=_ZERO, avg_fill_price=None, created_at=now, updated_at=now)
            if order.tif is TimeInForce.OPG:
                row.not_before = self.calendar.next_open(now)
            elif order.tif is TimeInForce.CLS:
                row.not_before = self.calendar.next_close(now)
            change = Change()
            self._work(row, price, now, change)
            if row.status.is_open and row.tif is TimeInForce.DAY:
                row.expires_at = self.calendar.next_close(now)
            change.orders = [row]
            events = self._commit(change)
        self._notify(events)
        return self._snapshot(row)

    def replace(self, order_id: str, *, qty: Decimal | None = None, limit_price: Decimal | None = None,
                stop_price: Decimal | None = None) -> Order:
        """Modify a working order's quantity and/or prices in place (one transaction).

        The new values are validated like a new order (InvalidOrder names the field); a change that makes
        the order marketable fills at once. A finished order raises OrderRejected.
        """
        now = self.clock()
        with self._lock:
            self._require_open()
            row = self._existing(order_id)
            if row.status.is_terminal:
                raise OrderRejected(f"order {order_id} is {row.status} and cannot be modified", broker=self.broker,
                                    code="not_modifiable")
            fields = {f: getattr(row, f) for f in ("symbol", "side", "qty", "order_type", "tif", "limit_price",
                                                   "stop_price")}
            fields.update({k: v for k, v in (("qty", qty), ("limit_price", limit_price), ("stop_price", stop_price))
                           if v is not None})
            request = NeutralOrder(**fields, client_order_id=row.client_order_id)  # validates every field
            _check_tick_size(request)
            if request.qty < row.filled_qty:
                raise InvalidOrder(f"qty {request.qty} is below the filled {row.filled_qty}", field="qty",
                                   broker=self.broker)
            symbol = row.symbol
        price = self.prices.get_market_price(symbol, now)  # price I/O outside the lock
        with self._lock:
            row = self._open.get(row.order_id)
            if row is None:  # finished meanwhile
                raise OrderRejected(f"order {order_id} finished before it could be modified", broker=self.broker,
                                    code="not_modifiable")
            if request.qty < row.filled_qty:  # fills may have landed while the price was fetched
                raise InvalidOrder(f"qty {request.qty} is below the filled {row.filled_qty}", field="qty",
                                   broker=self.broker)
            work = dataclasses.replace(row, qty=request.qty, limit_price=request.limit_price,
                                       stop_price=request.stop_price, raw_status="replaced", updated_at=now)
            if request.side is Side.BUY:  # the extra reservation must fit the buying power
                extra = (request.qty - row.filled_qty) * (request.limit_price or request.stop_price or price) \
                    - (row.qty - row.filled_qty) * (row.limit_price or row.stop_price or price)
                if extra > 0 and extra * (_ONE + self._slip) > self._cash - self._reserved_cash():
                    raise InsufficientFunds(f"modifying {order_id} needs {extra:.2f} more buying power",
                                            broker=self.broker, code="insufficient_buying_power")
            change = Change()
            if work.filled_qty == work.qty:  # reduced to what is already filled: done, no zero-share fill
                self._close(work, OrderStatus.FILLED, "filled", now)
            else:
                self._work(work, price, now, change)
            change.orders = [work]
            events = self._commit(change)
        self._notify(events)
        return self._snapshot(work)

    def cancel(self, order_id: str) -> Order:
        """Cancel a working order (by order id or client order id). A finished order is returned as is."""
        with self._lock:
            self._require_open()
            row = self._existing(order_id)
            if row.status.is_terminal:
                return self._snapshot(row)
            row = dataclasses.replace(row)
            self._close(row, OrderStatus.CANCELLED, "canceled", self.clock())
            events = self._commit(Change(orders=[row]))
        self._notify(events)
        return self._snapshot(row)

    def get_order(self, order_id: str) -> Order:
        """An order by order id or client order id."""
        with self._lock:
            return self._snapshot(self._existing(order_id))

    def orders(self, limit: int | None = None, since: datetime | None = None) -> list[Order]:
        """Order history, most recent first."""
        return [self._snapshot(r) for r in self.ledger.orders(limit=limit, since=since)]

    def open_orders(self) -> list[Order]:
        with self._lock:
            return [self._snapshot(r) for r in self._open.values()]

    def fills(self, since: datetime | None = None, order_id: str | None = None) -> list[FillEvent]:
        return self.ledger.fills(since=since, order_id=order_id, broker=self.broker)

    # -- prices -----------------------------------------------------------------------------

    def on_price(self, symbol: str, price: Decimal, ts: datetime | None = None) -> int:
        """Process one price update for ``symbol``; returns how many orders changed."""
        ts = ts or self.clock()
        symbol = symbol.strip().upper()
        events: list[Any] = []
        changed = 0
        with self._lock:
            if self._closed:
                return 0
            self._last_prices[symbol] = price
            for row in [r for r in self._open.values() if r.symbol == symbol]:
                work = dataclasses.replace(row)
                change = Change()
                if work.expires_at is not None and ts >= work.expires_at:
                    self._close(work, OrderStatus.EXPIRED, "expired", ts)
                else:
                    self._work(work, price, ts, change)
                if work != row:
                    change.orders = [work]
                    events += self._commit(change)
                    changed += 1
        self._notify(events)
        return changed

    def tick(self, now: datetime | None = None) -> int:
        """Poll the provider for every symbol with working orders and process the prices."""
        now = now or self.clock()
        with self._lock:
            if self._closed:
                return 0
            symbols = sorted({r.symbol for r in self._open.values()})
        changed = 0
        for symbol in symbols:
            try:
                price = self.prices.get_market_price(symbol, now)
            except Exception as exc:  # a data outage must not kill the loop; the next tick retries
                log.warning("no price for %s: %s", symbol, exc)
                continue
            changed += self.on_price(symbol, price, now)
        return changed

    # -- account ----------------------------------------------------------------------------

    def positions(self) -> list[Position]:
        """Positions marked to the provider's current price (unmarked if it has none)."""
        with self._lock:
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
            out.append(_position(symbol, qty, avg, mark))
        return out

    def position(self, symbol: str) -> Position | None:
        symbol = symbol.strip().upper()
        return next((p for p in self.positions() if p.symbol == symbol), None)

    def account(self) -> AccountInfo:
        with self._lock:  # cash and holdings from the same instant; marks are fetched after
            cash, held = self._cash, dict(self._positions)
            reserved = self._reserved_cash()
        positions = self._marked(held)
        value = sum((p.market_value if p.market_value is not None else p.qty * p.avg_price for p in positions), _ZERO)
        equity = cash + value
        today = self.clock().date().isoformat()
        with self._lock:
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
        """Close the ledger; waits for any operation in progress (they hold the lock)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.ledger.close()

    def _require_open(self) -> None:
        if self._closed:
            from workbench.core.errors import BrokerUnavailable

            raise BrokerUnavailable("the paper engine is closed", broker=self.broker, code="closed")

    # -- internals --------------------------------------------------------------------------

    def _find(self, key: str, by_client_id: bool = False) -> OrderRow | None:
        if not by_client_id:
            row = self._open.get(key) or self.ledger.order(key)
            if row is not None:
                return row
        order_id = self._client_ids.get(key)
        if order_id is None:
            return None
        return self._open.get(order_id) or self.ledger.order(order_id)

    def _existing(self, order_id: str) -> OrderRow:
        """The order with this order id or client order id; OrderNotFound otherwise."""
        row = self._find(order_id)
        if row is None:
            raise OrderNotFound(f"no order {order_id!r}", broker=self.broker, code="not_found")
        return row

    def _resubmitted(self, row: OrderRow, order: NeutralOrder) -> Order:
        diff = [f for f in _SAME_FIELDS if getattr(row, f) != getattr(order, f)]
        if diff:
            raise InvalidOrder(f"client_order_id {order.client_order_id!r} was already used for a different order "
                               f"(differs in {', '.join(diff)})", field="client_order_id", broker=self.broker)
        return self._snapshot(row)

    def _check_funds(self, order: NeutralOrder, price: Decimal) -> None:
        if order.side is Side.BUY:
            ref = order.limit_price or order.stop_price or price
            need = order.qty * ref * (_ONE + self._slip) + self.config.commission.for_fill(order.qty)
            available = self._cash - self._reserved_cash()
            if need > available:
                raise InsufficientFunds(f"buying {order.qty} {order.symbol} needs about {need:.2f}, "
                                        f"buying power is {available:.2f}", broker=self.broker,
                                        code="insufficient_buying_power")
        elif not self.config.allow_short:
            held = self._positions.get(order.symbol, (_ZERO, _ZERO))[0]
            selling = sum((r.qty - r.filled_qty for r in self._open.values()
                           if r.symbol == order.symbol and r.side is Side.SELL), _ZERO)
            if order.qty > held - selling:
                raise OrderRejected(f"selling {order.qty} {order.symbol} exceeds the position available "
                                    f"({held - selling}); short selling is off (paper.allow_short)",
                                    broker=self.broker, code="short_not_allowed")

    def _reserved_cash(self) -> Decimal:
        total = _ZERO
        for r in self._open.values():
            if r.side is Side.BUY:
                # A resting market buy reserves at the last price seen (no price I/O under the lock).
                ref = r.limit_price or r.stop_price or r.avg_fill_price or self._last_prices.get(r.symbol, _ZERO)
                total += (r.qty - r.filled_qty) * ref * (_ONE + self._slip)
        return total

    def _work(self, row: OrderRow, price: Decimal, now: datetime, change: Change) -> None:
        """Execute what ``row`` can at ``price``; mutates ``row`` and ``change`` only."""
        one_shot = row.tif in (TimeInForce.OPG, TimeInForce.CLS)
        if row.not_before is not None and now < row.not_before:
            return
        if not one_shot and self.config.enforce_market_hours and not self.calendar.is_open(now):
            return
        immediate = row.tif in (TimeInForce.IOC, TimeInForce.FOK)
        unfilled_end = (OrderStatus.EXPIRED, "expired") if one_shot else (OrderStatus.CANCELLED, "canceled")
        if row.order_type.needs_stop_price and not row.triggered:
            assert row.stop_price is not None
            if (price >= row.stop_price) if row.side is Side.BUY else (price <= row.stop_price):
                row.triggered, row.raw_status, row.updated_at = True, "triggered", now
            else:
                if immediate or one_shot:
                    self._close(row, *unfilled_end, now)
                return
        fill_price = (price * (_ONE + row.side.sign * self._slip)).quantize(_PRICE_Q)
        if row.order_type.needs_limit_price:
            limit = row.limit_price
            assert limit is not None
            if (price > limit) if row.side is Side.BUY else (price < limit):
                if immediate or one_shot:
                    self._close(row, *unfilled_end, now)
                return
            fill_price = min(fill_price, limit) if row.side is Side.BUY else max(fill_price, limit)
        remaining = row.qty - row.filled_qty
        qty = self._chunk(row.qty, remaining)
        if row.tif is TimeInForce.FOK and qty < remaining:
            self._close(row, OrderStatus.CANCELLED, "canceled", now)
            return
        self._fill(row, qty, fill_price, now, change)
        if (immediate or one_shot) and row.status.is_open:
            self._close(row, *unfilled_end, now)

    def _chunk(self, qty: Decimal, remaining: Decimal) -> Decimal:
        if not self._fraction:
            return remaining
        chunk = qty * self._fraction
        if qty == qty.to_integral_value():
            chunk = max(_ONE, chunk.quantize(_ONE, rounding=ROUND_DOWN))
        return min(chunk, remaining)

    def _fill(self, row: OrderRow, qty: Decimal, price: Decimal, now: datetime, change: Change) -> None:
        commission = self.config.commission.for_fill(qty)
        cash = self._cash if change.cash is None else change.cash
        held, avg = change.positions.get(row.symbol) or self._positions.get(row.symbol) or (_ZERO, _ZERO)
        if row.side is Side.BUY and qty * price + commission > cash:
            self._close(row, OrderStatus.REJECTED, "insufficient_funds", now)
            return
        if row.side is Side.SELL and not self.config.allow_short and qty > held:
            self._close(row, OrderStatus.REJECTED, "insufficient_position", now)
            return
        signed = qty * row.side.sign
        new_qty = held + signed
        if held == 0 or (held > 0) == (signed > 0):  # opening or adding
            new_avg = ((held * avg + signed * price) / new_qty).quantize(_AVG_Q)
        elif (held > 0) != (new_qty > 0) and new_qty != 0:  # crossed through zero
            new_avg = price
        else:  # reducing
            new_avg = avg
        change.positions[row.symbol] = None if new_qty == 0 else (new_qty, new_avg)
        change.cash = cash - signed * price - commission
        filled = row.filled_qty + qty
        row.avg_fill_price = ((row.filled_qty * (row.avg_fill_price or _ZERO) + qty * price) / filled).quantize(_AVG_Q)
        row.filled_qty = filled
        row.fills += 1
        new_status = OrderStatus.FILLED if filled >= row.qty else OrderStatus.PARTIALLY_FILLED
        row.status = row.status.advance(new_status)
        row.raw_status = "filled" if row.status is OrderStatus.FILLED else "partially_filled"
        row.updated_at = now
        change.fills.append(FillRow(f"{row.order_id}.{row.fills}", row.order_id, row.client_order_id, row.symbol,
                                    row.side, qty, price, commission, now))

    @staticmethod
    def _close(row: OrderRow, status: OrderStatus, raw: str, now: datetime) -> None:
        row.status, row.raw_status, row.updated_at = row.status.advance(status), raw, now

    def _commit(self, change: Change) -> list[Any]:
        """Write ``change`` in one transaction, then apply it to memory. Returns events to publish."""
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
        for row in change.orders:
            if row.client_order_id not in self._client_ids:
                self._client_ids[row.client_order_id] = row.order_id
                self._next_seq += 1
            if row.status.is_open:
                self._open[row.order_id] = row
            else:
                self._open.pop(row.order_id, None)
        # Events are built only for listeners; the hot path without listeners builds none.
        events: list[Any] = [f.to_event(self.broker) for f in change.fills] if self._fill_listeners else []
        if self._order_listeners:
            events += [self._snapshot(row) for row in change.orders]
        return events

    def _notify(self, events: list[Any]) -> None:
        for event in events:
            listeners = self._fill_listeners if isinstance(event, FillEvent) else self._order_listeners
            for callback in list(listeners):
                try:
                    callback(event)
                except Exception:  # a broken listener must not break the engine
                    log.exception("listener %r failed", callback)

    def _snapshot(self, row: OrderRow) -> Order:
        return Order.model_construct(
            broker=self.broker, order_id=row.order_id, client_order_id=row.client_order_id, symbol=row.symbol,
            side=row.side, qty=row.qty, order_type=row.order_type, tif=row.tif, limit_price=row.limit_price,
            stop_price=row.stop_price, status=row.status, raw_status=row.raw_status, filled_qty=row.filled_qty,
            avg_fill_price=row.avg_fill_price, created_at=row.created_at, updated_at=row.updated_at, raw=None)


_PENNY = Decimal("0.01")
_SUB_PENNY = Decimal("0.0001")


def _check_tick_size(order: NeutralOrder) -> None:
    """US equities quote in pennies at or above $1 and in 0.0001 below (SEC Rule 612)."""
    for field in ("limit_price", "stop_price"):
        price = getattr(order, field)
        if price is None:
            continue
        tick = _PENNY if price >= 1 else _SUB_PENNY
        if price % tick:
            raise InvalidOrder(f"{field} {price} is not a multiple of the tick size {tick}", field=field,
                               broker=PaperEngine.broker)


def _position(symbol: str, qty: Decimal, avg: Decimal, mark: Decimal | None) -> Position:
    if mark is None:
        return Position(symbol=symbol, qty=qty, avg_price=avg)
    value = qty * mark
    pnl = (mark - avg) * qty
    cost = abs(qty * avg)
    pct = (pnl / cost).quantize(_AVG_Q) if cost else _ZERO
    return Position(symbol=symbol, qty=qty, avg_price=avg, market_price=mark, market_value=value,
                    unrealized_pnl=pnl, unrealized_pnl_pct=pct)
