"""How orders execute: the matching rules of :class:`~workbench.paper.engine.PaperEngine` (a mixin).

Everything here runs under the engine's lock and only computes: it mutates the working ``OrderRow``
and the pending :class:`~workbench.paper.ledger.Change`, never the ledger or the engine's memory.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.errors import InsufficientFunds, OrderRejected

from . import rules
from .ledger import Change, FillRow, OrderRow

__all__ = ["Matching"]

_ONE = Decimal(1)
_ZERO = Decimal(0)
_ONE_SHOT = (TimeInForce.OPG, TimeInForce.CLS)
_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)
# Module-level names for the members the hot path compares with (an Enum class attribute costs a lookup).
_BUY, _SELL = Side.BUY, Side.SELL
_WITH_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_TRAILING, _FOK = OrderType.TRAILING_STOP, TimeInForce.FOK
_FILLED, _PARTIALLY_FILLED = OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED


class Matching:
    """Buying power, reservations and execution. The engine provides the state used here."""

    broker: str
    config: Any
    calendar: Any
    _cash: Decimal
    _positions: dict[str, tuple[Decimal, Decimal]]
    _open: dict[str, OrderRow]
    _last_prices: dict[str, Decimal]
    _slip: Decimal
    _fraction: Decimal
    _commission: Any

    def _remaining(self, row: OrderRow, price: Decimal) -> Decimal:
        """Shares still to fill (a notional order not yet sized: as it would be sized filling at ``price``)."""
        if row.qty is None:
            assert row.notional is not None
            return rules.notional_qty(row.notional, rules.fill_price(row.side, price, self._slip)) if price else _ZERO
        return row.qty - row.filled_qty

    def _reservation(self, row: OrderRow, price: Decimal) -> Decimal:
        """Cash an open buy holds back: what the rest may cost, plus the commission still to come."""
        ref = row.limit_price or row.stop_price or price
        remaining = self._remaining(row, ref)
        cost = row.notional if row.qty is None else remaining * ref * (_ONE + self._slip)
        assert cost is not None
        return cost + self._commission.for_order(row.filled_qty + remaining) - row.commission

    def _reserved_cash(self, exclude: str | None = None) -> Decimal:
        total = _ZERO
        for r in self._open.values():
            if r.side is _BUY and r.order_id != exclude:
                # A resting market buy reserves at the last price seen (no price I/O under the lock).
                total += self._reservation(r, r.avg_fill_price or self._last_prices.get(r.symbol, _ZERO))
        return total

    def _check_buying_power(self, row: OrderRow, price: Decimal, exclude: str | None = None) -> None:
        """InsufficientFunds / OrderRejected if ``row`` (new, or ``exclude`` modified) does not fit."""
        if row.side is _BUY:
            need = self._reservation(row, price)
            available = self._cash - self._reserved_cash(exclude)
            if need > available:
                raise InsufficientFunds(f"buying {self._describe(row)} {row.symbol} needs about {need:.2f}, "
                                        f"buying power is {available:.2f}", broker=self.broker,
                                        code="insufficient_buying_power")
        elif not self.config.allow_short:
            held = self._positions.get(row.symbol, (_ZERO, _ZERO))[0]
            selling = sum((self._remaining(r, self._last_prices.get(r.symbol, price)) for r in self._open.values()
                           if r.symbol == row.symbol and r.side is _SELL and r.order_id != exclude), _ZERO)
            wanted = self._remaining(row, price)
            if wanted > held - selling:
                raise OrderRejected(f"selling {wanted} {row.symbol} exceeds the position available "
                                    f"({held - selling}); short selling is off (paper.allow_short)",
                                    broker=self.broker, code="short_not_allowed")

    @staticmethod
    def _describe(row: OrderRow) -> str:
        return f"${row.notional} of" if row.qty is None else f"{row.qty - row.filled_qty}"


    def _work(self, row: OrderRow, price: Decimal, now: datetime, change: Change) -> None:
        """Execute what ``row`` can at ``price``; mutates ``row`` and ``change`` only."""
        one_shot = row.tif in _ONE_SHOT
        if row.not_before is not None and now < row.not_before:
            return
        if not one_shot and self.config.enforce_market_hours and not self.calendar.is_open(now):
            return
        immediate = row.tif in _IMMEDIATE
        unfilled_end = (OrderStatus.EXPIRED, "expired") if one_shot else (OrderStatus.CANCELLED, "canceled")
        if row.order_type is _TRAILING and not row.triggered:
            assert row.best_price is not None
            if rules.improves(row.side, price, row.best_price):  # a new high (sell) / low (buy): the stop follows
                row.best_price = price
                row.stop_price = rules.trail_stop(row.side, price, row.trail_price, row.trail_percent)
                row.updated_at = now
        if row.stop_price is not None and not row.triggered:
            if rules.crossed(row.side, price, row.stop_price):
                row.triggered, row.raw_status, row.updated_at = True, "triggered", now
            else:
                if immediate or one_shot:
                    self._close(row, *unfilled_end, now)
                return
        buy = row.side is _BUY
        limit = None
        if row.order_type in _WITH_LIMIT:
            limit = row.limit_price
            assert limit is not None
            if (price > limit) if buy else (price < limit):
                if immediate or one_shot:
                    self._close(row, *unfilled_end, now)
                return
        fill_price = rules.fill_price(row.side, price, self._slip, limit)
        if row.qty is None:  # a notional order: sized at its fill price
            assert row.notional is not None
            row.qty = rules.notional_qty(row.notional, fill_price)
            if not row.qty:
                row.qty = None
                self._close(row, OrderStatus.REJECTED, "notional_too_small", now)
                return
        remaining = row.qty - row.filled_qty
        qty = self._chunk(row.qty, remaining)
        if row.tif is _FOK and qty < remaining:
            self._close(row, OrderStatus.CANCELLED, "canceled", now)
            return
        self._fill(row, qty, fill_price, now, change)
        if (immediate or one_shot) and row.status.is_open:
            self._close(row, *unfilled_end, now)

    def _chunk(self, qty: Decimal, remaining: Decimal) -> Decimal:
        """What one fill may take: ``partial_fill_fraction`` of the order, in whole shares for a whole-share
        order, else in the smallest fractional unit (1e-9 share) or more, never more than ``remaining``."""
        if not self._fraction:
            return remaining
        unit = _ONE if qty == qty.to_integral_value() else rules.QTY_Q
        chunk = max(unit, (qty * self._fraction).quantize(unit, rounding=ROUND_DOWN))
        return min(chunk, remaining)

    def _fill(self, row: OrderRow, qty: Decimal, price: Decimal, now: datetime, change: Change) -> None:
        assert row.qty is not None
        commission = self._commission.for_order(row.filled_qty + qty) - row.commission
        cash = self._cash if change.cash is None else change.cash
        held, avg = change.positions.get(row.symbol) or self._positions.get(row.symbol) or (_ZERO, _ZERO)
        buy = row.side is _BUY
        if buy and qty * price + commission > cash:
            self._close(row, OrderStatus.REJECTED, "insufficient_funds", now)
            return
        if not buy and not self.config.allow_short and qty > held:
            self._close(row, OrderStatus.REJECTED, "insufficient_position", now)
            return
        signed = qty if buy else -qty
        new_qty = held + signed
        if held == 0 or (held > 0) == (signed > 0):  # opening or adding
            new_avg = ((held * avg + signed * price) / new_qty).quantize(rules.AVG_Q)
        elif (held > 0) != (new_qty > 0) and new_qty != 0:  # crossed through zero
            new_avg = price
        else:  # reducing
            new_avg = avg
        change.positions[row.symbol] = None if new_qty == 0 else (new_qty, new_avg)
        change.cash = cash - signed * price - commission
        filled = row.filled_qty + qty
        row.avg_fill_price = ((row.filled_qty * (row.avg_fill_price or _ZERO) + qty * price) / filled
                              ).quantize(rules.AVG_Q)
        row.filled_qty = filled
        row.commission += commission
        row.fills += 1
        # (A working order may always become partially filled or filled: no transition check needed.)
        if filled >= row.qty:
            row.status, row.raw_status = _FILLED, "filled"
        else:
            row.status, row.raw_status = _PARTIALLY_FILLED, "partially_filled"
        row.updated_at = now
        change.fills.append(FillRow(f"{row.order_id}.{row.fills}", row.order_id, row.client_order_id, row.symbol,
                                    row.side, qty, price, commission, now))

    @staticmethod
    def _close(row: OrderRow, status: OrderStatus, raw: str, now: datetime) -> None:
        row.status, row.raw_status, row.updated_at = row.status.advance(status), raw, now
