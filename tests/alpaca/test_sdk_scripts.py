"""Plain alpaca-py scripts (no workbench code on the client side) against the Alpaca emulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.alpaca.conftest import KEY, SECRET
from tests.conftest import eventually

pytest.importorskip("alpaca")

from alpaca.common.exceptions import APIError  # noqa: E402
from alpaca.data.historical import StockHistoricalDataClient  # noqa: E402
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockLatestTradeRequest  # noqa: E402
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit  # noqa: E402
from alpaca.trading.client import TradingClient  # noqa: E402
from alpaca.trading.enums import OrderStatus  # noqa: E402
from alpaca.trading.requests import (GetOrdersRequest, LimitOrderRequest, MarketOrderRequest,  # noqa: E402
                                     ReplaceOrderRequest, StopOrderRequest)
from alpaca.trading.stream import TradingStream  # noqa: E402


@pytest.fixture
def client(emulator: Any) -> TradingClient:
    tc = TradingClient(KEY, SECRET, url_override=emulator.base_url)
    tc._retry_wait = 0
    return tc


@pytest.fixture
def stream_events(emulator: Any) -> Iterator[list[Any]]:
    """A TradingStream (run() in a thread, as alpaca-py's own docs do it) collecting TradeUpdates."""
    events: list[Any] = []
    stream = TradingStream(KEY, SECRET, url_override=emulator.stream_url)

    async def on_update(update: Any) -> None:
        events.append(update)

    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    eventually(lambda: emulator.call(lambda: len(emulator._listeners)) == 1)
    yield events
    stream.stop()
    emulator.disconnect_streams()  # so run() returns at once instead of after its 5 s poll
    thread.join(10)
    assert not thread.is_alive()


def test_account_and_clock(client: TradingClient) -> None:
    account = client.get_account()
    assert float(account.cash) == 100000 and account.status.value == "ACTIVE"
    clock = client.get_clock()
    assert clock.next_open > clock.timestamp and clock.next_close > clock.timestamp
    calendar = client.get_calendar()
    assert calendar and all(day.open < day.close for day in calendar)
    assert client.get_asset("AAPL").symbol == "AAPL"
    with pytest.raises(APIError) as info:
        client.get_asset("ZZZZQ")
    assert info.value.status_code == 404 and info.value.code == 40410000


def test_market_order_fill_and_position(client: TradingClient, emulator: Any) -> None:
    order = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=5, side="buy", time_in_force="day",
                                                   client_order_id="script-1"))
    assert order.client_order_id == "script-1"
    filled = client.get_order_by_client_id("script-1")
    assert filled.status is OrderStatus.FILLED and float(filled.filled_qty) == 5 and filled.id == order.id
    position = client.get_open_position("AAPL")
    assert float(position.qty) == 5 and float(position.avg_entry_price) > 0
    assert [p.symbol for p in client.get_all_positions()] == ["AAPL"]
    with pytest.raises(APIError) as info:  # Alpaca refuses a reused client_order_id
        client.submit_order(MarketOrderRequest(symbol="AAPL", qty=5, side="buy", time_in_force="day",
                                               client_order_id="script-1"))
    assert info.value.status_code == 422
    closed = client.close_position("AAPL")
    assert closed.side.value == "sell" and float(closed.qty) == 5
    with pytest.raises(APIError) as info:
        client.get_open_position("AAPL")
    assert info.value.status_code == 404 and info.value.message == "position does not exist"


def test_limit_replace_cancel(client: TradingClient) -> None:
    order = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=3, side="buy", time_in_force="gtc",
                                                  limit_price=10))
    assert order.status is OrderStatus.NEW
    new = client.replace_order_by_id(order.id, ReplaceOrderRequest(qty=2, limit_price=11))
    assert new.id != order.id and new.replaces == order.id and float(new.qty) == 2 and float(new.limit_price) == 11
    old = client.get_order_by_id(order.id)
    assert old.status is OrderStatus.REPLACED and old.replaced_by == new.id
    client.cancel_order_by_id(new.id)
    assert client.get_order_by_id(new.id).status is OrderStatus.CANCELED
    with pytest.raises(APIError) as info:  # a second cancel: no longer cancelable
        client.cancel_order_by_id(new.id)
    assert info.value.status_code == 422
    open_orders = client.get_orders(GetOrdersRequest(status="open"))
    assert open_orders == []
    everything = client.get_orders(GetOrdersRequest(status="all", symbols=["MSFT"]))
    assert {o.id for o in everything} == {order.id, new.id}
    another = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=1, side="buy", time_in_force="day",
                                                    limit_price=10))
    cancelled = client.cancel_orders()
    assert [c.id for c in cancelled] == [another.id] and cancelled[0].status == 200


def test_bars_with_pagination_and_latest(emulator: Any) -> None:
    data = StockHistoricalDataClient(KEY, SECRET, url_override=emulator.data_url)
    start = datetime.now(UTC) - timedelta(days=10)
    request = StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame(15, TimeFrameUnit.Minute),
                               start=start, adjustment="all", feed="iex")
    bars = data.get_stock_bars(request)
    n_aapl, n_msft = len(bars["AAPL"]), len(bars["MSFT"])
    assert n_aapl > emulator.page_limit and n_aapl == n_msft  # several pages (page_limit 50), concatenated
    pages = [q for m, q in emulator.requests if q.startswith("/v2/stocks/bars?")]
    assert len(pages) == -(-(n_aapl + n_msft) // emulator.page_limit) and "page_token=" in pages[-1]
    stamps = [b.timestamp for b in bars["AAPL"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert "adjustment=all" in pages[0] and "feed=iex" in pages[0]
    trade = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL"))["AAPL"]
    quote = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert quote.bid_price <= trade.price <= quote.ask_price
    assert data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="ZZZZQ")) == {}
    daily = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Day, start=start))
    assert all(b.timestamp.hour in (4, 5) for b in daily["AAPL"])  # New York midnight, as Alpaca stamps them


def test_stream_events(client: TradingClient, stream_events: list[Any], emulator: Any) -> None:
    limit = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day",
                                                  limit_price=10))
    client.cancel_order_by_id(limit.id)
    market = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side="buy", time_in_force="day"))
    eventually(lambda: len(stream_events) >= 4)
    seen = [(u.event, str(u.order.id)) for u in stream_events]
    assert seen == [("new", str(limit.id)), ("canceled", str(limit.id)), ("new", str(market.id)),
                    ("fill", str(market.id))]
    fill = stream_events[-1]
    assert fill.qty == 2 and fill.price > 0 and fill.position_qty == 2 and fill.execution_id is not None
    assert fill.order.status is OrderStatus.FILLED and fill.timestamp is not None


def test_wrong_keys_are_refused(emulator: Any) -> None:
    bad = TradingClient(KEY, "wrong-secret", url_override=emulator.base_url)
    with pytest.raises(APIError) as info:
        bad.get_account()
    assert info.value.status_code == 401

    async def handshake() -> dict[str, Any]:
        import json

        import websockets

        async with websockets.connect(emulator.stream_url) as ws:
            await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "nope"}}))
            return json.loads(await ws.recv())

    reply = asyncio.run(handshake())
    assert reply == {"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}}


@pytest.mark.parametrize(("change", "status"), [({"qty": 100_000}, 403), ({"limit_price": 10.001}, 422)],
                         ids=["buying-power", "tick-size"])
def test_a_refused_replace_leaves_the_order_working(client: TradingClient, stream_events: list[Any],
                                                    emulator: Any, change: dict, status: int) -> None:
    """Alpaca refuses the replacement and the original goes on working (it is not cancelled)."""
    order = client.submit_order(LimitOrderRequest(symbol="MSFT", qty=3, side="buy", time_in_force="gtc",
                                                  limit_price=10))
    with pytest.raises(APIError) as info:
        client.replace_order_by_id(order.id, ReplaceOrderRequest(**change))
    assert info.value.status_code == status
    still = client.get_order_by_id(order.id)
    assert still.status is OrderStatus.NEW and still.replaced_by is None and float(still.limit_price) == 10
    assert [o.id for o in client.get_orders(GetOrdersRequest(status="open"))] == [order.id]
    marker = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day"))
    eventually(lambda: any(u.order.id == marker.id for u in stream_events))  # everything before it has arrived
    assert [u.event for u in stream_events if u.order.id == order.id] == ["new"]


def test_replacing_a_stop_for_the_whole_position(client: TradingClient, stream_events: list[Any]) -> None:
    """The replacement is checked against the account without the order it replaces (no double count)."""
    client.submit_order(MarketOrderRequest(symbol="AAPL", qty=5, side="buy", time_in_force="day"))
    stop = client.submit_order(StopOrderRequest(symbol="AAPL", qty=5, side="sell", time_in_force="gtc",
                                                stop_price=1))
    new = client.replace_order_by_id(stop.id, ReplaceOrderRequest(stop_price=2))
    assert new.replaces == stop.id and float(new.stop_price) == 2 and float(new.qty) == 5
    old = client.get_order_by_id(stop.id)
    assert old.status is OrderStatus.REPLACED and old.replaced_by == new.id
    eventually(lambda: any(u.event == "replaced" for u in stream_events))
    replaced = next(u for u in stream_events if u.event == "replaced")
    assert replaced.order.id == stop.id and replaced.order.status is OrderStatus.REPLACED  # the old order
    assert not any(u.event == "canceled" for u in stream_events)


@pytest.mark.parametrize("request_fields", [
    {"qty": 0.5, "time_in_force": "gtc"},  # fractional: DAY only
    {"notional": 100, "time_in_force": "gtc"},  # notional: DAY only
    {"qty": 1.5, "time_in_force": "ioc"},
])
def test_fractional_and_notional_orders_are_day_only(client: TradingClient, emulator: Any,
                                                     request_fields: dict[str, Any]) -> None:
    """As Alpaca: a plain alpaca-py script rehearsed on the emulator is refused where Alpaca refuses it."""
    before = len(emulator.engine.orders())
    with pytest.raises(APIError) as info:
        client.submit_order(MarketOrderRequest(symbol="AAPL", side="buy", **request_fields))
    assert info.value.status_code == 422 and "DAY only" in str(info.value)
    assert len(emulator.engine.orders()) == before  # nothing recorded
    day = client.submit_order(MarketOrderRequest(symbol="AAPL", side="buy", **{**request_fields,
                                                                               "time_in_force": "day"}))
    assert day.status == OrderStatus.FILLED


def test_qty_available_leaves_out_what_open_orders_hold(client: TradingClient) -> None:
    client.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side="buy", time_in_force="day"))
    client.submit_order(LimitOrderRequest(symbol="AAPL", qty=4, side="sell", time_in_force="gtc", limit_price=9999))
    position = client.get_open_position("AAPL")
    assert float(position.qty) == 10 and float(position.qty_available) == 6


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/orders", {"status": "bogus"}, 422), ("/orders", {"direction": "sideways"}, 422),
    ("/no-such-route", None, 404),
])
def test_bad_requests_get_alpacas_json_error_body(client: TradingClient, path: str, params: Any,
                                                  status: int) -> None:
    with pytest.raises(APIError) as info:
        client.get(path, params)
    assert info.value.status_code == status and info.value.code in (40410000, 42210000)
