"""IB mapping tables, the live-trading guard and the historical-data pacer (pure code, no gateway)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

import workbench
from workbench import OrderStatus as S
from workbench.adapters.ib.config import IBConfig
from workbench.adapters.ib.parse import (
    STATUS_MAP,
    bar_size,
    client_id_in_use,
    error_from_ib,
    history_chunks,
    order_status,
    snapshot,
    to_decimal,
)
from workbench.core.intervals import parse_interval

D = Decimal


@pytest.mark.parametrize(("raw", "filled", "qty", "expected"), [
    ("PendingSubmit", 0, 10, S.PENDING_NEW), ("PreSubmitted", 0, 10, S.NEW), ("Submitted", 0, 10, S.NEW),
    ("Submitted", 4, 10, S.PARTIALLY_FILLED),  # IB has no partial status: derived from quantities
    ("Submitted", 10, 10, S.FILLED), ("Filled", 10, 10, S.FILLED), ("PendingCancel", 0, 10, S.PENDING_CANCEL),
    ("Cancelled", 0, 10, S.CANCELLED), ("Cancelled", 4, 10, S.CANCELLED), ("ApiCancelled", 0, 10, S.CANCELLED),
    ("Inactive", 0, 10, S.REJECTED),
])
def test_status_mapping(raw: str, filled: int, qty: int, expected: S) -> None:
    assert order_status(raw, D(filled), D(qty)) is expected


def test_every_ib_status_is_mapped_and_unknown_ones_are_errors() -> None:
    assert set(STATUS_MAP) >= {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "ApiUpdate",
                               "PendingCancel", "Cancelled", "ApiCancelled", "Filled", "Inactive"}
    with pytest.raises(workbench.BrokerUnavailable):
        order_status("Bogus", D(0), D(1))


@pytest.mark.parametrize(("code", "cls"), [
    (200, workbench.SymbolNotFound), (201, workbench.OrderRejected), (162, workbench.RateLimited),
    (354, workbench.DataEntitlementError), (10167, workbench.DataEntitlementError),
    (10168, workbench.DataEntitlementError), (1100, workbench.BrokerUnavailable),
    (2110, workbench.BrokerUnavailable), (504, workbench.BrokerUnavailable), (326, workbench.ConfigError),
    (10147, workbench.OrderNotFound),
])
def test_error_codes_map_to_typed_errors(code: int, cls: type) -> None:
    err = error_from_ib(code, "message from IB", req_id=5)
    assert type(err) is cls and err.code == code and err.raw == "message from IB" and err.broker == "ib"


def test_notices_and_restorations_are_not_errors() -> None:
    assert all(error_from_ib(code, "ok") is None for code in (202, 2104, 2106, 2158, 1101, 1102))
    assert error_from_ib(326, "client id in use").key == "ib.client_id"


def test_live_endpoints_need_allow_live() -> None:
    for port in (4001, 7496):
        with pytest.raises(workbench.ConfigError) as info:
            IBConfig(port=port).check_endpoint()
        assert info.value.key == "ib.port"
        IBConfig(port=port, allow_live=True).check_endpoint()
    IBConfig(port=4002).check_endpoint()
    IBConfig().check_account("DU1234567")
    with pytest.raises(workbench.ConfigError):
        IBConfig().check_account("U1234567")
    IBConfig(allow_live=True).check_account("U1234567")


def test_bar_sizes() -> None:
    assert [bar_size(parse_interval(i)) for i in ("1m", "5m", "1h", "1d", "1wk", "1mo")] == [
        "1 min", "5 mins", "1 hour", "1 day", "1 week", "1 month"]
    with pytest.raises(workbench.NotSupported):
        bar_size(parse_interval("90m"))


def test_history_chunks_cover_the_range_newest_first() -> None:
    end = pd.Timestamp("2026-11-20 21:00", tz="UTC")
    chunks = history_chunks(end - pd.Timedelta(days=10), end, parse_interval("1m"))
    assert [c.duration for c in chunks] == ["1 D"] * 10 and chunks[0].end == end
    assert chunks[-1].end == end - pd.Timedelta(days=9) and chunks[0].end_text() == "20261120 21:00:00 UTC"
    daily = history_chunks(end - pd.Timedelta(days=800), end, parse_interval("1d"))
    assert [c.duration for c in daily] == ["1 Y", "1 Y", "70 D"]
    assert [c.duration for c in history_chunks(end - pd.Timedelta(hours=5), end, parse_interval("1d"))] == ["1 D"]


def test_unset_ib_doubles_become_zero() -> None:
    assert to_decimal(1.7976931348623157e308) == 0 and to_decimal(187.25) == D("187.25") and to_decimal("") == 0


def test_margin_refusals_are_insufficient_funds() -> None:
    ib_text = ("Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR "
               "EQUITY WITH LOAN VALUE [1000.00 USD] MUST EXCEED THE INITIAL MARGIN [5000.00 USD]")
    assert type(error_from_ib(201, ib_text, 7)) is workbench.InsufficientFunds
    assert type(error_from_ib(201, "Order rejected - reason:The contract is not available for trading", 7)) \
        is workbench.OrderRejected


def test_client_id_in_use_is_a_final_config_error_naming_the_id() -> None:
    error = client_id_in_use(7, "Unable to connect as the client id is already in use.")
    assert isinstance(error, workbench.ConfigError) and not error.retryable
    assert error.key == "ib.client_id" and error.code == 326 and "client id 7 " in str(error)


def test_snapshot_is_detached_from_the_live_sdk_object() -> None:
    ib_async = pytest.importorskip("ib_async")
    trade = ib_async.Trade(ib_async.Stock("AAPL", "SMART", "USD"), ib_async.Order(orderId=3, orderRef="x"),
                           ib_async.OrderStatus(status="Submitted"))
    raw = snapshot(trade)
    trade.orderStatus.status = "Filled"
    trade.fills.append(None)
    assert raw["orderStatus"]["status"] == "Submitted" and raw["fills"] == () and raw["order"]["orderRef"] == "x"
    assert "statusEvent" not in raw  # fields only, no SDK machinery


def test_order_fields_of_a_trailing_stop() -> None:
    from workbench.adapters.ib.parse import order_fields
    from workbench.core.models import NeutralOrder

    by_amount = NeutralOrder(symbol="AAPL", side="sell", qty=10, order_type="trailing_stop", trail_price="1.5",
                             tif="gtc")
    assert order_fields(by_amount) == {"action": "SELL", "totalQuantity": 10.0, "orderType": "TRAIL", "tif": "GTC",
                                       "auxPrice": 1.5}
    by_percent = NeutralOrder(symbol="AAPL", side="buy", qty=3, order_type="trailing_stop", trail_percent="2")
    assert order_fields(by_percent) == {"action": "BUY", "totalQuantity": 3.0, "orderType": "TRAIL", "tif": "DAY",
                                        "trailingPercent": 2.0}
    stop_limit = NeutralOrder(symbol="AAPL", side="buy", qty=1, order_type="stop_limit", stop_price=10,
                              limit_price="10.5")
    assert order_fields(stop_limit) == {"action": "BUY", "totalQuantity": 1.0, "orderType": "STP LMT", "tif": "DAY",
                                        "lmtPrice": 10.5, "auxPrice": 10.0}
