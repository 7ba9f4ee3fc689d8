"""The paper-engine side of the Alpaca emulator: Alpaca order ids, JSON bodies, FILL activities and the
trade_updates events made from engine events.

Engine listeners may fire on any thread: they only queue the event and wake the server's loop;
:meth:`Book.drain` (loop thread only) turns queued events into trade_updates messages. Alpaca order ids
are UUIDs derived from the engine's order ids in a namespace drawn once per ledger, so a restarted emulator
over the same ledger answers with the same ids and a fresh ledger never reuses another's (as Alpaca never
reuses an id); the namespace and the replacement links (Alpaca's replace makes a new order) are kept in a
small JSON file beside the ledger.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from workbench.adapters.alpaca.parse import ORDER_TYPES, TIFS
from workbench.core.enums import OrderStatus
from workbench.core.errors import ConfigError
from workbench.core.log import get_logger
from workbench.core.models import FillEvent, Order

__all__ = ["Book", "Entry", "asset_id", "iso", "num"]

log = get_logger(__name__)

_NS = uuid.UUID("5f0c6f2e-8f55-4d1b-9a55-6d2f3c9a7a10")  # assets; and the orders of ledgers from before
_ZERO = Decimal(0)
_STATUS = {OrderStatus.PENDING_NEW: "pending_new", OrderStatus.NEW: "new",
           OrderStatus.PARTIALLY_FILLED: "partially_filled", OrderStatus.FILLED: "filled",
           OrderStatus.PENDING_CANCEL: "pending_cancel", OrderStatus.CANCELLED: "canceled",
           OrderStatus.EXPIRED: "expired", OrderStatus.REJECTED: "rejected"}
_TYPE = {k: v[0] for k, v in ORDER_TYPES.items()}


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(_NS, "asset:" + symbol.upper()))


def iso(ts: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds and ``Z``, as Alpaca writes it."""
    return None if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def num(value: Decimal | None) -> str | None:
    """Alpaca sends numbers as strings."""
    return None if value is None else f"{value.normalize():f}"


@dataclass
class Entry:
    """One Alpaca order over one engine order."""

    engine_id: str
    id: str
    order: Order  # the latest engine snapshot
    cum: Decimal = _ZERO  # filled quantity reported on the stream so far
    value: Decimal = _ZERO  # sum of qty * price of those fills
    notional: Decimal | None = None
    replaces: str | None = None  # engine id of the order this one replaced
    replaced_by: str | None = None
    replacing: bool = False  # a replace is cancelling this order now
    announced: bool = False  # the "new" event was sent


class Book:
    """Alpaca's view of the engine's orders."""

    def __init__(self, engine: Any, publish: Callable[[dict[str, Any]], None], wake: Callable[[], None]) -> None:
        self.engine = engine
        self._publish = publish
        self._wake = wake
        self.entries: dict[str, Entry] = {}  # engine order id -> entry
        self.by_id: dict[str, Entry] = {}  # Alpaca id -> entry
        self.by_coid: dict[str, Entry] = {}  # client order id -> entry
        self._events: deque[Any] = deque()
        self._lock = threading.Lock()
        db = str(engine.config.db_path)
        self._links_file = None if db == ":memory:" else Path(str(Path(db).expanduser()) + ".alpaca-links.json")
        self._positions: dict[str, Decimal] = {p.symbol: p.qty for p in engine.positions()}
        self._unsubscribe = [engine.add_fill_listener(self._queue), engine.add_order_listener(self._queue)]
        try:
            self._restore()
        except BaseException:
            self.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------------

    def _restore(self) -> None:
        """The ledger's id namespace, and its earlier orders (announced already: their events are history).

        ``<ledger>.alpaca-links.json``: ``{"namespace": "<uuid>", "links": {"P000000001": "P000000002"}}``. A
        ledger without orders has issued no id: it draws a new namespace (a file left by a deleted ledger of
        that name is replaced). A ledger file with orders and no such file is one from before namespaces
        (``<ledger stem>.alpaca-links.json`` held its links): it keeps the ids it gave.
        """
        orders = self.engine.orders()
        self._ns, links = uuid.uuid4(), {}
        if orders and self._links_file is not None:
            self._ns, links = self._saved_ids()
        self._save(links)
        for order in orders:
            entry = self.add(order)
            entry.announced, entry.cum = True, order.filled_qty
            entry.value = order.filled_qty * (order.avg_fill_price or _ZERO)
        for old, new in links.items():
            if old in self.entries and new in self.entries:
                self.entries[old].replaced_by, self.entries[new].replaces = new, old

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def add(self, order: Order, notional: Decimal | None = None) -> Entry:
        entry = self.entries.get(order.order_id)
        if entry is None:
            entry = Entry(engine_id=order.order_id, id=self.alpaca_id(order.order_id), order=order,
                          notional=notional)
            self.entries[order.order_id] = entry
            self.by_id[entry.id] = entry
            self.by_coid[order.client_order_id] = entry
        elif order.updated_at >= entry.order.updated_at:
            entry.order = order
        return entry

    def link(self, old: Entry, new: Entry) -> None:
        old.replaced_by, new.replaces = new.engine_id, old.engine_id
        self._save({e.engine_id: e.replaced_by for e in self.entries.values() if e.replaced_by})

    def _saved_ids(self) -> tuple[uuid.UUID, dict[str, str]]:
        assert self._links_file is not None
        legacy = Path(self._links_file.name.removesuffix(".alpaca-links.json")).stem + ".alpaca-links.json"
        for path, old in ((self._links_file, False), (self._links_file.with_name(legacy), True)):
            if not path.exists():
                continue
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if old:
                    return _NS, {str(k): str(v) for k, v in saved.items()}
                return uuid.UUID(saved["namespace"]), {str(k): str(v) for k, v in saved["links"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"the emulator's order-id file {path} is unreadable ({type(exc).__name__}: "
                                  f"{exc}); restore it, or delete it to give this ledger's orders other ids",
                                  key="db") from None
        return _NS, {}

    def _save(self, links: dict[str, str]) -> None:
        if self._links_file is not None:
            tmp = self._links_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"namespace": str(self._ns), "links": links}), encoding="utf-8")
            os.replace(tmp, self._links_file)

    def alpaca_id(self, engine_order_id: str) -> str:
        """The Alpaca order id (a UUID) of an engine order."""
        return str(uuid.uuid5(self._ns, "order:" + engine_order_id))

    def execution_id(self, exec_id: str) -> str:
        return str(uuid.uuid5(self._ns, "exec:" + exec_id))

    def find(self, key: str) -> Entry | None:
        """By Alpaca id (or, for convenience, the engine's id)."""
        return self.by_id.get(key) or self.entries.get(key)

    def by_client_id(self, client_order_id: str) -> Entry | None:
        return self.by_coid.get(client_order_id)

    # -- JSON ---------------------------------------------------------------------------------

    def order_json(self, entry: Entry, cum: Decimal | None = None, avg: Decimal | None = None,
                   status: str | None = None) -> dict[str, Any]:
        """The Alpaca order object (``cum``/``avg``/``status`` override the engine's, for stream events)."""
        o = entry.order
        filled = o.filled_qty if cum is None else cum
        avg_price = (o.avg_fill_price if cum is None else avg) if filled else None
        if status is None:
            status = "replaced" if entry.replaced_by and o.status is OrderStatus.CANCELLED else _STATUS[o.status]
            if cum is not None and filled:
                status = "filled" if o.qty is not None and filled >= o.qty else "partially_filled"
        ts = iso(o.updated_at)
        return {
            "id": entry.id, "client_order_id": o.client_order_id, "created_at": iso(o.created_at), "updated_at": ts,
            "submitted_at": iso(o.created_at), "filled_at": ts if status == "filled" else None,
            "expired_at": ts if status == "expired" else None, "expires_at": None,
            "canceled_at": ts if status == "canceled" else None, "failed_at": ts if status == "rejected" else None,
            "replaced_at": ts if status == "replaced" else None,
            "replaced_by": self.entries[entry.replaced_by].id if entry.replaced_by else None,
            "replaces": self.entries[entry.replaces].id if entry.replaces else None,
            "asset_id": asset_id(o.symbol), "symbol": o.symbol, "asset_class": "us_equity",
            "notional": num(o.notional if o.notional is not None else entry.notional), "qty": num(o.qty),
            "filled_qty": num(filled) or "0",
            "filled_avg_price": num(avg_price), "order_class": "", "order_type": _TYPE[o.order_type],
            "type": _TYPE[o.order_type], "side": o.side.value.lower(), "position_intent": None,
            "time_in_force": TIFS[o.tif], "limit_price": num(o.limit_price), "stop_price": num(o.stop_price),
            "status": status, "extended_hours": False, "legs": None, "trail_percent": num(o.trail_percent),
            "trail_price": num(o.trail_price), "hwm": None,
        }

    def fill_activities(self) -> list[dict[str, Any]]:
        """Every fill as a FILL account activity, oldest first."""
        out, cum = [], {}
        for fill in self.engine.fills():
            entry = self.entries.get(fill.broker_id)
            total = cum[fill.broker_id] = cum.get(fill.broker_id, _ZERO) + fill.qty
            qty = entry.order.qty if entry is not None else None
            leaves = (qty - total) if qty is not None else _ZERO
            done = leaves <= 0
            stamp = f"{fill.ts.astimezone(UTC):%Y%m%d%H%M%S%f}"[:17]
            out.append({"id": stamp + "::" + self.execution_id(fill.exec_id),
                        "activity_type": "FILL", "transaction_time": iso(fill.ts),
                        "type": "fill" if done else "partial_fill", "price": num(fill.price), "qty": num(fill.qty),
                        "side": fill.side.value.lower(), "symbol": fill.symbol, "leaves_qty": num(max(leaves, _ZERO)),
                        "order_id": entry.id if entry is not None else self.alpaca_id(fill.broker_id),
                        "cum_qty": num(total), "order_status": "filled" if done else "partially_filled"})
        return out

    # -- engine events -> trade_updates --------------------------------------------------------

    def _queue(self, event: Any) -> None:
        with self._lock:
            self._events.append(event)
        self._wake()

    def drain(self) -> None:
        """Turn queued engine events into trade_updates messages (loop thread only)."""
        while True:
            with self._lock:
                if not self._events:
                    return
                event = self._events.popleft()
            try:
                if isinstance(event, FillEvent):
                    self._on_fill(event)
                else:
                    self._on_order(event)
            except Exception:  # one bad event must not stop the stream
                log.exception("trade update for %r failed", event)

    def _entry_for(self, engine_id: str) -> Entry:
        entry = self.entries.get(engine_id)
        if entry is None:
            entry = self.add(self.engine.get_order(engine_id))
        if not entry.announced:
            entry.announced = True
            self.emit("new", entry, cum=_ZERO, status="new")
        return entry

    def _on_fill(self, fill: FillEvent) -> None:
        entry = self._entry_for(fill.broker_id)
        entry.cum += fill.qty
        entry.value += fill.qty * fill.price
        held = self._positions[fill.symbol] = self._positions.get(fill.symbol, _ZERO) + fill.qty * fill.side.sign
        done = entry.order.qty is not None and entry.cum >= entry.order.qty
        self.emit("fill" if done else "partial_fill", entry, cum=entry.cum,
                  avg=(entry.value / entry.cum).quantize(Decimal("0.000001")),
                  extra={"execution_id": self.execution_id(fill.exec_id), "price": num(fill.price),
                         "qty": num(fill.qty), "position_qty": num(held) or "0"}, ts=fill.ts)

    def _on_order(self, order: Order) -> None:
        self._entry_for(order.order_id)
        entry = self.add(order)
        if order.status is OrderStatus.CANCELLED and not entry.replacing:
            self.emit("canceled", entry)
        elif order.status is OrderStatus.EXPIRED:
            self.emit("expired", entry)
        elif order.status is OrderStatus.REJECTED:
            self.emit("rejected", entry)

    def emit(self, event: str, entry: Entry, cum: Decimal | None = None, avg: Decimal | None = None,
             status: str | None = None, extra: dict[str, Any] | None = None, ts: datetime | None = None) -> None:
        data = {"event": event, "timestamp": iso(ts or entry.order.updated_at), **(extra or {}),
                "order": self.order_json(entry, cum=cum, avg=avg, status=status)}
        self._publish({"stream": "trade_updates", "data": data})

