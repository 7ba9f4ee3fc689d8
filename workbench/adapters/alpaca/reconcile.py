"""The trade_updates stream's messages and the reconciliation after a reconnect, of
:class:`~workbench.adapters.alpaca.adapter.AlpacaAdapter` (a mixin).

Each fill is delivered once whichever way it arrived (keyed by order id + cumulative quantity), and an
order snapshot only when it changed and is not older than the one last published. After every reconnect
the orders changed meanwhile and the FILL activities are fetched through REST and delivered in time order;
stream messages that arrive meanwhile wait in a backlog and follow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.core.errors import OrderNotFound, WorkbenchError
from workbench.core.log import get_logger
from workbench.core.models import FillEvent, Order

from . import parse as p
from .fanout import LoopFanout

__all__ = ["TradeUpdates", "RECONCILE_MARGIN"]

log = get_logger(__name__)
T = TypeVar("T")

#: How far back a reconciliation looks before the last event it saw (clock skew, same-millisecond fills).
RECONCILE_MARGIN = timedelta(minutes=2)


class TradeUpdates:
    """Stream messages in, each fill and order change out once. The adapter provides the state used here."""

    trading: Any
    _sdk: Any
    _fills: LoopFanout
    _orders: LoopFanout
    _seen_fills: dict[str, set[str]]
    _last_order: dict[str, Order]
    _open_ids: set[str]
    _coids: dict[str, str]
    _horizon: datetime | None
    _backlog: list[dict[str, Any]] | None
    _reconcile_again: bool

    if TYPE_CHECKING:
        async def _rest(self, fn: Callable[..., T], *args: Any, about: str = "") -> T: ...
        async def _fill_activities(self, after: datetime | None) -> list[FillEvent]: ...
        def _spawn(self, coro: Any) -> None: ...

    async def _on_message(self, message: dict[str, Any]) -> None:
        if self._backlog is not None:  # a reconciliation is running: the older state it brings goes first
            self._backlog.append(message)
        else:
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            order, fill = p.parse_trade_update(message["data"])
        except (WorkbenchError, KeyError, TypeError) as exc:
            log.warning("unreadable trade update ignored: %s", exc)
            return
        self._coids[order.order_id] = order.client_order_id
        self._horizon = max(self._horizon or order.updated_at, fill.ts if fill is not None else order.updated_at)
        self._deliver(order, [fill] if fill is not None else [])

    def _deliver(self, order: Order, fills: list[FillEvent]) -> None:
        """Publish each fill not delivered before, then the order if it changed."""
        for fill in fills:
            self._deliver_fill(fill)
        if order.is_open:
            self._open_ids.add(order.order_id)
        else:
            self._open_ids.discard(order.order_id)
        last = self._last_order.get(order.order_id)
        if last is not None and (order.filled_qty < last.filled_qty or order.updated_at < last.updated_at
                                 or last.status.is_terminal and order.status is not last.status):
            return  # an older snapshot (a REST answer overtaken by the stream)
        state = (order.status, order.raw_status, order.filled_qty, order.qty, order.limit_price, order.stop_price)
        if last is None or state != (last.status, last.raw_status, last.filled_qty, last.qty, last.limit_price,
                                     last.stop_price):
            self._last_order[order.order_id] = order
            self._orders.publish(order)

    def _deliver_fill(self, fill: FillEvent) -> None:
        seen = self._seen_fills.setdefault(fill.broker_id, set())
        if fill.exec_id not in seen:
            seen.add(fill.exec_id)
            self._fills.publish(fill)

    def _on_stream_connected(self, n: int) -> None:
        if n == 1:
            return
        log.info("Alpaca trade stream reconnected (%d); reconciling orders and fills through REST", n - 1)
        if self._backlog is None:
            self._backlog = []
            self._spawn(self._reconcile())
        else:  # reconnected again while reconciling: one more pass once this one ends
            self._reconcile_again = True

    async def _reconcile(self) -> None:
        """After a reconnect: what changed while the stream was down, then the events it sent meanwhile."""
        try:
            self._reconcile_again = True
            while self._reconcile_again:
                self._reconcile_again = False
                try:
                    await self._catch_up()
                except WorkbenchError as exc:  # the next reconnect tries again
                    log.warning("Alpaca reconciliation after a reconnect failed: %s", exc)
        finally:
            backlog, self._backlog = self._backlog or [], None
            for message in backlog:  # deduplicated against what REST already delivered
                self._handle(message)

    async def _catch_up(self) -> None:
        """Fills and orders that changed since shortly before the last event seen, oldest first.

        Alpaca filters orders by submission time only, so an older order that finished meanwhile is found
        as one no longer in the open list (and fetched by id), or through its fills.
        """
        after = (self._horizon or datetime.now(UTC)) - RECONCILE_MARGIN
        fills = await self._fill_activities(after)
        recent = self._sdk.requests.GetOrdersRequest(status="all", limit=500, after=after, direction="asc")
        working = self._sdk.requests.GetOrdersRequest(status="open", limit=500)
        rows = [*await self._rest(self.trading.get_orders, recent),
                *await self._rest(self.trading.get_orders, working)]
        orders = {o.order_id: o for o in map(p.parse_order, rows)}
        for order_id in (self._open_ids | {f.broker_id for f in fills}) - set(orders):
            try:
                orders[order_id] = p.parse_order(await self._rest(self.trading.get_order_by_id, order_id))
            except OrderNotFound:
                self._open_ids.discard(order_id)
        # One timeline across orders: every fill at its time, each order's state after its own last fill.
        last_fill: dict[str, datetime] = {}
        for fill in fills:
            last_fill[fill.broker_id] = max(last_fill.get(fill.broker_id, fill.ts), fill.ts)
            self._horizon = max(self._horizon or fill.ts, fill.ts)
        timeline: list[tuple[tuple[datetime, int, str], FillEvent | Order]] = [
            ((f.ts, 0, f.exec_id), f) for f in fills]
        timeline += [((max(o.updated_at, last_fill.get(o.order_id, o.updated_at)), 1, o.order_id), o)
                     for o in orders.values()]
        for _, item in sorted(timeline, key=lambda entry: entry[0]):
            if isinstance(item, FillEvent):
                self._deliver_fill(item)
            else:
                self._coids[item.order_id] = item.client_order_id
                self._deliver(item, [])
