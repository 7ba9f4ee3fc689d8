"""The real ib_async 2.1.0 client against the emulator over loopback, at server versions 157 and 178."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from workbench.core.enums import OrderStatus
from workbench.emulators.tws import TwsEmulator
from workbench.emulators.tws.instruments import con_id_for

from .conftest import ACCOUNT, ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import LimitOrder, MarketOrder, Stock, StopOrder  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def qualified(ib: Any, symbol: str = "AAPL") -> Any:
    (contract,) = ib.qualifyContracts(Stock(symbol, "SMART", "USD"))
    return contract


def test_connect_runs_the_startup_sync(connect: Any, emulator: Any, server_version: int) -> None:
    started = time.monotonic()
    ib = connect(3)
    assert time.monotonic() - started < 1.0
    assert ib.isConnected()
    assert ib.client.serverVersion() == server_version
    assert ib.managedAccounts() == [ACCOUNT]
    values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    assert float(values[("NetLiquidation", "USD")]) == pytest.approx(100000)
    assert float(values[("TotalCashValue", "USD")]) == pytest.approx(100000)
    sent = [int(f[0]) for f in emulator.requests()]
    assert sent[0] == 71 and {61, 5, 99, 6, 76, 7} <= set(sent)


def test_qualify_known_and_unknown(ib: Any) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    aapl, spy, unknown = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"), Stock("SPY", "SMART", "USD"),
                                             Stock("ZZZZ", "SMART", "USD"))
    assert aapl.conId == con_id_for("AAPL") and aapl.primaryExchange == "NASDAQ" and aapl.exchange == "SMART"
    assert spy.conId == con_id_for("SPY") and spy.primaryExchange == "ARCA"
    assert unknown is None
    assert 200 in errors
    details = ib.reqContractDetails(Stock(conId=con_id_for("MSFT")))
    assert [d.contract.symbol for d in details] == ["MSFT"]


def test_current_time_is_the_engine_clock(ib: Any, clock: Any) -> None:
    assert ib.reqCurrentTime() == clock()


def test_historical_daily_and_intraday(ib: Any, clock: Any) -> None:
    contract = qualified(ib)
    daily = ib.reqHistoricalData(contract, "", "10 D", "1 day", "TRADES", True, 1)
    assert daily and all(isinstance(b.date, date) and not isinstance(b.date, datetime) for b in daily)
    assert daily[-1].date == clock().date()
    assert all(b.low <= b.close <= b.high for b in daily)
    intraday = ib.reqHistoricalData(contract, "", "1 D", "5 mins", "TRADES", True, 2)
    assert intraday
    assert all(b.date.tzinfo is not None and b.date.utcoffset() == timedelta(0) for b in intraday)
    assert intraday[-1].date <= clock() and intraday[1].date - intraday[0].date == timedelta(minutes=5)
    hourly = ib.reqHistoricalData(contract, "20261117 20:00:00 UTC", "2 D", "1 hour", "MIDPOINT", True, 1)
    assert hourly and hourly[-1].date < datetime(2026, 11, 17, 20, tzinfo=UTC)
    assert all(b.volume == -1 for b in hourly)


def test_historical_bad_bar_size_ends_the_request(ib: Any) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert list(ib.reqHistoricalData(qualified(ib), "", "1 D", "7 mins", "TRADES", True, 1)) == []
    assert 162 in errors


def test_snapshot_tickers(ib: Any, engine: Any) -> None:
    contract = qualified(ib)
    (ticker,) = ib.reqTickers(contract)
    last = float(engine.prices.get_market_price("AAPL"))
    assert ticker.last == pytest.approx(last)
    assert ticker.bid < ticker.last < ticker.ask
    assert ticker.close > 0 and ticker.volume > 0 and ticker.bidSize >= 100 and ticker.askSize >= 100


def test_streaming_market_data(ib: Any, emulator: Any, clock: Any) -> None:
    contract = qualified(ib)
    ticker = ib.reqMktData(contract, "", False, False)
    ib_eventually(ib, lambda: ticker.last == ticker.last and ticker.last > 0)
    seen = {ticker.last}
    for _ in range(30):
        now = clock.advance(minutes=1)
        emulator.tick()
        ib_eventually(ib, lambda now=now: ticker.lastTimestamp == now)  # this minute's trade has arrived
        seen.add(ticker.last)
        if len(seen) > 2:
            break
    assert len(seen) > 2
    ib.cancelMktData(contract)
    ib_eventually(ib, lambda: not emulator.call(lambda: any(s.subs.market for s in emulator.sessions)))


def test_market_order_fills_and_updates_positions(ib: Any, engine: Any) -> None:
    contract = qualified(ib)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 10, orderRef="wb-ref-market-1"))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills
                  and trade.fills[0].commissionReport.execId)
    price = float(engine.prices.get_market_price("AAPL"))
    assert trade.orderStatus.filled == 10 and trade.orderStatus.remaining == 0
    assert trade.orderStatus.avgFillPrice == pytest.approx(price)
    (fill,) = trade.fills
    assert fill.execution.orderRef == "wb-ref-market-1" and fill.execution.side == "BOT"
    assert fill.execution.time.tzinfo is not None
    assert fill.commissionReport.commission == pytest.approx(1.0)
    assert [e.status for e in trade.log][-1] == "Filled"
    ib_eventually(ib, lambda: [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAPL", 10.0)])
    ib_eventually(ib, lambda: [(p.contract.symbol, p.position) for p in ib.portfolio()] == [("AAPL", 10.0)])
    # the order went to the paper engine under the orderRef as client_order_id
    order = engine.get_order("wb-ref-market-1")
    assert order.status is OrderStatus.FILLED and order.filled_qty == 10
    assert engine.position("AAPL").qty == 10

    def cash() -> float:
        return next(float(v.value) for v in ib.accountValues() if v.tag == "TotalCashValue")

    ib_eventually(ib, lambda: cash() == pytest.approx(100000 - 10 * price - 1))
    # selling it back closes the position
    sell = ib.placeOrder(contract, MarketOrder("SELL", 10))
    ib_eventually(ib, lambda: sell.orderStatus.status == "Filled")
    ib_eventually(ib, lambda: not ib.positions() or all(p.position == 0 for p in ib.positions()))
    assert engine.position("AAPL") is None


def test_limit_order_rests_then_cancels(ib: Any, engine: Any) -> None:
    contract = qualified(ib)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 5, 50.0, orderRef="wb-ref-limit-1", tif="GTC"))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Submitted")
    assert engine.get_order("wb-ref-limit-1").status is OrderStatus.NEW
    assert [t.order.orderId for t in ib.openTrades()] == [trade.order.orderId]
    ib.cancelOrder(trade.order)
    ib_eventually(ib, lambda: trade.orderStatus.status == "Cancelled")
    statuses = [e.status for e in trade.log]
    assert statuses[0] == "PendingSubmit" and statuses[-1] == "Cancelled" and "Submitted" in statuses
    assert engine.get_order("wb-ref-limit-1").status is OrderStatus.CANCELLED
    assert trade.order.orderRef == "wb-ref-limit-1"


def test_resting_limit_fills_on_tick(ib: Any, emulator: Any, engine: Any, clock: Any) -> None:
    contract = qualified(ib)
    limit = float(engine.prices.get_market_price("AAPL")) - 0.05
    trade = ib.placeOrder(contract, LimitOrder("BUY", 3, round(limit, 2)))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Submitted")
    for _ in range(600):  # the seeded path crosses the limit within a few hours of simulated time
        clock.advance(minutes=1)
        emulator.tick()
        if engine.fills():
            break
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    assert trade.fills[0].execution.price <= round(limit, 2)
    ib_eventually(ib, lambda: [p.position for p in ib.positions()] == [3.0])


def test_stop_order_waits_presubmitted(ib: Any, engine: Any) -> None:
    contract = qualified(ib)
    stop = round(float(engine.prices.get_market_price("AAPL")) * 1.5, 2)
    trade = ib.placeOrder(contract, StopOrder("BUY", 1, stop))
    ib_eventually(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    ib.cancelOrder(trade.order)
    ib_eventually(ib, lambda: trade.orderStatus.status == "Cancelled")


def test_rejections_and_unknown_cancel(ib: Any, engine: Any) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code, msg))
    contract = qualified(ib)
    too_big = ib.placeOrder(contract, MarketOrder("BUY", 1_000_000))
    ib_eventually(ib, lambda: too_big.orderStatus.status == "Cancelled")
    assert any(code == 201 and "buying power" in msg for _, code, msg in errors)
    no_short = ib.placeOrder(contract, MarketOrder("SELL", 5))
    ib_eventually(ib, lambda: no_short.orderStatus.status == "Cancelled")
    assert any(r == no_short.order.orderId and code == 201 for r, code, _ in errors)
    bad_tick = ib.placeOrder(contract, LimitOrder("BUY", 1, 100.001))
    ib_eventually(ib, lambda: bad_tick.orderStatus.status == "Cancelled")
    assert engine.orders() == []
    ib.client.cancelOrder(999_999, "")
    ib_eventually(ib, lambda: any(r == 999_999 and code == 10147 for r, code, _ in errors))


def test_reconnect_resyncs_positions_executions_and_completed_orders(connect: Any, emulator: Any) -> None:
    ib = connect(5)
    contract = qualified(ib)
    filled = ib.placeOrder(contract, MarketOrder("BUY", 4, orderRef="wb-ref-resync-1"))
    resting = ib.placeOrder(contract, LimitOrder("BUY", 2, 60.0, orderRef="wb-ref-resync-2"))
    ib_eventually(ib, lambda: filled.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted")
    cancelled = ib.placeOrder(contract, LimitOrder("BUY", 1, 50.0, orderRef="wb-ref-resync-3"))
    ib_eventually(ib, lambda: cancelled.orderStatus.status == "Submitted")
    ib.cancelOrder(cancelled.order)
    ib_eventually(ib, lambda: cancelled.orderStatus.status == "Cancelled")
    ib.disconnect()

    again = connect(5)  # same clientId: it was freed on EOF
    assert [(p.contract.symbol, p.position) for p in again.positions()] == [("AAPL", 4.0)]
    fills = again.fills()
    assert [(f.execution.orderRef, f.execution.shares) for f in fills] == [("wb-ref-resync-1", 4.0)]
    assert fills[0].commissionReport.commission == pytest.approx(1.0)
    by_ref = {t.order.orderRef: t.orderStatus.status for t in again.trades()}
    assert by_ref == {"wb-ref-resync-1": "Filled", "wb-ref-resync-2": "Submitted", "wb-ref-resync-3": "Cancelled"}
    assert [t.order.orderRef for t in again.openTrades()] == ["wb-ref-resync-2"]
    executions = again.reqExecutions()
    assert [f.execution.orderRef for f in executions] == ["wb-ref-resync-1"]
    summary = {v.tag for v in again.accountSummary()}
    assert {"NetLiquidation", "BuyingPower"} <= summary


def test_duplicate_client_id_is_refused(connect: Any, emulator: Any) -> None:
    from ib_async import IB

    first = connect(9)
    second = IB()
    errors: list[int] = []
    second.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    with pytest.raises((ConnectionError, TimeoutError, OSError)):
        second.connect("127.0.0.1", emulator.port, clientId=9, timeout=1)
    second.disconnect()
    assert 326 in errors
    assert first.isConnected()
    first.disconnect()
    ib_eventually(first, lambda: emulator.session_for(9) is None, timeout=2)
    third = connect(9)
    assert third.isConnected() and third.managedAccounts() == [ACCOUNT]


def test_order_ids_stay_unique_across_clients(connect: Any) -> None:
    a, b = connect(11), connect(12)
    contract = qualified(a)
    ta = a.placeOrder(contract, MarketOrder("BUY", 1))
    ib_eventually(a, lambda: ta.orderStatus.status == "Filled")
    c = connect(13)
    assert c.client.getReqId() > ta.order.orderId
    tb = b.placeOrder(qualified(b), MarketOrder("BUY", 1))
    ib_eventually(b, lambda: tb.orderStatus.status == "Filled")
    assert tb.order.permId != ta.order.permId


def test_raw_socket_handshake_and_version_negotiation(emulator: Any, server_version: int) -> None:
    import socket
    import struct

    from workbench.emulators.tws.codec import encode, split

    def read(sock: socket.socket) -> list[str]:
        size = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))[0]
        return split(sock.recv(size, socket.MSG_WAITALL))

    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        payload = b"v157..176"
        sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)
        reply = read(sock)
        assert len(reply) == 2 and int(reply[0]) == min(176, server_version)
        sock.sendall(encode([71, 2, 42, ""]))
        first, second = read(sock), read(sock)
        assert first == ["15", "1", ACCOUNT]
        assert second[:2] == ["9", "1"] and int(second[2]) >= 1


def test_modify_changes_price_and_quantity_then_fills(ib: Any, engine: Any) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    contract = qualified(ib)
    price = engine.prices.get_market_price("AAPL", engine.clock())
    order = LimitOrder("BUY", 5, 50.0, orderRef="wb-ref-modify-1")
    trade = ib.placeOrder(contract, order)
    ib_eventually(ib, lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice, order.totalQuantity = 51.0, 8
    ib.placeOrder(contract, order)  # same orderId: a modify
    ib_eventually(ib, lambda: engine.get_order("wb-ref-modify-1").limit_price == 51)
    assert engine.get_order("wb-ref-modify-1").qty == 8 and trade.isActive() and not errors
    order.lmtPrice = float(price) + 1  # now marketable: fills at once
    ib.placeOrder(contract, order)
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled")
    assert sum(f.execution.shares for f in trade.fills) == 8
    order.lmtPrice = 52.0
    with pytest.raises(AssertionError):  # ib_async sends it, then objects client-side to modifying a done order
        ib.placeOrder(contract, order)
    ib_eventually(ib, lambda: (order.orderId, 104) in errors)  # and the gateway says 104
    assert len(engine.orders()) == 1  # modifies never created a second order


@pytest.mark.parametrize("server_version", [157, 178], indirect=True)
def test_fills_from_outside_the_emulator_push_positions(ib: Any, emulator: Any, engine: Any) -> None:
    from workbench.core.models import NeutralOrder

    emulator.call(engine.submit, NeutralOrder(symbol="NVDA", side="buy", qty=3))
    ib_eventually(ib, lambda: [(p.contract.symbol, p.position) for p in ib.positions()] == [("NVDA", 3.0)])


@pytest.mark.parametrize("server_version", [178], indirect=True)
def test_readonly_and_master_client_connect(connect: Any, emulator: Any) -> None:
    ro = connect(31, readonly=True)
    assert ro.managedAccounts() == [ACCOUNT]
    sent = [int(f[0]) for f in emulator.requests(31)]
    assert 5 not in sent and 99 not in sent and 61 in sent and 7 in sent
    master = connect(0)
    assert master.isConnected()
    assert any(f[0] == "15" for f in emulator.requests(0))  # reqAutoOpenOrders accepted


def test_background_ticker_drives_resting_orders(engine: Any, clock: Any) -> None:
    from ib_async import IB

    emu = TwsEmulator(engine, port=0, tick_interval=0.02).start_in_thread()
    ib = IB()
    try:
        ib.connect("127.0.0.1", emu.port, clientId=1, timeout=3)
        contract = qualified(ib)
        limit = round(float(engine.prices.get_market_price("AAPL")) - 0.05, 2)
        trade = ib.placeOrder(contract, LimitOrder("BUY", 2, limit))
        ticker = ib.reqMktData(contract, "", False, False)
        ib_eventually(ib, lambda: trade.orderStatus.status == "Submitted" and ticker.last > 0)
        first_last = ticker.last

        def advanced_and_filled() -> bool:
            clock.advance(minutes=1)
            return trade.orderStatus.status == "Filled"

        ib_eventually(ib, advanced_and_filled, timeout=20, interval=0.03)
        assert ticker.last != first_last  # the streaming quote moved with the clock
    finally:
        ib.disconnect()
        emu.stop_thread()


def test_an_order_from_before_a_gateway_restart_can_be_modified(engine: Any) -> None:
    from ib_async import IB

    first = TwsEmulator(engine, port=0, server_version=178, tick_interval=None).start_in_thread()
    port = first.port
    ib = IB()
    try:
        ib.connect("127.0.0.1", port, clientId=4, timeout=3)
        order = LimitOrder("BUY", 5, 50.0, orderRef="survives-restart")
        ib.placeOrder(qualified(ib), order)
        ib_eventually(ib, lambda: any(o.client_order_id == "survives-restart" for o in engine.open_orders()))
        ib.disconnect()
        first.stop_thread()
        second = TwsEmulator(engine, port=port, server_version=178, tick_interval=None).start_in_thread()
        try:
            ib.connect("127.0.0.1", port, clientId=4, timeout=3)
            trade = next(t for t in ib.openTrades() if t.order.orderRef == "survives-restart")  # re-synced
            trade.order.lmtPrice = 51.0
            ib.placeOrder(trade.contract, trade.order)  # a modify of the adopted order
            ib_eventually(ib, lambda: engine.get_order("survives-restart").limit_price == 51)
            assert trade.isActive() and len(engine.orders()) == 1
        finally:
            ib.disconnect()
            second.stop_thread()
    finally:
        if ib.isConnected():
            ib.disconnect()
