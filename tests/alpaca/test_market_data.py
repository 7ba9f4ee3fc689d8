"""subscribe_market_data over Alpaca's market-data websocket: the real alpaca-py StockDataStream (msgpack)
against the emulator's ``/v2/<feed>`` over loopback; and plain alpaca-py scripts against that stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.alpaca.conftest import KEY, SECRET
from tests.conftest import ManualClock, eventually

pytest.importorskip("alpaca")


@pytest.fixture
def market(tmp_path: Path, keys: Any) -> Iterator[tuple[Any, ManualClock]]:
    """An emulator whose engine and prices follow a clock the test moves (each minute moves the prices)."""
    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    clock = ManualClock(datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "md.sqlite"), slippage_bps=0, commission=0),
                         SimProvider(clock=clock), clock=clock)
    emu = AlpacaEmulator(engine, tick_interval=None, data_connections=1).start_in_thread()
    try:
        yield emu, clock
    finally:
        emu.stop_thread()
        engine.close()


@pytest.fixture
def connect(market: tuple[Any, ManualClock], settings_dict: dict) -> Iterator[Any]:
    made: list[workbench.Broker] = []

    def make(**alpaca: Any) -> workbench.Broker:
        section = {**market[0].settings(), "reconnect_min": 0.02, "reconnect_max": 0.2, "quote_poll_interval": 0.05,
                   **alpaca}
        made.append(workbench.connect("alpaca", settings={**settings_dict, "alpaca": section}))
        return made[-1]

    yield make
    for broker in made:
        broker.close()


def _subscribed(emu: Any) -> dict[str, set[str]]:
    return emu.call(emu.data.subscribed)


def _snapshots(emu: Any) -> int:
    return sum("/v2/stocks/snapshots" in q for _, q in emu.requests)


def _move(emu: Any, clock: ManualClock) -> None:
    clock.advance(minutes=1)
    emu.tick()


def test_quotes_stream_over_the_websocket(market: tuple[Any, ManualClock], connect: Any) -> None:
    emu, clock = market
    broker = connect()
    quotes: list[workbench.Quote] = []
    sub = broker.subscribe_market_data(["AAPL", "MSFT"], quotes.append)
    assert {q.symbol for q in quotes} == {"AAPL", "MSFT"}  # the snapshot first
    assert _subscribed(emu)["trades"] == _subscribed(emu)["quotes"] == {"AAPL", "MSFT"}
    first = {q.symbol: q for q in quotes}
    _move(emu, clock)
    eventually(lambda: {q.symbol for q in quotes[2:] if q.ts > first[q.symbol].ts} == {"AAPL", "MSFT"})
    now = {q.symbol: q for q in quotes}
    for sym in ("AAPL", "MSFT"):
        truth = emu.engine.prices.get_quote(sym)
        assert (now[sym].last, now[sym].bid, now[sym].ask) == (truth.last, truth.bid, truth.ask)
        assert now[sym].simulated and now[sym].source == "alpaca"
    assert _snapshots(emu) == 1  # streamed, not polled
    seen = len(quotes)
    emu.tick()  # the same prices again: nothing to report
    _move(emu, clock)
    eventually(lambda: len(quotes) > seen)
    sub.cancel()
    eventually(lambda: not emu.call(lambda: emu.data.clients))  # the last subscription closes the socket


def test_subscriptions_share_one_connection(market: tuple[Any, ManualClock], connect: Any) -> None:
    emu, clock = market
    broker = connect()
    a: list[workbench.Quote] = []
    b: list[workbench.Quote] = []
    sub_a = broker.subscribe_market_data(["AAPL", "MSFT"], a.append)
    sub_b = broker.subscribe_market_data("MSFT", b.append)  # the emulator allows one connection, as Alpaca does
    assert len(emu.call(lambda: emu.data.clients)) == 1
    sub_a.cancel()
    eventually(lambda: _subscribed(emu)["quotes"] == {"MSFT"})  # AAPL unsubscribed, MSFT kept for b
    before_a, before_b = len(a), len(b)
    _move(emu, clock)
    eventually(lambda: len(b) > before_b)
    assert len(a) == before_a and {q.symbol for q in b} == {"MSFT"}
    broker.close()
    assert not sub_b.active  # closing the broker ends its subscriptions
    eventually(lambda: not emu.call(lambda: emu.data.clients))


def test_quotes_survive_a_dropped_stream(market: tuple[Any, ManualClock], connect: Any) -> None:
    emu, clock = market
    broker = connect()
    quotes: list[workbench.Quote] = []
    broker.subscribe_market_data(["AAPL"], quotes.append)
    emu.disconnect_streams()  # both websockets; alpaca-py reconnects, authenticates and subscribes again
    eventually(lambda: _subscribed(emu)["quotes"] == {"AAPL"} and broker.state == "connected")
    seen = len(quotes)
    _move(emu, clock)
    eventually(lambda: len(quotes) > seen)


def test_a_refused_stream_is_a_typed_error_and_polling_still_works(market: tuple[Any, ManualClock],
                                                                   connect: Any) -> None:
    emu, clock = market
    first = connect()
    first.subscribe_market_data(["AAPL"], lambda q: None)  # takes the account's one data connection
    second = connect()
    with pytest.raises(workbench.BrokerUnavailable) as info:
        second.subscribe_market_data(["AAPL"], lambda q: None)
    assert "connection limit exceeded" in str(info.value) and "alpaca.quotes" in str(info.value)
    assert info.value.code == "data_stream"
    assert second.adapter._quote_feed.stream is None  # nothing left retrying in the background
    polled = connect(quotes="poll")
    quotes: list[workbench.Quote] = []
    polled.subscribe_market_data(["AAPL"], quotes.append)
    _move(emu, clock)
    eventually(lambda: len(quotes) >= 2)
    assert _snapshots(emu) >= 2 and len(emu.call(lambda: emu.data.clients)) == 1


def test_plain_stock_data_stream_script(market: tuple[Any, ManualClock]) -> None:
    """alpaca-py's StockDataStream as its docs use it (run() in a thread) receives Trade and Quote models."""
    from alpaca.data.live.stock import StockDataStream

    emu, clock = market
    trades: list[Any] = []
    quotes: list[Any] = []

    async def on_trade(trade: Any) -> None:
        trades.append(trade)

    async def on_quote(quote: Any) -> None:
        quotes.append(quote)

    stream = StockDataStream(KEY, SECRET, url_override=f"{emu.data_stream_url}/v2/iex")
    stream.subscribe_trades(on_trade, "AAPL")
    stream.subscribe_quotes(on_quote, "AAPL", "MSFT")
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: _subscribed(emu)["quotes"] == {"AAPL", "MSFT"})
        assert _subscribed(emu)["trades"] == {"AAPL"}
        _move(emu, clock)
        eventually(lambda: trades and {q.symbol for q in quotes} == {"AAPL", "MSFT"})
        truth = emu.engine.prices.get_quote("AAPL")
        assert trades[-1].symbol == "AAPL" and trades[-1].price == float(truth.last)
        aapl = [q for q in quotes if q.symbol == "AAPL"][-1]
        assert aapl.bid_price == float(truth.bid) and aapl.ask_price == float(truth.ask)
        assert aapl.timestamp == clock()
    finally:
        stream.stop()
        emu.disconnect_streams()
        thread.join(10)
    assert not thread.is_alive()


def test_wrong_keys_on_the_data_stream(market: tuple[Any, ManualClock]) -> None:
    """A client that does not ask for msgpack gets JSON text, as from Alpaca; a wrong secret is refused."""
    import asyncio
    import json

    import websockets

    emu, _ = market

    async def handshake() -> list[Any]:
        async with websockets.connect(f"{emu.data_stream_url}/v2/iex") as ws:
            replies = [json.loads(await ws.recv())]
            await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": "nope"}))
            replies.append(json.loads(await ws.recv()))
            return replies

    assert asyncio.run(handshake()) == [[{"T": "success", "msg": "connected"}],
                                        [{"T": "error", "code": 402, "msg": "auth failed"}]]


def test_close_while_both_streams_reconnect_leaves_nothing_running(market: tuple[Any, ManualClock],
                                                                   connect: Any) -> None:
    import asyncio

    from workbench.core.runner import get_runner

    emu, _ = market
    broker = connect()
    broker.subscribe_market_data(["AAPL"], lambda quote: None)
    emu.accept_streams = False
    emu.disconnect_streams()
    eventually(lambda: broker.state == "reconnecting")
    adapter = broker.adapter
    broker.close()

    async def alpaca_tasks() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if "alpaca" in t.get_name() and not t.done()]

    assert asyncio.run_coroutine_threadsafe(alpaca_tasks(), get_runner().loop).result(5) == []
    assert adapter._stream is None and adapter._quote_feed is None and not adapter._tasks
    emu.accept_streams = True
    assert not emu.call(lambda: emu.data.clients) and not emu.call(lambda: emu._listeners)


def test_a_dropped_broker_stops_its_streams(market: tuple[Any, ManualClock], settings_dict: dict) -> None:
    """Rule 8: no close() at all; dropping the Broker stops both websockets and every task."""
    import asyncio
    import gc

    from workbench.core.runner import get_runner

    emu, _ = market
    broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
    broker.subscribe_market_data(["AAPL"], lambda quote: None)
    broker.on_fill(lambda fill: None)
    adapter = broker.adapter
    assert emu.call(lambda: len(emu._listeners)) == 1 and emu.call(lambda: len(emu.data.clients)) == 1
    del broker
    gc.collect()

    async def alpaca_tasks() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if "alpaca" in t.get_name() and not t.done()]

    eventually(lambda: adapter.state == "closed")
    eventually(lambda: not asyncio.run_coroutine_threadsafe(alpaca_tasks(), get_runner().loop).result(5))
    eventually(lambda: not emu.call(lambda: emu._listeners) and not emu.call(lambda: emu.data.clients))


@pytest.mark.parametrize(("reason", "cls"), [
    ("auth failed", workbench.AuthError), ("insufficient subscription", workbench.DataEntitlementError),
    ("connection limit exceeded", workbench.BrokerUnavailable)])
def test_refusals_of_the_data_stream_map_to_typed_errors(reason: str, cls: type) -> None:
    from workbench.adapters.alpaca.quotes import _refused

    err = _refused(reason, "wss://stream.data.alpaca.markets/v2/iex")
    assert type(err) is cls and err.broker == "alpaca" and err.raw == reason and "alpaca.quotes" in err.message
