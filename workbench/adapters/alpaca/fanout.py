"""The fanout of the adapter's fill and order events, which are all published on the adapter's loop."""

from __future__ import annotations

import asyncio
from typing import Any

from workbench.adapters.base import EventFanout

__all__ = ["LoopFanout"]


class LoopFanout(EventFanout):
    """An :class:`EventFanout` published to from one loop only (the trade stream's and the reconciliation's
    tasks): a consumer on that loop (the facade's ``on_fill`` pump, an ``async for`` on the same loop) gets
    each event at once instead of after a self-pipe write and one more loop turn; a consumer on another loop
    still through ``call_soon_threadsafe``. With one publishing loop, each consumer's events stay in order."""

    def publish(self, event: Any) -> None:
        running = asyncio.get_running_loop()
        for loop, queue in list(self._queues):
            if loop is running:
                queue.put_nowait(event)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(queue.put_nowait, event)
