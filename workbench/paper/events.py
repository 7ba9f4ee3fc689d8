"""The paper engine's listeners and the delivery of its events, in commit order.

The engine queues an event (an Order snapshot, a FillEvent) under its lock as each change commits, and
delivers after releasing the lock. One thread delivers at a time and the others wait for it, so every
listener sees every order's changes in the order they were committed, and a call returns only once the
events of its own changes were delivered. A listener that calls back into the engine gets the events of
what it did after the event it is handling (the delivering loop picks them up; never nested).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from workbench.core.log import get_logger
from workbench.core.models import FillEvent

__all__ = ["Listeners"]

log = get_logger(__name__)

Listener = tuple[Callable[[Any], None], Callable[[], bool] | None]


class Listeners:
    """Fill and order listeners (immutable tuples, replaced on change: iterating one never races an
    unsubscribe from another thread) and the queue of events waiting for them."""

    def __init__(self) -> None:
        self.fills: tuple[Listener, ...] = ()
        self.orders: tuple[Listener, ...] = ()
        self._change = threading.Lock()
        self._pending: deque[Any] = deque()
        self._delivery = threading.Lock()
        self._deliverer: int | None = None

    def add(self, kind: str, callback: Callable[[Any], None], wanted: Callable[[], bool] | None
            ) -> Callable[[], None]:
        """Add a listener to ``kind`` (``"fills"`` or ``"orders"``); returns the function that removes it."""
        entry = (callback, wanted)
        with self._change:
            setattr(self, kind, (*getattr(self, kind), entry))

        def remove() -> None:
            with self._change:
                setattr(self, kind, tuple(e for e in getattr(self, kind) if e is not entry))

        return remove

    def clear(self) -> None:
        with self._change:
            self.fills = self.orders = ()

    @staticmethod
    def wanted(listeners: tuple[Listener, ...]) -> bool:
        """Whether any of ``listeners`` wants events now (events nobody wants are never built)."""
        for _, wanted in listeners:
            if wanted is None or wanted():
                return True
        return False

    def queue(self, events: Iterable[Any]) -> None:
        """Queue events of a committed change (under the engine's lock, so the queue is in commit order)."""
        self._pending.extend(events)

    def deliver(self) -> None:
        """Deliver every queued event, oldest first (outside the engine's lock)."""
        if not self._pending and self._deliverer is None:  # read in this order: see the loop below
            return
        me = threading.get_ident()
        if self._deliverer == me:  # a listener called back into the engine: the loop below delivers
            return
        with self._delivery:
            self._deliverer = me  # set before the first pop, cleared after the last delivery
            try:
                while self._pending:
                    event = self._pending.popleft()
                    for callback, _ in self.fills if isinstance(event, FillEvent) else self.orders:
                        try:
                            callback(event)
                        except Exception:  # a broken listener must not break the engine or starve the others
                            log.exception("listener %r failed", callback)
            finally:
                self._deliverer = None
