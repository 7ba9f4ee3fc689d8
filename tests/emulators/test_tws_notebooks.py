"""Cells of ib_async's own notebooks (bar_data, contract_details) and docs recipes, as published, that a
review run against the emulator found broken, with the real ib_async 2.1.0 at server versions 157 and 178;
and the emulator's lifecycle as a notebook uses it (one call to start, nothing left after it stops).

The clock is a Wednesday, 10:00 New York (2026-11-18 15:00 UTC) unless a test sets it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import eventually
from workbench.core.errors import BrokerUnavailable
from workbench.emulators.tws import TwsEmulator
from workbench.emulators.tws.instruments import IB_CON_IDS, con_id_for
from workbench.marketdata.sim import DEFAULT_UNIVERSE

from .conftest import ACCOUNT, ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, Contract, MarketOrder, Stock, util  # noqa: E402

pytestmark = pytest.mark.timeout(90)
EASTERN = ZoneInfo("US/Eastern")


def test_real_time_bars_arrive_with_a_real_clock(ib: Any, emulator: Any, clock: Any) -> None:
    """bar_data: ``reqRealTimeBars(contract, 5, 'MIDPOINT', False)``; a real clock has microseconds."""
    clock.set(datetime(2026, 11, 18, 15, 0, 0, 731_402, tzinfo=UTC))
    (contract,) = ib.qualifyContracts(Stock("TSLA", "SMART", "USD"))
    printed: list[Any] = []
    bars = ib.reqRealTimeBars(contract, 5, "MIDPOINT", False)
    bars.updateEvent += lambda bars, has_new_bar: printed.append(bars[-1])
    ib_eventually(ib, lambda: emulator.call(lambda: any(s.subs.realtime for s in emulator.sessions)))
    for _ in range(6):
        clock.advance(seconds=5)
        emulator.tick()
    ib_eventually(ib, lambda: len(bars) == 6)
    assert [b.time for b in bars] == [datetime(2026, 11, 18, 15, 0, 5 * i, tzinfo=UTC) for i in range(6)]
    assert printed[-1] == bars[-1]
    assert all((b.volume, b.wap, b.count) == (-1, -1, -1) for b in bars)  # as IB sends MIDPOINT bars
    trades = ib.reqRealTimeBars(contract, 5, "TRADES", False)
    ib_eventually(ib, lambda: emulator.call(lambda: sum(len(s.subs.realtime) for s in emulator.sessions)) == 2)
    clock.advance(seconds=10)
    emulator.tick()
    ib_eventually(ib, lambda: len(trades) == 2)
    assert all(b.volume > 0 and b.count > 0 and b.low <= b.wap <= b.high for b in trades)


def test_intraday_bars_are_dated_in_exchange_time(ib: Any, emulator: Any, clock: Any) -> None:
    """bar_data: ``formatDate=1`` bars come dated ``20261118 09:30:00 US/Eastern``, as from a gateway."""
    contract = Stock("TSLA", "SMART", "USD")
    bars = ib.reqHistoricalData(contract, endDateTime="", durationStr="60 D", barSizeSetting="1 hour",
                                whatToShow="TRADES", useRTH=True, formatDate=1)
    assert bars[0].date.tzinfo == EASTERN and (bars[0].date.hour, bars[0].date.minute) == (9, 30)
    assert bars[-1].date == datetime(2026, 11, 18, 9, 30, tzinfo=EASTERN)
    df = util.df(bars)
    assert [f"{d:%H:%M}" for d in df["date"][:7]] == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    epoch = ib.reqHistoricalData(contract, "", "1 D", "1 hour", "TRADES", True, formatDate=2)
    assert epoch[0].date == datetime(2026, 11, 18, 14, 30, tzinfo=UTC) and epoch[0].date.tzinfo == UTC
    live = ib.reqHistoricalData(contract, "", "1 D", "1 min", "TRADES", True, 1, keepUpToDate=True)
    last = live[-1].date
    clock.advance(minutes=2)
    emulator.tick()
    ib_eventually(ib, lambda: live[-1].date > last)
    assert live[-1].date.tzinfo == EASTERN and live[-1].date == datetime(2026, 11, 18, 10, 1, tzinfo=EASTERN)
    ib.cancelHistoricalData(live)


def test_the_consecutive_history_recipe_reaches_the_first_bar(ib: Any, emulator: Any, clock: Any) -> None:
    """docs/recipes "Fetching consecutive historical data", unmodified, near the start of the sim's data:
    the request whose span starts before the first bar returns the bars there are (it used to answer 162)."""
    clock.set(datetime(2000, 1, 20, 16, 0, tzinfo=UTC))  # 11:00 New York
    contract = Stock("TSLA", "SMART", "USD")

    dt: Any = ""
    barsList = []
    while True:
        bars = ib.reqHistoricalData(
            contract,
            endDateTime=dt,
            durationStr="10 D",
            barSizeSetting="1 min",
            whatToShow="MIDPOINT",
            useRTH=True,
            formatDate=1)
        if not bars:
            break
        barsList.append(bars)
        dt = bars[0].date

    allBars = [b for bars in reversed(barsList) for b in bars]
    assert allBars[0].date == ib.reqHeadTimeStamp(contract, whatToShow="TRADES", useRTH=True)
    dates = [b.date for b in allBars]
    assert dates == sorted(set(dates))  # no bar twice, none out of order
    sessions = emulator.engine.calendar.sessions(datetime(2000, 1, 3).date(), datetime(2000, 1, 19).date())
    assert len(allBars) == 390 * len(sessions) + 90  # every minute of every session, and today's first 90
    assert len(barsList) == 2 and len(util.df(allBars)) == len(allBars)


def test_the_con_ids_the_notebooks_use(ib: Any) -> None:
    """contract_details: ``Contract(conId=4391)`` is AMD, as on a gateway; basics: 270639 is INTC."""
    amd = Stock("AMD", "SMART", "USD")
    ib.qualifyContracts(amd)
    contract_4391 = Contract(conId=4391)
    ib.qualifyContracts(contract_4391)
    assert contract_4391 == amd and contract_4391.symbol == "AMD" and contract_4391.primaryExchange == "NASDAQ"
    (intc,) = ib.qualifyContracts(Contract(conId=270639))
    assert intc.symbol == "INTC"
    (tsla,) = ib.qualifyContracts(Stock("TSLA", "SMART", "USD"))
    assert tsla.conId == 76792991
    assert set(IB_CON_IDS) <= set(DEFAULT_UNIVERSE)
    assert len({con_id_for(sym) for sym in DEFAULT_UNIVERSE}) == len(DEFAULT_UNIVERSE)  # one symbol per conId


def test_pnl_single_of_a_fractional_position(ib: Any, engine: Any) -> None:
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(contract, MarketOrder("BUY", 0.5))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled")
    single = ib.reqPnLSingle(ACCOUNT, "", contract.conId)
    ib_eventually(ib, lambda: single.position == 0.5)
    assert single.value == pytest.approx(float(engine.position("AAPL").market_value), abs=0.01)


def test_positions_name_the_listing_exchange(ib: Any) -> None:
    """ordering: ``ib.positions()`` shows ``Stock(conId=265598, symbol='AAPL', exchange='NASDAQ', ...)``."""
    contracts = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"), Stock("SPY", "SMART", "USD"))
    trades = [ib.placeOrder(c, MarketOrder("BUY", 1)) for c in contracts]
    ib_eventually(ib, lambda: all(t.orderStatus.status == "Filled" for t in trades) and len(ib.positions()) == 2)
    assert {(p.contract.symbol, p.contract.exchange) for p in ib.positions()} == {("AAPL", "NASDAQ"), ("SPY", "ARCA")}
    assert {(p.contract.symbol, p.contract.exchange) for p in ib.reqPositions()} == {("AAPL", "NASDAQ"), ("SPY", "ARCA")}


# -- lifecycle ------------------------------------------------------------------------------


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_stop_with_clients_connected_is_quiet(engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Stopping under a connected client ends its session like a closed connection: no asyncio traceback
    (Python 3.11 logs a cancelled connection handler as an error), no thread, no listening socket."""
    emu = TwsEmulator(engine, port=0, tick_interval=0.05).start_in_thread()
    clients = [IB(), IB()]
    for i, ib in enumerate(clients):
        ib.connect("127.0.0.1", emu.port, clientId=30 + i, timeout=3)
    (contract,) = clients[0].qualifyContracts(Stock("AAPL", "SMART", "USD"))
    ticker = clients[0].reqMktData(contract, "", False, False)
    ib_eventually(clients[0], lambda: ticker.last > 0)
    thread = emu._thread
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        emu.stop_thread()
    try:
        assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
        assert thread is not None and not thread.is_alive() and _refused(emu.port)
        with contextlib.suppress(ConnectionError):  # ib_async raises it from its loop when the gateway goes
            ib_eventually(clients[0], lambda: not clients[0].isConnected())
        assert not clients[0].isConnected()
    finally:
        for ib in clients:
            ib.disconnect()


def test_one_call_starts_an_emulator_with_its_own_engine(tmp_path: Any) -> None:
    """``with TwsEmulator() as emu`` in a notebook cell: a fresh engine and in-memory ledger on a free port,
    ``emu.settings()`` is the ``ib`` section; leaving the block stops everything it started."""
    import workbench

    before = {t.name for t in threading.enumerate()}
    with TwsEmulator(margin=True, settings={"paper": {"commission": 1, "slippage_bps": 0}}) as emu:
        assert emu.owns_engine and emu.margin and emu.port > 0
        assert emu.settings() == {"host": "127.0.0.1", "port": emu.port, "account": ACCOUNT}
        assert f"127.0.0.1:{emu.port}" in repr(emu) and emu.start_in_thread() is emu  # already running: no 2nd
        broker = workbench.connect("ib", settings={"ib": {**emu.settings(), "client_id": 7}})
        try:
            order = broker.place_market_order("AAPL", 3, "sell")  # a margin account: short is allowed
            eventually(lambda: broker.get_order(order.order_id).status.value == "FILLED")
            assert emu.engine.position("AAPL").qty == -3 and float(emu.engine.fills()[0].commission) == 1
        finally:
            broker.close()
        taken = TwsEmulator(port=emu.port)
        with pytest.raises(OSError):  # the port is in use: nothing is left running, its own engine closed
            taken.start_in_thread()
        assert taken.engine.closed and taken._thread is None
        engine, port = emu.engine, emu.port
    assert _refused(port) and "not running" in repr(emu)
    with pytest.raises(BrokerUnavailable):
        engine.positions()  # closed with the emulator that built it
    assert {t.name for t in threading.enumerate()} - before <= {"workbench-loop"}  # workbench's own, shared
    assert not any(t.name.startswith("tws-emulator") for t in threading.enumerate())
    assert engine.config.db_path == ":memory:" and list(tmp_path.iterdir()) == []
