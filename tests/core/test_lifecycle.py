"""The Broker lifecycle (httpx-style): unopened -> open -> closed, finalized when dropped, nothing leaks."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path

import pytest

import workbench
from workbench.adapters.paper.adapter import PaperAdapter
from workbench.core.runner import get_runner
from workbench.facade import OPERATIONS
from tests.conftest import eventually

#: One valid call per facade operation (what a notebook would do).
CALLS = {
    "connect": (), "disconnect": (), "get_account": (), "get_positions": (), "get_position": ("AAPL",),
    "place_order": ({"symbol": "AAPL", "side": "buy", "qty": 1},), "place_market_order": ("AAPL", 1, "buy"),
    "place_limit_order": ("AAPL", 1, "buy", 1), "cancel_order": ("P000000001",), "get_order": ("P000000001",),
    "get_orders_history": (), "get_fills": (), "get_quote": ("AAPL",), "get_market_price": ("AAPL",),
    "get_history": ("AAPL",), "subscribe_market_data": (["AAPL"], print), "is_market_open": (), "get_clock": (),
}


def _live_tasks() -> set[asyncio.Task]:
    loop = get_runner().loop
    return {t for t in asyncio.all_tasks(loop) if not t.done()}


def _ledger_handles(db: Path) -> int:
    """Open file descriptors of this process on the ledger (the SQLite database and its WAL)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(db)):
                count += 1
        except OSError:
            continue
    return count


def test_every_operation_is_covered_here() -> None:
    assert set(CALLS) == {op.name for op in OPERATIONS}


def test_unopened_open_closed(settings_dict: dict) -> None:
    broker = workbench.Broker(workbench.get_adapter("paper", settings_dict))
    assert broker.adapter.lifecycle == "unopened" and broker.state == "disconnected" and not broker.closed
    with broker:  # entering opens an unopened Broker
        assert broker.adapter.lifecycle == "open" and broker.state == "connected"
        broker.disconnect()  # a disconnected Broker is still open: it may connect again
        assert broker.state == "disconnected"
        broker.connect()
        assert broker.is_connected()
    assert broker.closed and broker.state == "closed" and not broker.is_connected()
    assert broker.adapter.lifecycle == "closed" and "closed" in repr(broker)
    broker.close()  # idempotent


@pytest.mark.parametrize("name", sorted(CALLS))
def test_use_after_close_is_broker_closed_everywhere(settings_dict: dict, name: str) -> None:
    broker = workbench.connect(settings=settings_dict)
    broker.close()
    with pytest.raises(workbench.BrokerClosed) as info:
        getattr(broker, name)(*CALLS[name])
    err = info.value
    assert isinstance(err, workbench.BrokerUnavailable) and not err.retryable
    assert err.broker == "paper" and "closed" in str(err) and "workbench.connect()" in str(err)
    with pytest.raises(workbench.BrokerClosed):
        asyncio.run(getattr(broker, name + "_async")(*CALLS[name]))


def test_callbacks_and_the_adapter_itself_refuse_after_close(settings_dict: dict) -> None:
    broker = workbench.connect(settings=settings_dict)
    adapter = broker.adapter
    broker.close()
    for register in (broker.on_fill, broker.on_order):
        with pytest.raises(workbench.BrokerClosed):
            register(print)
    # Code holding ``broker.adapter`` gets the same typed error, never sqlite3 or stale data.
    with pytest.raises(workbench.BrokerClosed):
        get_runner().run(adapter.get_account(), 5)
    with pytest.raises(workbench.BrokerClosed):
        get_runner().run(adapter.connect(), 5)  # closed is final
    assert adapter.state == "closed"


def test_close_stops_pumps_and_subscriptions_it_handed_out(settings_dict: dict) -> None:
    before = _live_tasks()
    broker = workbench.connect(settings=settings_dict)
    fills, quotes = [], []
    broker.on_fill(fills.append)
    broker.on_order(lambda order: None)
    sub = broker.subscribe_market_data("AAPL", quotes.append)
    broker.place_market_order("AAPL", 1, "buy")
    eventually(lambda: fills and quotes)
    assert _live_tasks() - before  # pumps and the ticker are running
    broker.close()
    assert not sub.active
    assert _live_tasks() <= before  # everything it started has stopped (close waits for it)
    assert _ledger_handles(Path(settings_dict["paper"]["db_path"])) == 0


def test_a_dropped_broker_is_finalized(settings_dict: dict) -> None:
    """Dropping the last reference (re-running a cell) closes everything, even with live callbacks."""
    before = _live_tasks()
    broker = workbench.connect(settings=settings_dict)
    adapter = broker.adapter
    broker.on_fill(lambda fill: None)
    sub = broker.subscribe_market_data(["AAPL"], lambda quote: None)
    ref = weakref.ref(broker)
    del broker  # no gc.collect(): nothing on the loop thread holds the Broker
    assert ref() is None
    eventually(lambda: adapter.lifecycle == "closed" and not sub.active and _live_tasks() <= before)
    assert _ledger_handles(Path(settings_dict["paper"]["db_path"])) == 0


def test_rerunning_a_connect_cell_leaks_nothing(settings_dict: dict) -> None:
    db = Path(settings_dict["paper"]["db_path"])
    broker = workbench.connect(settings=settings_dict)  # warm up: the loop thread, calendars...
    broker.on_fill(lambda fill: None)
    tasks, threads, handles = len(_live_tasks()), threading.active_count(), _ledger_handles(db)
    assert handles > 0
    for _ in range(20):
        broker = workbench.connect(settings=settings_dict)  # the previous one is dropped here
        broker.on_fill(lambda fill: None)
        broker.subscribe_market_data("AAPL", lambda quote: None)
        broker.get_account()
    eventually(lambda: len(_live_tasks()) <= tasks)
    assert threading.active_count() <= threads
    # At most one more descriptor: SQLite defers closing a file another connection of this process
    # holds POSIX locks on, until that connection closes too (unixInodeInfo's pending list).
    assert _ledger_handles(db) <= handles + 1
    broker.close()
    assert _ledger_handles(db) == 0


def test_close_from_a_callback_on_the_loop_does_not_deadlock(settings_dict: dict) -> None:
    broker = workbench.connect(settings=settings_dict)
    done = threading.Event()

    def on_fill(fill: workbench.FillEvent) -> None:
        broker.close()  # on the loop thread: scheduled, not awaited
        done.set()

    broker.on_fill(on_fill)
    broker.place_market_order("AAPL", 1, "buy")
    assert done.wait(5)
    eventually(lambda: broker.adapter.lifecycle == "closed")
    with pytest.raises(workbench.BrokerClosed):
        broker.get_account()


def test_a_failed_connect_closes_what_it_opened(settings_dict: dict) -> None:
    class Refusing(PaperAdapter):
        name = "refusing"
        opened: list[Refusing] = []

        async def connect(self) -> None:
            await super().connect()
            Refusing.opened.append(self)
            raise workbench.BrokerUnavailable("gateway said no", broker=self.name)

    workbench.register_adapter("refusing", Refusing, replace=True)
    with pytest.raises(workbench.BrokerUnavailable):
        workbench.connect("refusing", settings=settings_dict)
    assert Refusing.opened[0].lifecycle == "closed" and not Refusing.opened[0].is_connected()


def test_interpreter_exit_closes_an_unclosed_broker(tmp_path: Path) -> None:
    """A script that never calls close() still closes its ledger: SQLite removes the WAL on a clean close."""
    db = tmp_path / "exit.sqlite"
    code = textwrap.dedent(f"""
        import workbench
        broker = workbench.connect(settings={{"paper": {{"db_path": {str(db)!r}}}}})
        broker.place_market_order("AAPL", 1, "buy")
        import os
        assert os.path.exists({str(db) + "-wal"!r})  # open: the WAL exists until the ledger closes
    """)
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert db.exists() and not Path(str(db) + "-wal").exists()


def test_the_finalizer_holds_no_reference_to_the_broker(settings_dict: dict) -> None:
    broker = workbench.connect(settings=settings_dict)
    _, _, args, kwargs = broker._finalizer.peek()
    assert broker not in args and broker not in kwargs.values()
    assert not any(ref is broker for arg in args for ref in gc.get_referents(arg))
    broker.close()
    assert broker._finalizer.peek() is None  # close() ran it: it will not run again


def test_exit_closes_adapters_that_need_a_worker_thread_to_close(tmp_path: Path) -> None:
    """Closing at exit happens before the thread pools stop: an adapter may close through to_thread."""
    marker = tmp_path / "closed.txt"
    code = textwrap.dedent(f"""
        import asyncio, pathlib, workbench
        from workbench.adapters.paper.adapter import PaperAdapter

        class Threaded(PaperAdapter):
            name = "threaded"

            async def disconnect(self):
                await asyncio.to_thread(pathlib.Path({str(marker)!r}).write_text, "closed")
                await super().disconnect()

        workbench.register_adapter("threaded", Threaded)
        broker = workbench.connect("threaded", settings={{"paper": {{"db_path": {str(tmp_path / "t.sqlite")!r}}}}})
    """)
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert marker.read_text() == "closed", out.stderr


def test_entering_a_closed_broker_is_refused(settings_dict: dict) -> None:
    broker = workbench.connect(settings=settings_dict)
    broker.close()
    with pytest.raises(workbench.BrokerClosed):
        with broker:
            pass
    with pytest.raises(workbench.BrokerClosed):
        asyncio.run(broker.__aenter__())


class _HangingClose(PaperAdapter):
    """A paper adapter whose close waits until told (a gateway that is slow to say goodbye)."""

    name = "hanging-close"
    release: asyncio.Event | None = None

    async def disconnect(self) -> None:
        if type(self).release is None:
            type(self).release = asyncio.Event()
        await type(self).release.wait()
        await super().disconnect()


def test_a_cancelled_close_async_leaves_the_finalizer_armed(settings_dict: dict) -> None:
    workbench.register_adapter("hanging-close", _HangingClose, replace=True)
    broker = workbench.connect("hanging-close", settings=settings_dict)

    async def impatient() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(broker.close_async(), 0.2)

    asyncio.run(impatient())
    assert broker.closed and broker._finalizer.alive  # what close left undone is still closed when it goes
    get_runner().loop.call_soon_threadsafe(_HangingClose.release.set)
    broker._finalizer()
    assert broker.adapter.lifecycle == "closed" and not broker.adapter.is_connected()


class _DroppedMidCall(PaperAdapter):
    """A network-style adapter: a call in flight fails with BrokerUnavailable when the connection goes."""

    name = "dropped-mid-call"
    in_flight: threading.Event = threading.Event()

    async def get_account(self):  # type: ignore[override]
        type(self).in_flight.set()
        while self.lifecycle != "closed":
            await asyncio.sleep(0.005)
        raise workbench.BrokerUnavailable("connection lost", broker=self.name, code="disconnected")


def test_a_call_that_close_interrupts_is_broker_closed_not_a_retryable_loss(settings_dict: dict) -> None:
    workbench.register_adapter("dropped-mid-call", _DroppedMidCall, replace=True)
    broker = workbench.connect("dropped-mid-call", settings=settings_dict)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            broker.get_account()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert _DroppedMidCall.in_flight.wait(5)
    broker.close()
    worker.join(5)
    assert len(errors) == 1 and type(errors[0]) is workbench.BrokerClosed, errors
    assert not errors[0].retryable and isinstance(errors[0].__cause__, workbench.BrokerUnavailable)


FORK_SCRIPT = """
import json, multiprocessing, os, sys, time, workbench
db = sys.argv[1]
broker = workbench.connect(settings={"paper": {"db_path": db}})
broker.place_market_order("AAPL", 1, "buy")

def child(queue):
    out = {}
    try:
        broker.get_account()
        out["parent_broker"] = "answered"
    except Exception as exc:
        out["parent_broker"] = type(exc).__name__
    try:
        workbench.connect(settings={"paper": {"db_path": db}})
        out["same_ledger"] = "connected"
    except workbench.WorkbenchError as exc:
        out["same_ledger"] = type(exc).__name__
    with workbench.connect(settings={"paper": {"db_path": db + ".child"}}) as own:
        out["own_ledger"] = own.place_market_order("AAPL", 1, "buy").status.value
    queue.put(out)

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic()
    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    result = queue.get(timeout=60)
    proc.join(60)
    result["child_seconds"] = time.monotonic() - started
    result["exitcode"] = proc.exitcode
    result["parent_orders"] = len(broker.get_orders_history())
    print(json.dumps(result))
"""


def test_a_forked_child_neither_uses_nor_closes_its_parents_broker(tmp_path: Path) -> None:
    """multiprocessing's fork: the parent's Broker refuses at once in the child (its loop thread stayed in
    the parent; it waited for the full timeout, then the child's exit waited 10 s more to close it), the
    child's own connect to the parent's ledger is refused by the ledger's lock (it shared the parent's
    engine and SQLite connection), and a ledger of its own works."""
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "p.sqlite")], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["parent_broker"] == "BrokerClosed", result
    assert result["same_ledger"] in ("BrokerUnavailable", "ConfigError"), result
    assert result["own_ledger"] == "FILLED" and result["exitcode"] == 0, result
    assert result["child_seconds"] < 10, result
    assert result["parent_orders"] == 1 and "closing the paper broker failed" not in out.stderr, out.stderr
