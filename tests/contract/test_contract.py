"""Behaviour every adapter must show, through the public notebook facade."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pandas as pd
import pytest

import workbench
from workbench.core import frames
from tests.conftest import eventually

SYMBOL = "AAPL"


def _far_limit(broker: workbench.Broker) -> Decimal:
    """A buy limit far below the market: it rests."""
    return (broker.get_market_price(SYMBOL) * Decimal("0.5")).quantize(Decimal("0.01"))


def _assert_schema(df: pd.DataFrame, schema: dict[str, str]) -> None:
    assert list(df.columns) == list(schema)
    for col, dtype in schema.items():
        if dtype == "float64":
            assert df[col].dtype == "float64", col
        elif dtype.startswith("datetime64"):
            assert str(df[col].dtype).startswith("datetime64") and str(df[col].dt.tz) == "UTC", col


def test_connection_lifecycle(broker: workbench.Broker) -> None:
    assert broker.is_connected()
    broker.connect()  # idempotent
    assert broker.is_connected()
    broker.disconnect()
    assert not broker.is_connected()
    with pytest.raises(workbench.BrokerUnavailable):
        broker.place_market_order(SYMBOL, 1, "buy")
    broker.connect()
    assert broker.is_connected()


def test_account(broker: workbench.Broker) -> None:
    account = broker.get_account()
    assert isinstance(account, workbench.AccountInfo)
    assert account.currency == "USD"
    assert account.cash > 0 and account.equity >= account.cash - Decimal("0.01")
    assert account.buying_power <= account.cash


def test_history_schema(broker: workbench.Broker) -> None:
    df = broker.get_history(SYMBOL, days=30)
    assert len(df) > 10
    _assert_schema(df, frames.HISTORY_COLUMNS)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC" and df.index.name == "ts"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert df.attrs["broker"] == broker.name and df.attrs["source"]
    assert df.attrs["interval"] == "1d" and df.attrs["symbol"] == SYMBOL
    intraday = broker.get_history(SYMBOL, days=3, interval="15m")
    _assert_schema(intraday, frames.HISTORY_COLUMNS)
    assert (intraday.index[1:] - intraday.index[:-1]).min() == pd.Timedelta(minutes=15)


def test_price_and_unknown_symbol(broker: workbench.Broker) -> None:
    price = broker.get_market_price(SYMBOL)
    assert isinstance(price, Decimal) and price > 0
    quote = broker.get_quote(SYMBOL)
    assert quote.symbol == SYMBOL and quote.bid <= quote.last <= quote.ask
    with pytest.raises(workbench.SymbolNotFound):
        broker.get_market_price("ZZZZQ")
    with pytest.raises(workbench.SymbolNotFound):
        broker.place_market_order("ZZZZQ", 1, "buy")


def test_empty_tables_have_schema(broker: workbench.Broker) -> None:
    positions = broker.get_positions()
    assert positions.empty and positions.index.name == "symbol"
    _assert_schema(positions, frames.POSITION_COLUMNS)
    fills = broker.get_fills()
    assert fills.empty and isinstance(fills.index, pd.DatetimeIndex) and str(fills.index.tz) == "UTC"
    _assert_schema(fills, frames.FILL_COLUMNS)
    orders = broker.get_orders_history()
    assert orders.empty and orders.index.name == "order_id"
    _assert_schema(orders, frames.ORDER_COLUMNS)
    assert broker.get_position(SYMBOL) is None


def test_market_order_fills_and_shows_everywhere(broker: workbench.Broker) -> None:
    seen: list[workbench.FillEvent] = []
    stop = broker.on_fill(seen.append)
    order = broker.place_market_order(SYMBOL, 3, "buy")
    assert order.symbol == SYMBOL and order.side is workbench.Side.BUY and order.qty == 3
    final = eventually(lambda: (o := broker.get_order(order.order_id)).status.is_terminal and o)
    assert final.status is workbench.OrderStatus.FILLED and final.filled_qty == 3 and final.avg_fill_price > 0
    eventually(lambda: len(seen) >= 1)
    stop()
    assert sum(f.qty for f in seen) == 3 and all(f.broker_id == order.order_id for f in seen)
    fills = broker.get_fills()
    assert fills["qty"].sum() == 3 and set(fills["order_id"]) == {order.order_id}
    positions = broker.get_positions()
    assert positions.loc[SYMBOL, "qty"] == 3
    assert positions.attrs["broker"] == broker.name
    position = broker.get_position(SYMBOL)
    assert position is not None and position.qty == 3
    history = broker.get_orders_history()
    assert order.order_id in history.index and history.loc[order.order_id, "status"] == "FILLED"
    assert len(broker.get_fills(since="2000-01-01")) == len(fills) and broker.get_fills(since="2200-01-01").empty
    assert order.order_id in broker.get_orders_history(limit=5, since="2000-01-01").index
    account = broker.get_account()
    assert account.cash < Decimal(100000)


def test_resting_limit_then_cancel(broker: workbench.Broker) -> None:
    order = broker.place_limit_order(SYMBOL, 2, "buy", _far_limit(broker))
    assert order.status.is_open and order.filled_qty == 0
    account = broker.get_account()
    assert account.buying_power <= account.cash  # (the paper engine's own tests check the exact reservation)
    cancelled = broker.cancel_order(order.order_id)
    final = eventually(lambda: (o := broker.get_order(order.order_id)).status.is_terminal and o)
    assert final.status is workbench.OrderStatus.CANCELLED and final.filled_qty == 0
    assert cancelled.order_id == order.order_id
    assert broker.get_fills().empty


def test_resubmitting_a_client_order_id_never_fills_twice(broker: workbench.Broker) -> None:
    request = workbench.NeutralOrder(symbol=SYMBOL, side="buy", qty=1, client_order_id="contract-dup-1")
    first = broker.place_order(request)
    eventually(lambda: broker.get_order(first.order_id).status.is_terminal)
    second = broker.place_order(request)
    assert second.order_id == first.order_id
    assert len(broker.get_fills()) == 1
    assert broker.get_order("contract-dup-1").order_id == first.order_id  # lookup by client id


def test_place_order_accepts_dicts_and_keywords(broker: workbench.Broker) -> None:
    limit = str(_far_limit(broker))
    a = broker.place_order({"symbol": "msft", "side": "BUY", "qty": 1, "order_type": "limit", "limit_price": limit})
    b = broker.place_order(symbol="MSFT", side="buy", qty="1", order_type="LMT", limit_price=limit, tif="gtc")
    assert a.symbol == b.symbol == "MSFT" and b.tif is workbench.TimeInForce.GTC
    for o in (a, b):
        broker.cancel_order(o.order_id)


def test_unknown_order(broker: workbench.Broker) -> None:
    with pytest.raises(workbench.OrderNotFound):
        broker.get_order("no-such-order")
    with pytest.raises(workbench.OrderNotFound):
        broker.cancel_order("no-such-order")


def test_clock(broker: workbench.Broker) -> None:
    clock = broker.get_clock()
    assert clock.next_open > clock.ts and clock.next_close > clock.ts
    assert clock.is_open == (clock.next_close < clock.next_open)
    assert broker.is_market_open() is broker.get_clock().is_open


def test_market_data_subscription(broker: workbench.Broker) -> None:
    quotes: list[workbench.Quote] = []
    sub = broker.subscribe_market_data([SYMBOL], quotes.append)
    eventually(lambda: quotes)
    sub.cancel()
    assert quotes[0].symbol == SYMBOL and quotes[0].last > 0
    with pytest.raises(workbench.SymbolNotFound):
        broker.subscribe_market_data(["ZZZZQ"], quotes.append)


def test_sync_api_inside_a_running_event_loop(broker: workbench.Broker) -> None:
    """What a Jupyter cell does: call the sync API while the thread's own loop is running."""

    async def cell() -> tuple[Decimal, pd.DataFrame, Decimal]:
        price = broker.get_market_price(SYMBOL)
        frame = broker.get_history(SYMBOL, days=5)
        awaited = await broker.get_market_price_async(SYMBOL)  # and the async twin, awaited on this loop
        return price, frame, awaited

    price, frame, awaited = asyncio.run(cell())
    assert price > 0 and awaited > 0 and not frame.empty


def test_sync_api_from_threads(broker: workbench.Broker) -> None:
    results: list[Decimal] = []
    threads = [threading.Thread(target=lambda: results.append(broker.get_market_price(SYMBOL))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4 and all(p > 0 for p in results)


def test_capabilities_are_declared(broker: workbench.Broker) -> None:
    caps = broker.capabilities
    assert workbench.OrderType.MARKET in caps.order_types and workbench.OrderType.LIMIT in caps.order_types
    assert workbench.TimeInForce.DAY in caps.tifs


def test_a_refused_order_is_refused_again_when_resubmitted(broker: workbench.Broker) -> None:
    """Refused on placement (here: far beyond the buying power) raises every time the same client_order_id is
    sent, and nothing is recorded: no order, no fill, no order event."""
    seen: list[workbench.Order] = []
    stop = broker.on_order(seen.append) if workbench.Feature.STREAM_ORDERS in broker.capabilities.features else None
    request = workbench.NeutralOrder(symbol=SYMBOL, side="buy", qty=1_000_000, client_order_id="contract-refused")
    errors = []
    for _ in range(2):
        with pytest.raises(workbench.OrderRejected) as info:
            broker.place_order(request)
        errors.append(type(info.value))
    assert errors[0] is errors[1] and issubclass(errors[0], workbench.InsufficientFunds)
    with pytest.raises(workbench.OrderNotFound):
        broker.get_order("contract-refused")
    assert broker.get_orders_history().empty and broker.get_fills().empty
    fits = broker.place_market_order(SYMBOL, 1, "buy")  # the broker is fine afterwards
    if stop is not None:
        eventually(lambda: any(o.order_id == fits.order_id for o in seen))
        stop()
        assert {o.client_order_id for o in seen} == {fits.client_order_id}


def test_order_stream_follows_an_order_to_cancelled(broker: workbench.Broker) -> None:
    """on_order: one snapshot per change, each a legal forward transition, from NEW to CANCELLED."""
    if workbench.Feature.STREAM_ORDERS not in broker.capabilities.features:
        pytest.skip(f"{broker.name} does not advertise STREAM_ORDERS")
    seen: list[workbench.Order] = []
    stop = broker.on_order(seen.append)
    order = broker.place_limit_order(SYMBOL, 2, "buy", _far_limit(broker))
    broker.cancel_order(order.order_id)
    mine = lambda: [o for o in seen if o.order_id == order.order_id]  # noqa: E731
    eventually(lambda: mine() and mine()[-1].status is workbench.OrderStatus.CANCELLED)
    stop()
    statuses = [o.status for o in mine()]
    assert statuses[0] is workbench.OrderStatus.NEW  # (a refused pending cancel may fall back to NEW on IB)
    assert all(a.can_become(b) and a is not b for a, b in zip(statuses, statuses[1:]))
    assert all(isinstance(o, workbench.Order) and o.client_order_id == order.client_order_id for o in mine())


def test_several_symbols_come_back_as_one_long_frame(broker: workbench.Broker) -> None:
    """The same long (symbol, ts) frame the yfinance provider returns for a list, on every adapter."""
    wanted = ["AAPL", "MSFT", "SPY"]
    end = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=1)  # finished bars only: stable values
    long = broker.get_history(wanted + ["aapl"], days=10, end=end)
    assert list(long.index.names) == ["symbol", "ts"] and long.index.is_monotonic_increasing
    _assert_schema(long, frames.HISTORY_COLUMNS)
    assert list(dict.fromkeys(long.index.get_level_values("symbol"))) == sorted(wanted)
    assert long.attrs["symbols"] == wanted and long.attrs["broker"] == broker.name and long.attrs["interval"] == "1d"
    one = broker.get_history("MSFT", days=10, end=end)
    pd.testing.assert_frame_equal(long.loc["MSFT"], one, check_freq=False)
    assert long.index.get_level_values("ts").max() < end  # end is exclusive
    try:  # an unknown symbol in a list is treated as the adapter treats it alone
        alone = broker.get_history("ZZZZQ", days=10)
    except workbench.SymbolNotFound:
        with pytest.raises(workbench.SymbolNotFound):
            broker.get_history(["AAPL", "ZZZZQ"], days=10)
    else:
        assert alone.empty and "ZZZZQ" not in broker.get_history(["AAPL", "ZZZZQ"], days=10).index.get_level_values(0)
    with pytest.raises(workbench.InvalidInput) as info:
        broker.get_history([], days=10)
    assert info.value.field == "symbol"


def test_close_is_final_and_stops_what_the_broker_started(broker: workbench.Broker) -> None:
    fills: list[workbench.FillEvent] = []
    broker.on_fill(fills.append)
    sub = broker.subscribe_market_data([SYMBOL], lambda quote: None)
    adapter = broker.adapter
    broker.close()
    assert broker.state == "closed" and not broker.is_connected() and adapter.lifecycle == "closed"
    assert not sub.active and not adapter.is_connected()
    for call in (lambda: broker.get_account(), lambda: broker.place_market_order(SYMBOL, 1, "buy"),
                 lambda: broker.get_history(SYMBOL, days=5), lambda: broker.connect(),
                 lambda: broker.on_fill(fills.append)):
        with pytest.raises(workbench.BrokerClosed):
            call()
    # The adapter itself (what ``broker.adapter`` users hold) refuses with the same typed error.
    from workbench.core.runner import get_runner

    for coro in (adapter.get_account(), adapter.get_positions(), adapter.connect()):
        with pytest.raises(workbench.BrokerClosed):
            get_runner().run(coro, 10)
    broker.close()  # idempotent


def test_a_trailing_stop_reads_back_as_one(broker: workbench.Broker) -> None:
    """Where TRAILING_STOP is offered, a resting one reads back with its trail and cancels; elsewhere it is
    refused before anything is sent."""
    request = workbench.NeutralOrder(symbol=SYMBOL, side="buy", qty=1, order_type="trailing_stop",
                                     trail_percent=Decimal("20"), tif="gtc")  # a buy stop 20 % above: it rests
    if workbench.OrderType.TRAILING_STOP not in broker.capabilities.order_types:
        with pytest.raises(workbench.NotSupported):
            broker.place_order(request)
        assert broker.get_orders_history().empty
        return
    order = broker.place_order(request)
    assert order.status.is_open and order.order_type is workbench.OrderType.TRAILING_STOP
    shown = broker.get_order(order.order_id)
    assert (shown.trail_percent, shown.trail_price) == (Decimal("20"), None)
    broker.cancel_order(order.order_id)
    final = eventually(lambda: (o := broker.get_order(order.order_id)).status.is_terminal and o)
    assert final.status is workbench.OrderStatus.CANCELLED and broker.get_fills().empty
