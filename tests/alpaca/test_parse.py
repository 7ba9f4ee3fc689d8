"""The pure Alpaca mapping tables and parsers (no network)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import workbench
from workbench.adapters.alpaca import parse as p
from workbench.adapters.alpaca.config import AlpacaConfig, is_loopback
from workbench.core.enums import OrderStatus, OrderType, TimeInForce
from workbench.core.intervals import parse_interval

ORDER = {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": "my-coid-1",
         "created_at": "2024-05-01T14:30:00.123456Z", "updated_at": "2024-05-01T14:30:01.5Z",
         "submitted_at": "2024-05-01T14:30:00.123456Z", "symbol": "AAPL", "notional": None, "qty": "10",
         "filled_qty": "4", "filled_avg_price": "170.25", "order_class": "", "order_type": "limit", "type": "limit",
         "side": "buy", "time_in_force": "gtc", "limit_price": "170.5", "stop_price": None,
         "status": "partially_filled", "extended_hours": False, "trail_percent": None, "trail_price": None}


def test_status_table_covers_every_alpaca_status() -> None:
    from alpaca.trading.enums import OrderStatus as AlpacaStatus

    assert {s.value for s in AlpacaStatus} == set(p.STATUS_MAP)
    assert p.order_status("replaced", Decimal(0), Decimal(5)) is OrderStatus.CANCELLED
    assert p.order_status("calculated", Decimal(5), Decimal(5)) is OrderStatus.FILLED  # refined by the fills
    assert p.order_status("new", Decimal(2), Decimal(5)) is OrderStatus.PARTIALLY_FILLED
    assert p.order_status("canceled", Decimal(2), Decimal(5)) is OrderStatus.CANCELLED
    with pytest.raises(workbench.BrokerError):
        p.order_status("nonsense", Decimal(0), Decimal(1))


def test_parse_order_keeps_decimals_and_raw() -> None:
    order = p.parse_order(ORDER)
    assert order.qty == Decimal("10") and order.filled_qty == Decimal("4")
    assert order.avg_fill_price == Decimal("170.25") and order.limit_price == Decimal("170.5")
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.raw_status == "partially_filled"
    assert order.order_type is OrderType.LIMIT and order.tif is TimeInForce.GTC
    assert order.created_at.tzinfo is not None and order.updated_at > order.created_at
    assert order.raw is ORDER
    assert workbench.Order.model_validate(order.model_dump()) == order  # a complete, valid model
    with pytest.raises(ValueError):
        order.qty = Decimal(1)  # type: ignore[misc]  # frozen like any Order
    notional = p.parse_order({**ORDER, "qty": None, "notional": "250.5", "type": "market", "filled_qty": "0",
                              "status": "accepted", "limit_price": None})
    assert notional.qty is None and notional.notional == Decimal("250.5") and notional.status is OrderStatus.NEW


def test_trade_update_reports_the_quantity_of_that_fill() -> None:
    data = {"event": "partial_fill", "timestamp": "2024-05-01T14:30:01.5Z", "price": "170.20", "qty": "3",
            "execution_id": "1f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "position_qty": "7",
            "order": {**ORDER, "filled_qty": "7"}}
    order, fill = p.parse_trade_update(data)
    assert fill is not None and fill.qty == Decimal(3) and order.filled_qty == Decimal(7)  # not the cumulative 7
    assert fill.price == Decimal("170.20") and fill.exec_id == p.fill_key(order.order_id, Decimal(7))
    assert p.parse_trade_update({**data, "event": "new"})[1] is None


def test_fill_activity_and_stream_event_name_a_fill_alike() -> None:
    activity = {"id": "20240501143000123::8e4f9d2c", "activity_type": "FILL",
                "transaction_time": "2024-05-01T14:30:00.123Z", "type": "partial_fill", "price": "170.2",
                "qty": "6", "side": "buy", "symbol": "AAPL", "leaves_qty": "4", "order_id": ORDER["id"],
                "cum_qty": "6.0"}
    fill = p.parse_fill_activity(activity, "my-coid-1")
    assert fill.exec_id == p.fill_key(ORDER["id"], Decimal("6")) and fill.local_id == "my-coid-1"


def test_positions_accounts_and_clock() -> None:
    short = p.parse_position({"symbol": "TSLA", "qty": "-3", "avg_entry_price": "250.1", "side": "short",
                              "current_price": "249", "market_value": "-747", "unrealized_pl": "3.3"})
    assert short.qty == Decimal(-3) and short.market_price == Decimal(249)
    account = p.parse_account({"id": "2d9a0a5c-6d8b-4d0e-9a39-1f3f0b1f2c11", "account_number": "PA3ABC",
                               "cash": "1000.5", "buying_power": "2001", "equity": "1500", "portfolio_value": "1500",
                               "last_equity": "1400.25"})
    assert account.id == "PA3ABC" and account.cash == Decimal("1000.5")
    assert account.last_equity == Decimal("1400.25")  # Alpaca's own, not today's equity
    clock = p.parse_clock({"timestamp": "2024-05-01T10:30:00.123456789-04:00", "is_open": True,
                           "next_open": "2024-05-02T09:30:00-04:00", "next_close": "2024-05-01T16:00:00-04:00"})
    assert clock.is_open and clock.next_close.hour == 20 and str(clock.ts.tzinfo) == "UTC"


def test_daily_bars_are_labelled_with_the_session_date() -> None:
    bars = [{"t": "2024-04-29T04:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10, "n": 1, "vw": 1.2},
            {"t": "2024-01-02T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10, "n": 1, "vw": 1.2}]
    frame = p.bars_frame(bars, intraday=False, symbol="AAPL")
    assert [str(t) for t in frame.index] == ["2024-01-02 00:00:00+00:00", "2024-04-29 00:00:00+00:00"]
    intraday = p.bars_frame(bars[:1], intraday=True)
    assert str(intraday.index[0]) == "2024-04-29 04:00:00+00:00"
    assert p.bars_frame([], intraday=True).empty


@pytest.mark.parametrize(("interval", "expected"), [("1m", (1, "Min")), ("15m", (15, "Min")), ("1h", (1, "Hour")),
                                                    ("1d", (1, "Day")), ("1wk", (1, "Week")), ("3mo", (3, "Month"))])
def test_timeframes(interval: str, expected: tuple[int, str]) -> None:
    assert p.timeframe(parse_interval(interval)) == expected


def test_timeframe_alpaca_lacks() -> None:
    with pytest.raises(workbench.NotSupported) as info:
        p.timeframe(parse_interval("90m"))
    assert info.value.field == "interval"


def _body(code: int | None, message: str) -> str:
    return json.dumps({"code": code, "message": message}) if code is not None else message


ERRORS = [
    (401, _body(40110000, "request is not authorized"), "", workbench.AuthError, None),
    (403, _body(None, "forbidden."), "", workbench.AuthError, None),
    (403, _body(40310000, "insufficient buying power"), "order", workbench.InsufficientFunds, None),
    (403, _body(40310000, "insufficient qty available for order"), "order", workbench.InsufficientFunds, None),
    (403, _body(40310000, "potential wash trade detected"), "order", workbench.OrderRejected, None),
    (403, _body(None, "subscription does not permit querying recent SIP data"), "", workbench.DataEntitlementError,
     None),
    (404, _body(40410000, "order not found"), "order", workbench.OrderNotFound, None),
    (404, _body(40410000, "position does not exist"), "symbol", workbench.SymbolNotFound, None),
    (404, _body(40410000, "asset not found"), "", workbench.SymbolNotFound, None),
    (422, _body(40010001, "invalid limit_price: not a multiple of the tick size"), "order", workbench.InvalidOrder,
     "limit_price"),
    (422, _body(40010001, "qty must be > 0"), "order", workbench.InvalidOrder, "qty"),
    (422, _body(40010001, "invalid time_in_force for fractional orders"), "order", workbench.InvalidOrder, "tif"),
    (422, _body(42210000, 'order is already in "filled" state'), "order", workbench.OrderRejected, None),
    (422, _body(40010001, "asset 'ZZZZQ' not found"), "order", workbench.SymbolNotFound, None),
    (422, _body(42210000, "market is closed"), "order", workbench.MarketClosed, None),
    (429, _body(42910000, "rate limit exceeded"), "", workbench.RateLimited, None),
    (500, "Internal Server Error", "", workbench.BrokerUnavailable, None),
    (503, _body(None, "service unavailable"), "", workbench.BrokerUnavailable, None),
    (400, _body(40010001, "invalid timeframe"), "", workbench.InvalidInput, "interval"),
    (400, _body(40010001, "bad request"), "symbol", workbench.InvalidInput, "request"),
    # a request for data (or a list), not an order: bad input naming the field, never OrderRejected
    (422, _body(42210000, "invalid start: start 2026-11-26 must be before end 2026-11-01"), "symbol",
     workbench.InvalidInput, "start"),
    (422, _body(42210000, "invalid end"), "symbol", workbench.InvalidInput, "end"),
    (422, _body(42210000, "invalid symbols"), "symbol", workbench.InvalidInput, "symbol"),
    (422, _body(42210000, "invalid timeframe 7Sec"), "symbol", workbench.InvalidInput, "interval"),
    (422, _body(42210000, "unprocessable entity"), "", workbench.InvalidInput, "request"),
    (422, _body(40010001, "invalid side"), "", workbench.InvalidInput, "side"),
]


@pytest.mark.parametrize(("status", "body", "about", "cls", "field"), ERRORS,
                         ids=[f"{e[0]}-{e[3].__name__}" for e in ERRORS])
def test_error_table(status: int, body: str, about: str, cls: type, field: str | None) -> None:
    err = p.error_from_response(status, body, about)
    assert type(err) is cls
    assert err.broker == "alpaca" and err.raw == body
    if field is not None:
        assert err.field == field
    code = json.loads(body)["code"] if body.startswith("{") else None
    assert err.code == (code if code is not None else status)


def test_rate_limit_carries_retry_after() -> None:
    assert p.error_from_response(429, "{}", retry_after=2.5).retry_after == 2.5


def test_fractional_and_notional_orders_are_day_only() -> None:
    p.check_order(workbench.NeutralOrder(symbol="AAPL", side="buy", qty="0.5"))
    p.check_order(workbench.NeutralOrder(symbol="AAPL", side="buy", notional=100))
    for fields in ({"qty": "0.5", "tif": "gtc"}, {"notional": 100, "tif": "ioc"}):
        with pytest.raises(workbench.NotSupported) as info:
            p.check_order(workbench.NeutralOrder(symbol="AAPL", side="buy", **fields))
        assert info.value.field == "tif"


def test_order_request_fields() -> None:
    cls, fields = p.order_request(workbench.NeutralOrder(symbol="aapl", side="sell", qty=2, order_type="trailing_stop",
                                                         trail_percent="1.5", tif="gtc", client_order_id="x-1"))
    assert cls == "TrailingStopOrderRequest"
    assert fields == {"symbol": "AAPL", "side": "sell", "type": "trailing_stop", "time_in_force": "gtc",
                      "client_order_id": "x-1", "qty": 2.0, "trail_percent": 1.5}


@pytest.mark.parametrize("fields", [
    {"qty": 10},
    {"qty": "0.125", "side": "sell"},
    {"notional": "1500.50"},
    {"qty": 3, "order_type": "limit", "limit_price": "170.25", "tif": "gtc"},
    {"qty": 3, "order_type": "stop", "stop_price": "160", "tif": "opg"},
    {"qty": 3, "order_type": "stop_limit", "stop_price": "160", "limit_price": "159.5", "tif": "ioc"},
    {"qty": 3, "order_type": "trailing_stop", "trail_price": "2.5", "side": "sell", "tif": "cls"},
    {"qty": 3, "order_type": "trailing_stop", "trail_percent": "1.5", "side": "sell", "tif": "fok"},
])
def test_order_body_is_what_alpaca_py_sends(fields: dict) -> None:
    """The adapter posts the body itself: it must be what alpaca-py's request class would send for it, and a
    request alpaca-py accepts."""
    import alpaca.trading.requests as requests

    order = workbench.NeutralOrder(**{"symbol": "aapl", "side": "buy", "client_order_id": "wb-1", **fields})
    p.check_order(order)
    cls, body = p.order_request(order)
    sdk = getattr(requests, cls)(**body).to_request_fields()
    assert json.loads(json.dumps(body)) == json.loads(json.dumps(sdk))


def test_live_guard_and_loopback() -> None:
    AlpacaConfig().check_endpoint()  # paper default
    AlpacaConfig(base_url="http://127.0.0.1:8001", stream_url="ws://localhost:8001/stream").check_endpoint()
    for cfg in (AlpacaConfig(paper=False), AlpacaConfig(base_url="https://api.alpaca.markets"),
                AlpacaConfig(base_url="http://10.0.0.5:8001", stream_url="ws://127.0.0.1:1/stream")):
        with pytest.raises(workbench.ConfigError) as info:
            cfg.check_endpoint()
        assert info.value.key == "alpaca.allow_live"
    AlpacaConfig(paper=False, allow_live=True).check_endpoint()
    assert AlpacaConfig(paper=False).base_url == "https://api.alpaca.markets"
    assert is_loopback("http://[::1]:80") and not is_loopback("https://paper-api.alpaca.markets")


def test_config_is_validated_without_the_sdk() -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect("alpaca", settings={"alpaca": {"timeout": -1}})
    assert info.value.key == "alpaca.timeout"
    with pytest.raises(workbench.ConfigError):
        workbench.connect("alpaca", settings={"alpaca": {"base_url": "ftp://x"}})


def test_config_module_imports_no_sdk() -> None:
    import subprocess
    import sys

    code = ("import sys, workbench.adapters.alpaca.config, workbench.adapters.alpaca.parse; "
            "print(sorted(m for m in ('alpaca', 'aiohttp', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
