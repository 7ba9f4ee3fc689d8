"""ib_async objects -> neutral models (orders, fills, positions, bars). Pure: no SDK import, no adapter state.

Every model's ``raw`` is a :func:`~workbench.adapters.ib.parse.snapshot` (a detached dict), never the live
ib_async object, which the SDK keeps mutating.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.enums import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.frames import empty_history, history_frame
from workbench.core.models import AccountInfo, FillEvent, Order, Position

from .parse import ORDER_STANDS, ORDER_TYPES, TIFS, order_status, snapshot, to_decimal

__all__ = ["bars_frame", "order_key", "perm_id", "progress", "to_account", "to_fill", "to_order", "to_position",
           "utc"]

_IB_TYPES = {v: k for k, v in ORDER_TYPES.items()}
_IB_TIFS = {v: k for k, v in TIFS.items()}


def perm_id(trade: Any) -> str:
    """The gateway's permId: the order id that stays the same across restarts, sessions and client ids
    (IB's ``completedOrder`` message carries no orderId at all: ib_async reads 0)."""
    perm = trade.order.permId or getattr(trade.orderStatus, "permId", 0)
    return str(perm) if perm else ""


def order_key(trade: Any) -> str | None:
    """What identifies an order across sessions: its orderRef (our client_order_id), else its permId."""
    return trade.order.orderRef or (f"perm:{perm_id(trade)}" if perm_id(trade) else None)


def progress(trade: Any) -> tuple[OrderStatus, Decimal, Decimal]:
    """(canonical status, quantity, filled quantity) of a Trade; the filled quantity counts executions too
    (a Trade rebuilt from completedOrder starts with ``filled=0``)."""
    qty = to_decimal(trade.order.totalQuantity)
    filled = max(to_decimal(trade.orderStatus.filled),
                 sum((to_decimal(f.execution.shares) for f in trade.fills), Decimal(0)))
    raw = trade.orderStatus.status
    log = trade.log
    if raw == "Cancelled" and log and log[-1].errorCode in ORDER_STANDS:  # ib_async's guess, not the gateway's
        raw = next((e.status for e in reversed(log) if e.status not in ("Cancelled", "PendingCancel")), "Submitted")
    status = order_status(raw, filled, qty)
    if status is OrderStatus.CANCELLED and any(e.errorCode == 201 for e in trade.log):
        status = OrderStatus.REJECTED  # the gateway rejected a working order; ib_async calls it Cancelled
    return status, qty, filled


def to_order(trade: Any, created_at: datetime, updated_at: datetime) -> Order:
    """Sample Trade: ``Trade(contract=Stock(conId=265598, symbol='AAPL', ...), order=Order(orderId=7,
    permId=1000004, action='BUY', totalQuantity=10.0, orderType='LMT', lmtPrice=150.0, tif='DAY',
    orderRef='wb-1f...'), orderStatus=OrderStatus(status='Submitted', filled=0.0, ...), fills=[], log=[...])``.
    A TRAIL order: ``orderType='TRAIL', auxPrice=1.5`` (the trailing amount) or ``trailingPercent=2.0``. Its
    current stop is left unknown (``stop_price`` None): ib_async keeps an order's ``trailStopPrice`` as placed
    and never applies the gateway's updates to it."""
    o, st = trade.order, trade.orderStatus
    status, qty, filled = progress(trade)
    fills = trade.fills
    avg = to_decimal(st.avgFillPrice) or (
        sum((to_decimal(f.execution.shares) * to_decimal(f.execution.price) for f in fills), Decimal(0)) / filled
        if filled else Decimal(0))
    order_id = perm_id(trade) or str(o.orderId)
    kind, tif, raw_status = _IB_TYPES.get(o.orderType), _IB_TIFS.get(o.tif), st.status
    if kind is None or tif is None:  # placed elsewhere (TWS, another tool): REL, MIDPRICE, GTD...
        unknown = [x for x, known in ((o.orderType, kind), (o.tif, tif)) if known is None]
        raw_status = f"{st.status} ({', '.join(unknown)})"  # the neutral fields show the closest family
        if kind is None:
            kind = OrderType.LIMIT if to_decimal(o.lmtPrice) else OrderType.MARKET
        tif = tif or TimeInForce.DAY
    # model_construct: every field below is already typed and normalised (this runs per order event)
    return Order.model_construct(
        broker="ib", order_id=order_id, client_order_id=o.orderRef or order_id, symbol=trade.contract.symbol,
        side=Side(o.action), qty=qty, order_type=kind, tif=tif,
        limit_price=to_decimal(o.lmtPrice) if kind.needs_limit_price else None,
        stop_price=to_decimal(o.auxPrice) if kind.needs_stop_price else None,  # a TRAIL's: unknown, see below
        trail_price=to_decimal(o.auxPrice) if kind.needs_trail and not to_decimal(o.trailingPercent) else None,
        trail_percent=(to_decimal(o.trailingPercent) or None) if kind.needs_trail else None,
        status=status, raw_status=raw_status, filled_qty=filled,
        avg_fill_price=avg.quantize(Decimal("0.000001")) if filled else None,
        created_at=created_at, updated_at=updated_at, raw=snapshot(trade))


def to_fill(fill: Any) -> FillEvent:
    """Sample Fill: ``Fill(contract=Stock(symbol='AAPL', ...), execution=Execution(execId='0000e0d5.000f4241.01.01',
    time=datetime(..., tzinfo=UTC), side='BOT', shares=10.0, price=187.2, permId=1000001, orderId=7,
    orderRef='wb-1f...'), commissionReport=CommissionReport(commission=1.0, ...), time=datetime(...))``."""
    ex = fill.execution
    report = fill.commissionReport
    commission = to_decimal(report.commission) if report is not None else Decimal(0)
    order_id = str(ex.permId or ex.orderId)
    return FillEvent(broker="ib", local_id=ex.orderRef or order_id, broker_id=order_id, exec_id=ex.execId,
                     symbol=fill.contract.symbol, side=Side(ex.side), qty=to_decimal(ex.shares),
                     price=to_decimal(ex.price), commission=commission, ts=utc(fill.time), raw=snapshot(fill))


def to_account(account: str, values: Iterable[Any]) -> AccountInfo:
    """Sample AccountValue rows (updateAccountValue): ``AccountValue(account='DU1234567', tag='NetLiquidation',
    value='1000512.40', currency='USD', modelCode='')``, ``(tag='TotalCashValue', value='998555.40',
    currency='USD')``, ``(tag='CashBalance', value='998555.40', currency='BASE')``, ``(tag='AccountType',
    value='INDIVIDUAL', currency='')``. Account-wide values come in the account's base currency (EUR for a
    EUR-based account: what its NetLiquidation row says), ledger values per currency and as BASE; a tag is read
    in the base currency first, then BASE, then without currency (never another currency's ledger)."""
    rows = [v for v in values if not getattr(v, "modelCode", "")]
    base = next((v.currency for v in rows if v.tag == "NetLiquidation" and v.currency not in ("", "BASE")), "USD")
    rank = {base: 0, "BASE": 1, "": 2}
    chosen: dict[str, Any] = {}
    for v in rows:
        if v.currency in rank and (v.tag not in chosen or rank[v.currency] < rank[chosen[v.tag].currency]):
            chosen[v.tag] = v
    raw = {tag: v.value for tag, v in chosen.items()}

    def num(*tags: str) -> Decimal:
        return next((to_decimal(raw[t]) for t in tags if t in raw), Decimal(0))

    equity = num("NetLiquidation", "EquityWithLoanValue")
    return AccountInfo(id=account, currency=base, cash=num("TotalCashValue"), buying_power=num("BuyingPower"),
                       equity=equity, portfolio_value=equity,
                       last_equity=num("PreviousDayEquityWithLoanValue", "NetLiquidation"), raw=raw)


def to_position(item: Any) -> Position | None:
    """Sample PortfolioItem: ``PortfolioItem(contract=Stock(symbol='AAPL', ...), position=10.0, marketPrice=187.2,
    marketValue=1872.0, averageCost=186.9, unrealizedPNL=3.0, realizedPNL=0.0, account='DU1234567')``;
    None when flat."""
    qty = to_decimal(item.position)
    if qty == 0:
        return None
    avg, mark = to_decimal(item.averageCost), to_decimal(item.marketPrice)
    cost = abs(qty * avg)
    pnl = to_decimal(item.unrealizedPNL)
    return Position(symbol=item.contract.symbol, qty=qty, avg_price=avg, market_price=mark,
                    market_value=to_decimal(item.marketValue), unrealized_pnl=pnl,
                    unrealized_pnl_pct=(pnl / cost).quantize(Decimal("0.000001")) if cost else Decimal(0),
                    raw=snapshot(item))


def utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.now(UTC)


def bars_frame(rows: list[Any], **attrs: Any) -> pd.DataFrame:
    """ib_async BarData list -> history frame, column-wise (no per-bar Timestamp objects).

    Sample bar (formatDate=2): BarData(date=datetime(2026, 11, 20, 14, 30, tzinfo=UTC), open=187.1,
    high=187.4, low=186.9, close=187.2, volume=12000.0, average=187.15, barCount=210). Daily bars carry a
    ``date`` instead, labelled 00:00 UTC.
    """
    if not rows:
        return empty_history(**attrs)
    if isinstance(rows[0].date, datetime):  # intraday: aware datetimes, converted in one go
        stamps: Any = pd.to_datetime([b.date for b in rows], utc=True)
    else:
        stamps = pd.DatetimeIndex([b.date for b in rows]).tz_localize("UTC")
    cols = {k: np.fromiter((getattr(b, k) for b in rows), dtype="float64", count=len(rows))
            for k in ("open", "high", "low", "close", "volume")}
    return history_frame(stamps, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], **attrs)
