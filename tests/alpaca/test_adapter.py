"""The alpaca adapter against the emulator over loopback: stream fills, reconnects, errors, safety."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.alpaca.conftest import KEY, SECRET
from tests.conftest import eventually

pytest.importorskip("alpaca")


@pytest.fixture
def partial_engine(tmp_path: Path) -> Any:
    """An engine that fills half of each order per price update (so partial fills happen)."""
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "partial.sqlite"), slippage_bps=0, commission=0,
                                     partial_fill_fraction="0.5"), SimProvider())
    yield engine
    engine.close()


def _posts(emulator: Any) -> list[str]:
    return [q for m, q in emulator.requests if m == "POST"]


def test_stream_new_partial_fill_fill_with_per_fill_quantities(partial_engine: Any, keys: Any,
                                                                settings_dict: dict) -> None:
    from workbench.emulators.alpaca import AlpacaEmulator

    with AlpacaEmulator(partial_engine, tick_interval=None) as emu:
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
        try:
            fills: list[workbench.FillEvent] = []
            orders: list[workbench.Order] = []
            broker.on_fill(fills.append)
            broker.on_order(orders.append)
            order = broker.place_market_order("AAPL", 10, "buy")
            assert order.status is workbench.OrderStatus.PARTIALLY_FILLED and order.filled_qty == 5
            eventually(lambda: len(fills) == 1)
            emu.tick()  # the next price update fills the rest
            eventually(lambda: len(fills) == 2)
            assert [f.qty for f in fills] == [Decimal(5), Decimal(5)]  # per fill, not cumulative (5, 10)
            assert {f.broker_id for f in fills} == {order.order_id} and len({f.exec_id for f in fills}) == 2
            eventually(lambda: orders and orders[-1].status is workbench.OrderStatus.FILLED)
            assert [(o.status, o.filled_qty) for o in orders] == [
                (workbench.OrderStatus.NEW, 0), (workbench.OrderStatus.PARTIALLY_FILLED, 5),
                (workbench.OrderStatus.FILLED, 10)]
            rest = broker.get_fills()  # the same fills through REST (FILL activities), same exec ids
            assert list(rest["exec_id"]) == [f.exec_id for f in fills] and list(rest["qty"]) == [5.0, 5.0]
        finally:
            broker.close()


def test_twenty_reconnects_lose_and_double_nothing(emulator: Any, connect_alpaca: Any) -> None:
    broker = connect_alpaca()
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    placed = []
    for i in range(20):
        emulator.accept_streams = False
        emulator.disconnect_streams()
        eventually(lambda: broker.state == "reconnecting")
        placed.append(broker.place_market_order("AAPL", 1 + i % 3, "buy"))  # filled while the stream is down
        emulator.accept_streams = True
        eventually(lambda: broker.state == "connected")
        placed.append(broker.place_market_order("MSFT", 1, "buy"))  # on the live stream (or reconciled)
    eventually(lambda: len(fills) >= len(placed), timeout=10)
    truth = broker.get_fills()
    assert len(fills) == len(placed) == len(truth)
    assert sorted(f.exec_id for f in fills) == sorted(truth["exec_id"])  # none missed, none doubled
    assert sum(f.qty for f in fills) == sum(o.qty for o in placed)
    assert broker.adapter._stream.connections == 21


def test_idempotent_after_a_timeout(emulator: Any, connect_alpaca: Any) -> None:
    broker = connect_alpaca(timeout=0.3)
    emulator.fail_next("POST", "/v2/orders", 0, delay=1.0)  # the order arrives, the answer is late
    order = broker.place_order(symbol="AAPL", side="buy", qty=2, client_order_id="slow-1")
    assert order.client_order_id == "slow-1" and order.filled_qty == 2
    assert len(_posts(emulator)) == 1  # looked up by client id, not sent again
    assert len(emulator.engine.orders()) == 1
    again = broker.place_order(symbol="AAPL", side="buy", qty=2, client_order_id="slow-1")
    assert again.order_id == order.order_id and len(emulator.engine.fills()) == 1
    with pytest.raises(workbench.InvalidOrder) as info:  # same id, different order
        broker.place_order(symbol="AAPL", side="buy", qty=3, client_order_id="slow-1")
    assert info.value.field == "client_order_id"


def test_lost_order_is_sent_again_after_a_5xx(emulator: Any, connect_alpaca: Any) -> None:
    broker = connect_alpaca()
    emulator.fail_next("POST", "/v2/orders", 503, {"message": "try later"})
    order = broker.place_order(symbol="AAPL", side="buy", qty=1, client_order_id="lost-1")
    assert order.filled_qty == 1 and len(_posts(emulator)) == 2 and len(emulator.engine.orders()) == 1


@pytest.mark.parametrize(("method", "path", "status", "body", "call", "cls", "field"), [
    ("GET", "/v2/account", 401, {"code": 40110000, "message": "request is not authorized"}, "get_account",
     workbench.AuthError, None),
    ("GET", "/v2/account", 500, "oops", "get_account", workbench.BrokerUnavailable, None),
    ("GET", "/v2/orders", 403, {"code": 40310000, "message": "forbidden"}, "get_orders_history",
     workbench.AuthError, None),  # 40310000 refuses an order only when one is placed
    ("GET", "/v2/account", 403, {"code": 40310000, "message": "forbidden"}, "get_account", workbench.AuthError, None),
    ("POST", "/v2/orders", 403, {"code": 40310000, "message": "potential wash trade detected"}, "place_market_order",
     workbench.OrderRejected, None),
    ("GET", "/v2/stocks/bars", 403, {"message": "subscription does not permit querying recent SIP data"},
     "get_history", workbench.DataEntitlementError, None),
    ("GET", "/v2/stocks/bars", 400, {"code": 40010001, "message": "invalid timeframe"}, "get_history",
     workbench.InvalidInput, "interval"),
    ("GET", "/v2/stocks/bars", 422, {"code": 42210000, "message": "invalid symbols: empty"}, "get_history",
     workbench.InvalidInput, "symbol"),
    ("GET", "/v2/stocks/bars", 422, {"code": 42210000, "message": "invalid end: not a date"}, "get_history",
     workbench.InvalidInput, "end"),
    ("GET", "/v2/stocks/bars", 422, {"code": 42210000, "message": "unprocessable"}, "get_history",
     workbench.InvalidInput, "request"),
    ("GET", "/v2/account", 422, {"code": 42210000, "message": "unprocessable"}, "get_account",
     workbench.InvalidInput, "request"),
])
def test_error_mapping_on_the_wire(emulator: Any, connect_alpaca: Any, method: str, path: str, status: int,
                                   body: Any, call: str, cls: type, field: str | None) -> None:
    from alpaca.common.exceptions import APIError

    broker = connect_alpaca()
    emulator.fail_next(method, path, status, body)
    with pytest.raises(cls) as info:
        getattr(broker, call)(*{"get_history": ["AAPL"], "place_market_order": ["AAPL", 1, "buy"]}.get(call, []))
    err = info.value
    assert type(err) is cls and err.broker == "alpaca" and err.raw and isinstance(err.__cause__, APIError)
    if field:
        assert err.field == field


def test_a_bars_request_refused_by_the_server_is_invalid_input_naming_the_field(
        tmp_path: Path, keys: Any, clock: Any, settings_dict: dict) -> None:
    """The emulator's clock a month behind this one: the last 5 days' bars start after its "now" (422, invalid
    start). A bad request for data is bad input naming the field, not a rejected order."""
    from alpaca.common.exceptions import APIError

    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    clock.set(datetime.now(UTC) - timedelta(days=30))
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "behind.sqlite")), SimProvider(clock=clock), clock=clock)
    try:
        with AlpacaEmulator(engine, tick_interval=None) as emu:
            broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
            try:
                with pytest.raises(workbench.InvalidInput) as info:
                    broker.get_history("AAPL", days=5)
            finally:
                broker.close()
    finally:
        engine.close()
    err = info.value
    assert type(err) is workbench.InvalidInput and err.field == "start", repr(err)
    assert err.broker == "alpaca" and err.code == 42210000 and "invalid start" in err.raw
    assert isinstance(err.__cause__, APIError)


def test_the_emulator_answers_an_unreadable_bars_start_with_422(emulator: Any) -> None:
    import requests

    for name in ("start", "end"):
        answer = requests.get(f"{emulator.settings()['data_url']}/v2/stocks/bars",
                              params={"symbols": "AAPL", "timeframe": "1Day", name: "not-a-date"},
                              headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}, timeout=10)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == 42210000 and answer.json()["message"].startswith(f"invalid {name}")


def test_order_refusals_map_to_typed_errors(alpaca_broker: Any, emulator: Any) -> None:
    with pytest.raises(workbench.InsufficientFunds):
        alpaca_broker.place_market_order("AAPL", 100_000, "buy")
    with pytest.raises(workbench.InvalidOrder) as info:  # the tick size, refused by the server
        alpaca_broker.place_limit_order("AAPL", 1, "buy", "10.001")
    assert info.value.field == "limit_price" and info.value.code == 40010001
    with pytest.raises(workbench.InsufficientFunds):  # short selling is off on the emulator's engine
        alpaca_broker.place_market_order("AAPL", 1, "sell")
    with pytest.raises(workbench.OrderNotFound) as nf:
        alpaca_broker.get_order("8f0d9a38-2f63-4a43-9c6c-6f2b8f5b0a11")
    assert nf.value.code == 40410000
    assert emulator.engine.orders() == []


def test_rate_limit_after_bounded_retries(emulator: Any, connect_alpaca: Any) -> None:
    broker = connect_alpaca(retries=2, retry_wait=0)
    before = len(emulator.requests)
    emulator.fail_next("GET", "/v2/account", 429, {"code": 42910000, "message": "rate limit exceeded"}, times=5)
    with pytest.raises(workbench.RateLimited):
        broker.get_account()
    assert len(emulator.requests) - before == 3  # alpaca-py's loop: 1 + 2 retries, then the typed error
    emulator.faults.clear()
    emulator.fail_next("GET", "/v2/account", 504, "gateway timeout", times=1)
    assert broker.get_account().cash > 0  # a single 504 is retried away


def test_http_timeout_bounds_a_hanging_server(emulator: Any, connect_alpaca: Any) -> None:
    broker = connect_alpaca(timeout=0.2)
    emulator.fail_next("GET", "/v2/positions", 200, "[]", delay=2.0)
    with pytest.raises(workbench.RequestTimeout):
        broker.get_positions()


def test_unreachable_endpoint_is_broker_unavailable(keys: Any, settings_dict: dict) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    section = {"base_url": f"http://127.0.0.1:{port}", "data_url": f"http://127.0.0.1:{port}",
               "stream_url": f"ws://127.0.0.1:{port}/stream", "timeout": 2}
    with pytest.raises(workbench.BrokerUnavailable):
        workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})


def test_fractional_and_notional_rules_are_checked_before_sending(alpaca_broker: Any, emulator: Any) -> None:
    with pytest.raises(workbench.NotSupported) as info:
        alpaca_broker.place_order(symbol="AAPL", side="buy", qty="0.5", tif="gtc")
    assert info.value.field == "tif"
    with pytest.raises(workbench.NotSupported):
        alpaca_broker.place_order(symbol="AAPL", side="buy", notional=100, tif="ioc")
    with pytest.raises(workbench.InvalidOrder):
        alpaca_broker.place_order(symbol="AAPL", side="buy", notional=100, order_type="limit", limit_price=1)
    assert _posts(emulator) == []
    fractional = alpaca_broker.place_order(symbol="AAPL", side="buy", qty="0.5")
    assert fractional.qty == Decimal("0.5") and fractional.filled_qty == Decimal("0.5")


def test_trailing_stop_and_notional_orders(alpaca_broker: Any, emulator: Any) -> None:
    caps = alpaca_broker.capabilities
    assert workbench.OrderType.TRAILING_STOP in caps.order_types and workbench.Feature.NOTIONAL in caps.features
    bought = alpaca_broker.place_order(symbol="AAPL", side="buy", notional="50.5")
    assert bought.notional == Decimal("50.5") and bought.order_type is workbench.OrderType.MARKET
    filled = eventually(lambda: (o := alpaca_broker.get_order(bought.order_id)).status.is_terminal and o)
    assert filled.status is workbench.OrderStatus.FILLED and 0 < filled.filled_qty < 1  # sized by the price
    assert abs(filled.filled_qty * filled.avg_fill_price - Decimal("50.5")) < Decimal("0.01")
    with pytest.raises(workbench.NotSupported):  # Alpaca: no fractional trailing stops
        alpaca_broker.place_order(symbol="AAPL", side="sell", qty=filled.filled_qty, order_type="trailing_stop",
                                  trail_percent="2")
    alpaca_broker.place_market_order("AAPL", 1, "buy")
    trail = alpaca_broker.place_order(symbol="AAPL", side="sell", qty=1, order_type="trailing_stop",
                                      trail_percent="2", tif="gtc")
    assert trail.order_type is workbench.OrderType.TRAILING_STOP and trail.trail_percent == Decimal(2)
    assert trail.status.is_open and trail.stop_price is not None  # the current trigger, below the market
    assert trail.stop_price < alpaca_broker.get_market_price("AAPL")
    again = alpaca_broker.place_order(symbol="AAPL", side="sell", qty=1, order_type="trailing_stop",
                                      trail_percent="2", tif="gtc", client_order_id=trail.client_order_id)
    assert again.order_id == trail.order_id  # the resubmit check ignores the moving trigger
    assert alpaca_broker.cancel_order(trail.order_id).status is workbench.OrderStatus.CANCELLED


def test_live_endpoint_refused_without_allow_live(keys: Any, settings_dict: dict) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect("alpaca", settings={**settings_dict, "alpaca": {"paper": False}})
    assert info.value.key == "alpaca.allow_live"
    with pytest.raises(workbench.ConfigError):
        workbench.connect("alpaca", settings={**settings_dict,
                                              "alpaca": {"base_url": "https://api.alpaca.markets"}})


def test_missing_keys_name_both_variables_and_send_nothing(emulator: Any, settings_dict: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPACA_SECRET_KEY")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect("alpaca", settings={**settings_dict, "alpaca": emulator.settings()})
    assert "ALPACA_API_KEY" in str(info.value) and "ALPACA_SECRET_KEY" in str(info.value)
    assert emulator.requests == []


def test_keys_never_in_reprs_logs_or_errors(emulator: Any, connect_alpaca: Any, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    broker = connect_alpaca()
    texts = [repr(broker), repr(broker.adapter), repr(broker.settings), repr(emulator), repr(broker.adapter.config)]
    emulator.fail_next("GET", "/v2/account", 401, {"message": f"bad key {KEY} / {SECRET}"})
    with pytest.raises(workbench.AuthError) as info:
        broker.get_account()
    texts += [str(info.value), repr(info.value.raw)]
    monkeypatch.setenv("ALPACA_SECRET_KEY", "another-wrong-secret")
    with pytest.raises(workbench.AuthError) as refused:  # the emulator refuses this pair
        connect_alpaca()
    texts += [str(refused.value), repr(refused.value.raw)]
    texts += [r.getMessage() for r in caplog.records]
    for text in texts:
        assert SECRET not in text and KEY not in text and "another-wrong-secret" not in text


def test_history_is_explicit_about_feed_and_adjustment(alpaca_broker: Any, emulator: Any) -> None:
    frame = alpaca_broker.get_history("AAPL", days=400)  # several pages of 50 daily bars
    assert len(frame) > 200 and frame.attrs["feed"] == "iex" and frame.attrs["adjustment"] == "all"
    assert frame.attrs["simulated"] is True and frame.attrs["adjusted"] is True
    bars = [q for m, q in emulator.requests if q.startswith("/v2/stocks/bars?")]
    assert len(bars) >= 5 and all("feed=iex" in q and "adjustment=all" in q for q in bars)
    assert (frame.index.hour == 0).all() and frame.index.is_unique


def test_position_account_and_disconnect(alpaca_broker: Any) -> None:
    alpaca_broker.place_market_order("AAPL", 2, "buy")
    position = alpaca_broker.get_position("AAPL")
    assert position is not None and position.qty == 2 and isinstance(position.avg_price, Decimal)
    assert alpaca_broker.get_position("MSFT") is None
    account = alpaca_broker.get_account()
    assert isinstance(account.last_equity, Decimal) and account.raw["account_number"] == account.id
    adapter = alpaca_broker.adapter
    alpaca_broker.disconnect()
    assert adapter.state == "disconnected" and adapter._stream is None and not adapter._tasks


def test_order_history_pages_through_orders_sharing_a_timestamp(tmp_path: Path, keys: Any, clock: Any,
                                                                 settings_dict: dict) -> None:
    """Pages follow ``until`` (Alpaca's only cursor): orders at the boundary's timestamp must not be skipped."""
    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "same-ts.sqlite"), slippage_bps=0, commission=0),
                         SimProvider(), clock=clock)
    placed = []
    for minute, n in ((0, 1), (1, 2), (2, 2)):  # desc: 2 at 15:02, 2 at 15:01, 1 at 15:00
        clock.set(datetime(2026, 11, 18, 15, minute, tzinfo=UTC))
        placed += [engine.submit(workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1)) for _ in range(n)]
    try:
        with AlpacaEmulator(engine, tick_interval=None) as emu:
            broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
            try:
                broker.adapter.orders_page = 3  # the third order of the first page shares 15:01 with the fourth
                history = broker.get_orders_history(limit=None)
                pages = [q for m, q in emu.requests if q.startswith("/v2/orders?")]
                assert len(pages) >= 2
                assert sorted(history.index) == sorted(emu.book.alpaca_id(o.order_id) for o in placed)
                assert history.index.is_unique
            finally:
                broker.close()
    finally:
        engine.close()


def test_since_includes_an_order_and_a_fill_at_that_very_time(alpaca_broker: Any) -> None:
    """``since`` is inclusive, as on paper; Alpaca's ``after`` is exclusive."""
    first = alpaca_broker.place_market_order("AAPL", 1, "buy")
    alpaca_broker.place_market_order("AAPL", 1, "buy")
    orders = alpaca_broker.get_orders_history(since=first.created_at)
    assert first.order_id in orders.index and len(orders) == 2
    fills = alpaca_broker.get_fills()
    again = alpaca_broker.get_fills(since=fills.index[0].to_pydatetime())
    assert list(again["exec_id"]) == list(fills["exec_id"])


@pytest.mark.parametrize(("path", "body", "call"), [
    ("/v2/clock", {}, "get_clock"), ("/v2/account", [], "get_account"),
    ("/v2/positions", [{"symbol": "AAPL"}], "get_positions"), ("/v2/orders", [{"id": "x"}], "get_orders_history"),
])
def test_a_malformed_answer_is_a_typed_error(emulator: Any, connect_alpaca: Any, path: str, body: Any,
                                             call: str) -> None:
    broker = connect_alpaca()
    emulator.fail_next("GET", path, 200, body)
    with pytest.raises(workbench.BrokerError) as info:
        getattr(broker, call)()
    assert info.value.code == "parse" and info.value.broker == "alpaca"


def test_fills_missed_while_down_come_before_newer_stream_fills(partial_engine: Any, keys: Any,
                                                                 settings_dict: dict) -> None:
    """A fill the stream delivers during the reconciliation waits for the older fills REST brings back."""
    from workbench.emulators.alpaca import AlpacaEmulator

    with AlpacaEmulator(partial_engine, tick_interval=None) as emu:
        section = {**emu.settings(), "reconnect_min": 0.02, "reconnect_max": 0.2}
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
        try:
            fills: list[workbench.FillEvent] = []
            orders: list[workbench.Order] = []
            broker.on_fill(fills.append)
            broker.on_order(orders.append)
            emu.accept_streams = False
            emu.disconnect_streams()
            eventually(lambda: broker.state == "reconnecting")
            order = broker.place_market_order("AAPL", 10, "buy")  # 5 filled now, unseen by the stream
            emu.fail_next("GET", "/v2/account/activities", 0, delay=1.0)  # the reconciliation's answer is late
            emu.accept_streams = True
            eventually(lambda: any("/activities" in q for _, q in emu.requests))
            emu.tick()  # the other 5, on the live stream, while the reconciliation waits
            eventually(lambda: len(fills) == 2)
            assert [f.exec_id for f in fills] == [f"{order.order_id}@5", f"{order.order_id}@10"]
            eventually(lambda: orders and orders[-1].status is workbench.OrderStatus.FILLED)
            assert [o.filled_qty for o in orders] == sorted(o.filled_qty for o in orders)
        finally:
            broker.close()


def test_expired_and_rejected_events_reach_on_order(tmp_path: Path, keys: Any, clock: Any,
                                                  settings_dict: dict) -> None:
    """trade_updates ``expired`` (a DAY order at the close) and ``rejected`` (a buy stop that triggers at a price
    the cash cannot pay) reach on_order as EXPIRED and REJECTED, from the stream (no order is looked up)."""
    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "ends.sqlite"), slippage_bps=0, commission=0),
                         SimProvider(), clock=clock)  # Wednesday 10:00 New York
    try:
        with AlpacaEmulator(engine, tick_interval=None) as emu:
            broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
            try:
                orders: list[workbench.Order] = []
                broker.on_order(orders.append)
                day = broker.place_limit_order("MSFT", 1, "buy", "1.00")  # DAY: rests until the close
                stop_price = (broker.get_market_price("AAPL") * 2).quantize(Decimal("0.01"))
                qty = int(broker.get_account().buying_power / stop_price)  # reserves nearly all the cash
                stop = broker.place_order(symbol="AAPL", side="buy", qty=qty, order_type="stop",
                                          stop_price=stop_price, tif="gtc")
                assert (day.status, stop.status) == (workbench.OrderStatus.NEW, workbench.OrderStatus.NEW)
                before = len(emu.requests)
                engine.on_price("AAPL", stop_price * 2)  # triggers; filling at twice the stop needs twice the cash
                clock.set(datetime(2026, 11, 18, 21, 30, tzinfo=UTC))  # after the close
                emu.tick()

                def final(order_id: str) -> workbench.Order | None:
                    return next((o for o in orders if o.order_id == order_id and o.status.is_terminal), None)

                eventually(lambda: final(day.order_id) and final(stop.order_id))
                assert (final(day.order_id).status, final(day.order_id).raw_status) == \
                    (workbench.OrderStatus.EXPIRED, "expired")
                assert (final(stop.order_id).status, final(stop.order_id).raw_status) == \
                    (workbench.OrderStatus.REJECTED, "rejected")
                assert final(stop.order_id).filled_qty == 0
                assert not [q for m, q in emu.requests[before:] if q.startswith("/v2/orders")], "looked up, not streamed"
                assert broker.get_order(day.order_id).status is workbench.OrderStatus.EXPIRED
                assert broker.get_order(stop.order_id).status is workbench.OrderStatus.REJECTED
            finally:
                broker.close()
    finally:
        engine.close()


def test_reconnect_looks_up_only_the_orders_that_finished(tmp_path: Path, keys: Any, clock: Any,
                                                          settings_dict: dict) -> None:
    """Working orders come back in one list; only one that finished while the stream was down is fetched by id,
    and its new status reaches on_order even though it was submitted long before."""
    from alpaca.trading.client import TradingClient

    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "old.sqlite"), slippage_bps=0, commission=0),
                         SimProvider(), clock=clock)
    try:
        with AlpacaEmulator(engine, tick_interval=None) as emu:
            section = {**emu.settings(), "reconnect_min": 0.02, "reconnect_max": 0.2}
            broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
            try:
                orders: list[workbench.Order] = []
                broker.on_order(orders.append)
                resting = [broker.place_limit_order("MSFT", 1, "buy", "1.00", tif="gtc") for _ in range(5)]
                clock.advance(hours=1)
                broker.place_market_order("AAPL", 1, "buy")  # an event an hour later: the reconnect looks back from it
                eventually(lambda: any(o.symbol == "AAPL" and o.status.is_terminal for o in orders))
                emu.accept_streams = False
                emu.disconnect_streams()
                eventually(lambda: broker.state == "reconnecting")
                before = len(emu.requests)
                TradingClient(KEY, SECRET, url_override=emu.base_url).cancel_order_by_id(resting[0].order_id)
                emu.accept_streams = True
                eventually(lambda: any(o.order_id == resting[0].order_id and o.status.is_terminal for o in orders))
                by_id = [q for m, q in emu.requests[before:] if m == "GET" and q.startswith("/v2/orders/")]
                assert by_id == [f"/v2/orders/{resting[0].order_id}"]
            finally:
                broker.close()
    finally:
        engine.close()


def test_fills_of_orders_placed_elsewhere_need_no_request_per_order(connect_alpaca: Any, emulator: Any) -> None:
    """get_fills() names each fill's client order id: orders this session never saw come from the order
    list (a page per 500 orders), not one request each (a year of history would hit Alpaca's rate limit)."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import MarketOrderRequest

    client = TradingClient(KEY, SECRET, url_override=emulator.base_url)
    for i in range(30):  # before this session: filled, so neither its stream nor its open orders saw them
        client.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day",
                                               client_order_id=f"elsewhere-{i:02d}"))
    broker = connect_alpaca()
    before = len(emulator.requests)
    fills = broker.get_fills()
    assert sorted(fills["client_order_id"]) == [f"elsewhere-{i:02d}" for i in range(30)]
    by_id = [q for m, q in emulator.requests[before:] if m == "GET" and q.startswith("/v2/orders/")]
    assert by_id == [] and sum(q.startswith("/v2/orders?") for _, q in emulator.requests[before:]) == 1


def test_a_refused_stream_is_retried_with_growing_jittered_delays_not_a_storm(emulator: Any,
                                                                              connect_alpaca: Any) -> None:
    """While the emulator refuses websockets (503), the trade stream's attempts are spaced by alpaca-py's
    exponential backoff with equal jitter between ``reconnect_min`` and ``reconnect_max``: each wait at least
    half its step (0.05, 0.1, 0.2, 0.4, 0.4, ...), waits at the cap not all alike, and the stream is back once
    the emulator accepts again."""
    low, high = 0.05, 0.4
    broker = connect_alpaca(reconnect_min=low, reconnect_max=high)
    try:
        emulator.accept_streams = False
        start = len(emulator.stream_attempts)
        emulator.disconnect_streams()
        eventually(lambda: broker.state == "reconnecting")
        eventually(lambda: len([p for _, p in emulator.stream_attempts[start:] if p == "/stream"]) >= 8,
                   timeout=30)
        trade = [t for t, path in emulator.stream_attempts[start:] if path == "/stream"][:8]
        gaps = [b - a for a, b in zip(trade, trade[1:], strict=False)]
        steps = [min(high, low * 2 ** i) for i in range(len(gaps))]
        assert all(gap >= step / 2 - 0.005 for gap, step in zip(gaps, steps, strict=True)), (gaps, steps)
        at_cap = [round(gap, 4) for gap, step in zip(gaps, steps, strict=True) if step == high]
        assert len(at_cap) >= 3 and len(set(at_cap)) > 1, at_cap  # jitter: not one fixed period
        emulator.accept_streams = True
        eventually(lambda: broker.state == "connected", timeout=10)
    finally:
        emulator.accept_streams = True
        broker.close()


def test_a_fresh_emulator_never_reuses_the_order_ids_of_another(tmp_path: Path, keys: Any,
                                                                settings_dict: dict) -> None:
    """A notebook re-runs its emulator cell on a new ledger while its Broker stays connected: the new
    emulator's orders get new ids (as Alpaca's never repeat), so their fills are not taken for ones already
    delivered. A restart on the same ledger (``--db``) keeps the ids it gave."""
    from workbench.emulators.alpaca import AlpacaEmulator

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fills: list[workbench.FillEvent] = []
    with AlpacaEmulator(port=port, db=str(tmp_path / "first.sqlite"), tick_interval=None) as first:
        section = {**first.settings(), "reconnect_min": 0.02, "reconnect_max": 0.2}
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
        broker.on_fill(fills.append)
        a = broker.place_market_order("AAPL", 1, "buy")
        eventually(lambda: len(fills) == 1)
    try:
        eventually(lambda: broker.state == "reconnecting")
        with AlpacaEmulator(port=port, db=str(tmp_path / "second.sqlite"), tick_interval=None):
            eventually(lambda: broker.state == "connected", timeout=10)
            b = broker.place_market_order("AAPL", 1, "buy")
            assert b.order_id != a.order_id and b.filled_qty == 1
            eventually(lambda: len(fills) == 2)
            assert [f.broker_id for f in fills] == [a.order_id, b.order_id]
    finally:
        broker.close()
    with AlpacaEmulator(db=str(tmp_path / "first.sqlite"), tick_interval=None) as again:
        assert again.book.find(a.order_id) is not None  # the same ledger: the same ids


def test_fills_missed_while_down_are_delivered_in_time_order_across_orders(partial_engine: Any, keys: Any,
                                                                            settings_dict: dict) -> None:
    """Two orders fill in turns while the stream is down (A 5, B 5, then A 5 and B 5): the reconciliation
    hands them over as they happened, not order by order."""
    from workbench.emulators.alpaca import AlpacaEmulator

    with AlpacaEmulator(partial_engine, tick_interval=None) as emu:
        section = {**emu.settings(), "reconnect_min": 0.02, "reconnect_max": 0.2}
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
        try:
            fills: list[workbench.FillEvent] = []
            broker.on_fill(fills.append)
            emu.accept_streams = False
            emu.disconnect_streams()
            eventually(lambda: broker.state == "reconnecting")
            a = broker.place_market_order("AAPL", 10, "buy")
            b = broker.place_market_order("MSFT", 10, "buy")
            emu.tick()  # the second half of each
            assert len(partial_engine.fills()) == 4 and fills == []
            emu.accept_streams = True
            eventually(lambda: len(fills) == 4)
            assert [f.ts for f in fills] == sorted(f.ts for f in fills)
            assert sorted(f.broker_id for f in fills[:2]) == sorted([a.order_id, b.order_id])
        finally:
            broker.close()


def test_the_broker_card_names_the_account_and_labels_the_emulators_simulated_data(connect_alpaca: Any,
                                                                                   emulator: Any) -> None:
    broker = connect_alpaca()
    account = emulator.engine.account().id
    assert f"account={account} data=alpaca market data (simulated)" in repr(broker)
    assert "<span class='wb-sim'>simulated</span>" in broker._repr_html_()
    body = emulator.call(lambda: None) or {"account_number": "PA-REAL", "status": "ACTIVE", "cash": "1"}
    emulator.fail_next("GET", "/v2/account", 200, body)  # an account without the emulator's label: real data
    real = connect_alpaca()
    assert repr(real).endswith("account=PA-REAL data=alpaca market data>")
