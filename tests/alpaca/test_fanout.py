"""The adapter's event fanout: a consumer on the publishing loop gets each event at once, in order; a consumer
on another loop gets the same events through that loop."""

from __future__ import annotations

import asyncio
import threading

from workbench.adapters.alpaca.fanout import LoopFanout
from workbench.adapters.base import EventFanout


async def _first_turn(fanout: EventFanout) -> list[int]:
    """What a consumer on this loop holds one loop turn after three events are published on it."""
    got: list[int] = []

    async def consume() -> None:
        async for event in fanout.stream():
            got.append(event)

    task = asyncio.get_running_loop().create_task(consume())
    await asyncio.sleep(0)  # the consumer is waiting
    for event in (1, 2, 3):
        fanout.publish(event)
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return got


def test_a_consumer_on_the_publishing_loop_gets_events_without_waiting_a_loop_turn() -> None:
    assert asyncio.run(_first_turn(LoopFanout())) == [1, 2, 3]
    assert asyncio.run(_first_turn(EventFanout())) == []  # the threadsafe hop costs the base class a turn


def test_a_consumer_on_another_loop_gets_every_event_in_order() -> None:
    fanout = LoopFanout()
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    elsewhere: list[int] = []

    async def consume_elsewhere(n: int) -> None:
        async for event in fanout.stream():
            elsewhere.append(event)
            if len(elsewhere) == n:
                return

    async def main() -> list[int]:
        here: list[int] = []

        async def consume_here() -> None:
            async for event in fanout.stream():
                here.append(event)
                if len(here) == 100:
                    return

        local = asyncio.get_running_loop().create_task(consume_here())
        remote = asyncio.run_coroutine_threadsafe(consume_elsewhere(100), other)
        for _ in range(5000):  # until both consumers are subscribed (5 s at most)
            if len(fanout._queues) == 2:
                break
            await asyncio.sleep(0.001)
        for event in range(100):
            fanout.publish(event)
            if event % 10 == 0:
                await asyncio.sleep(0)
        await asyncio.wait_for(local, 5)
        await asyncio.wrap_future(remote)
        return here

    try:
        here = asyncio.run(main())
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()
    assert here == list(range(100)) and elsewhere == list(range(100))
