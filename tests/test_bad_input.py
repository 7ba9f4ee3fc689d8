"""Every bad input gets a typed error naming the culprit, and nothing is written to the ledger.

All calls go through the public facade (``workbench.connect``). After each failure the paper ledger is
opened read-only with the stdlib ``sqlite3`` and its ``orders`` / ``fills`` tables are counted; a ledger
file that does not exist counts as "nothing written".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.adapters.paper.adapter import PaperAdapter

# -- helpers ----------------------------------------------------------------------------------


def ledger_rows(db: str | Path) -> tuple[int, int]:
    """(orders, fills) in the ledger at ``db``, read through a separate read-only connection."""
    path = Path(db)
    if not path.exists():
        return 0, 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        orders = con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] if "orders" in tables else 0
        fills = con.execute("SELECT COUNT(*) FROM fills").fetchone()[0] if "fills" in tables else 0
    finally:
        con.close()
    return orders, fills


def assert_nothing_written(db: str | Path) -> None:
    assert ledger_rows(db) == (0, 0), f"the failed call wrote to the ledger {db}"


def db_of(settings_dict: dict) -> Path:
    return Path(settings_dict["paper"]["db_path"])


@pytest.fixture
def broker(settings_dict: dict) -> Iterator[workbench.Broker]:
    session = workbench.connect(settings=settings_dict)
    try:
        yield session
    finally:
        session.close()


def expect_untouched(broker: workbench.Broker, db: Path) -> None:
    """Nothing in the ledger file, and nothing visible through the broker either."""
    assert_nothing_written(db)
    assert broker.get_orders_history().empty
    assert broker.get_fills().empty
    assert broker.get_positions().empty
    assert broker.get_account().cash == Decimal(100000)


# -- orders: InvalidOrder naming the field ----------------------------------------------------

BAD_QTYS = [0, -1, Decimal("-0.5"), "0", Decimal("-0"), -0.0001, Decimal("NaN"), float("inf"), "-inf", "abc", None]

PLACE_CALLS: dict[str, Callable[..., Any]] = {
    "place_order": lambda b, qty: b.place_order(symbol="AAPL", qty=qty, side="buy"),
    "place_order_dict": lambda b, qty: b.place_order({"symbol": "AAPL", "qty": qty, "side": "buy"}),
    "place_market_order": lambda b, qty: b.place_market_order("AAPL", qty, "buy"),
    "place_limit_order": lambda b, qty: b.place_limit_order("AAPL", qty, "sell", Decimal("100")),
}


@pytest.mark.parametrize("call", PLACE_CALLS.values(), ids=PLACE_CALLS.keys())
@pytest.mark.parametrize("qty", BAD_QTYS, ids=repr)
def test_bad_qty_is_invalid_order_on_qty(broker: workbench.Broker, settings_dict: dict, call: Callable, qty: Any):
    with pytest.raises(workbench.InvalidOrder) as info:
        call(broker, qty)
    assert info.value.field == "qty"
    assert "qty" in str(info.value)
    expect_untouched(broker, db_of(settings_dict))


BAD_ORDERS: list[tuple[str, Callable[[workbench.Broker], Any], str]] = [
    ("limit_without_price_kw", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", order_type="limit"),
     "limit_price"),
    ("limit_without_price_dict", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "BUY",
                                                          "order_type": "LIMIT"}), "limit_price"),
    ("limit_order_price_none", lambda b: b.place_limit_order("AAPL", 1, "buy", None), "limit_price"),
    ("limit_order_price_zero", lambda b: b.place_limit_order("AAPL", 1, "buy", 0), "limit_price"),
    ("limit_order_price_negative", lambda b: b.place_limit_order("AAPL", 1, "buy", Decimal("-3")), "limit_price"),
    ("limit_order_price_nan", lambda b: b.place_limit_order("AAPL", 1, "buy", float("nan")), "limit_price"),
    ("stop_limit_without_limit", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", order_type="stop_limit",
                                                         stop_price=100), "limit_price"),
    ("limit_on_market", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", limit_price=100), "limit_price"),
    ("limit_sub_penny", lambda b: b.place_limit_order("AAPL", 1, "buy", Decimal("100.005")), "limit_price"),
    ("stop_sub_penny", lambda b: b.place_order(symbol="AAPL", qty=1, side="sell", order_type="stop",
                                               stop_price=Decimal("99.999")), "stop_price"),
    ("stop_on_market", lambda b: b.place_market_order("AAPL", 1, "buy", stop_price=100), "stop_price"),
    ("stop_on_market_dict", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "buy",
                                                     "order_type": "market", "stop_price": "100"}), "stop_price"),
    ("stop_on_limit", lambda b: b.place_limit_order("AAPL", 1, "buy", 100, stop_price=90), "stop_price"),
    ("stop_without_stop", lambda b: b.place_order(symbol="AAPL", qty=1, side="sell", order_type="stop"),
     "stop_price"),
    ("bad_side", lambda b: b.place_market_order("AAPL", 1, "hold"), "side"),
    ("bad_order_type", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", order_type="peg"), "order_type"),
    ("bad_tif", lambda b: b.place_market_order("AAPL", 1, "buy", tif="forever"), "tif"),
    ("empty_symbol", lambda b: b.place_market_order("", 1, "buy"), "symbol"),
    ("bad_symbol_chars", lambda b: b.place_market_order("$$$", 1, "buy"), "symbol"),
    ("symbol_not_str", lambda b: b.place_order({"symbol": 123, "qty": 1, "side": "buy"}), "symbol"),
    ("unknown_field", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "buy", "colour": "red"}),
     "colour"),
    ("bad_client_order_id", lambda b: b.place_market_order("AAPL", 1, "buy", client_order_id="has space"),
     "client_order_id"),
    ("broker_nope_dict", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "buy", "broker": "nope"}),
     "broker"),
    ("broker_nope_kw", lambda b: b.place_market_order("AAPL", 1, "buy", broker="nope"), "broker"),
    ("broker_nope_place_order_kw", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", broker="nope"),
     "broker"),
    ("payload_not_dict", lambda b: b.place_order(["AAPL", 1, "buy"]), "order"),
    ("order_and_fields", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "buy"}, qty=2), "order"),
]


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in BAD_ORDERS], ids=[n for n, _, _ in BAD_ORDERS])
def test_bad_order_is_invalid_order_naming_field(broker: workbench.Broker, settings_dict: dict, call: Callable,
                                                 field: str):
    with pytest.raises(workbench.InvalidOrder) as info:
        call(broker)
    assert info.value.field == field
    assert isinstance(info.value, workbench.InvalidInput)
    expect_untouched(broker, db_of(settings_dict))


@pytest.mark.parametrize(("call", "text"), [
    (lambda b: b.place_market_order("", 1, "buy"), "symbol: not a valid symbol: ''"),
    (lambda b: b.place_market_order("AAPL", Decimal(10**13), "buy"),
     "qty: Input should be less than or equal to 1E+12 (got '10000000000000')"),
    (lambda b: b.place_market_order("AAPL", Decimal("1e-10"), "buy"), "qty: must be at least 1E-9 (got '1E-10')"),
], ids=["empty_symbol", "huge_decimal_qty", "tiny_decimal_qty"])
def test_bad_order_text_is_plain_words_not_library_text(broker: workbench.Broker, settings_dict: dict,
                                                        call: Callable, text: str):
    with pytest.raises(workbench.InvalidOrder) as info:
        call(broker)
    assert info.value.message == text  # no pydantic "Value error," prefix, no Python repr of the value
    expect_untouched(broker, db_of(settings_dict))


def test_bad_setting_text_has_no_library_prefix(settings_dict: dict):
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={**settings_dict, "paper": {**settings_dict["paper"], "db_path": ""}})
    assert info.value.message.startswith("invalid setting: the path is empty (got '')")


def test_async_variant_validates_the_same(broker: workbench.Broker, settings_dict: dict):
    import asyncio

    with pytest.raises(workbench.InvalidOrder) as info:
        asyncio.run(broker.place_market_order_async("AAPL", 0, "buy"))
    assert info.value.field == "qty"
    expect_untouched(broker, db_of(settings_dict))


def test_broker_keyword_naming_this_broker_is_accepted(broker: workbench.Broker, settings_dict: dict):
    """``broker`` is a NeutralOrder field, so the keyword forms must accept it like the dict form does."""
    order = broker.place_market_order("AAPL", 1, "buy", broker="paper")
    assert order.filled_qty == Decimal(1)
    assert ledger_rows(db_of(settings_dict)) == (1, 1)


def test_unknown_broker_name_in_order_lists_known_brokers(broker: workbench.Broker):
    with pytest.raises(workbench.InvalidOrder) as info:
        broker.place_order({"symbol": "AAPL", "qty": 1, "side": "buy", "broker": "nope"})
    for name in workbench.known_adapters():
        assert name in str(info.value)


# -- unknown symbols --------------------------------------------------------------------------

UNKNOWN_SYMBOL_CALLS: dict[str, Callable[[workbench.Broker], Any]] = {
    "place_order": lambda b: b.place_order(symbol="ZZZZ", qty=1, side="buy"),
    "place_market_order": lambda b: b.place_market_order("ZZZZ", 1, "buy"),
    "place_limit_order": lambda b: b.place_limit_order("zzzz", 1, "buy", 10),
    "stop_order": lambda b: b.place_order({"symbol": "ZZZZ", "qty": 1, "side": "sell", "order_type": "stop",
                                           "stop_price": 5, "tif": "gtc"}),
    "get_quote": lambda b: b.get_quote("ZZZZ"),
    "get_market_price": lambda b: b.get_market_price("ZZZZ"),
    "get_history": lambda b: b.get_history("ZZZZ", days=5),
}


@pytest.mark.parametrize("call", UNKNOWN_SYMBOL_CALLS.values(), ids=UNKNOWN_SYMBOL_CALLS.keys())
def test_unknown_symbol_is_symbol_not_found(broker: workbench.Broker, settings_dict: dict, call: Callable):
    with pytest.raises(workbench.SymbolNotFound) as info:
        call(broker)
    assert "ZZZZ" in str(info.value)
    expect_untouched(broker, db_of(settings_dict))


def test_unknown_order_id_is_order_not_found(broker: workbench.Broker, settings_dict: dict):
    with pytest.raises(workbench.OrderNotFound):
        broker.cancel_order("no-such-order")
    with pytest.raises(workbench.OrderNotFound):
        broker.get_order("no-such-order")
    expect_untouched(broker, db_of(settings_dict))


def test_reused_client_order_id_with_different_fields_writes_nothing_more(broker: workbench.Broker,
                                                                          settings_dict: dict):
    first = broker.place_limit_order("AAPL", 1, "buy", 1, client_order_id="wb-test-reuse", tif="gtc")
    assert first.is_open
    before = ledger_rows(db_of(settings_dict))
    assert before == (1, 0)
    with pytest.raises(workbench.InvalidOrder) as info:
        broker.place_limit_order("AAPL", 2, "buy", 1, client_order_id="wb-test-reuse", tif="gtc")
    assert info.value.field == "client_order_id"
    assert ledger_rows(db_of(settings_dict)) == before
    assert broker.get_order("wb-test-reuse").qty == Decimal(1)


# -- unknown broker, unsupported orders ---------------------------------------------------------


def test_unknown_broker_is_config_error_listing_known(settings_dict: dict):
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect("nope", settings=settings_dict)
    message = str(info.value)
    assert "nope" in message
    known = workbench.known_adapters()
    assert "paper" in known
    for name in known:
        assert name in message
    assert_nothing_written(db_of(settings_dict))


def test_unknown_default_broker_is_config_error(settings_dict: dict):
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={**settings_dict, "default_broker": "nope"})
    assert info.value.key == "default_broker"
    assert "paper" in str(info.value)
    assert_nothing_written(db_of(settings_dict))


class NarrowAdapter(PaperAdapter):
    """The paper broker, advertising only whole-share MARKET/LIMIT DAY orders."""

    name = "narrow"
    capabilities = workbench.Capabilities(
        order_types=frozenset({workbench.OrderType.MARKET, workbench.OrderType.LIMIT}),
        tifs=frozenset({workbench.TimeInForce.DAY}),
        features=frozenset({workbench.Feature.HISTORY}),
    )


@pytest.fixture
def narrow(settings_dict: dict) -> Iterator[workbench.Broker]:
    from workbench.adapters.factory import registry

    workbench.register_adapter("narrow", NarrowAdapter, replace=True)
    session = None
    try:
        session = workbench.connect("narrow", settings=settings_dict)
        yield session
    finally:
        if session is not None:
            session.close()
        registry._targets.pop("narrow", None)  # keep the global registry as other tests expect it


UNSUPPORTED: list[tuple[str, Callable[[workbench.Broker], Any], str]] = [
    ("stop", lambda b: b.place_order(symbol="AAPL", qty=1, side="sell", order_type="stop", stop_price=50),
     "order_type"),
    ("stop_limit", lambda b: b.place_order(symbol="AAPL", qty=1, side="buy", order_type="STOP_LIMIT",
                                           stop_price=50, limit_price=51), "order_type"),
    ("gtc", lambda b: b.place_limit_order("AAPL", 1, "buy", 10, tif="GTC"), "tif"),
    ("ioc", lambda b: b.place_market_order("AAPL", 1, "buy", tif="ioc"), "tif"),
    ("fractional", lambda b: b.place_market_order("AAPL", Decimal("1.5"), "buy"), "qty"),
    ("fractional_dict", lambda b: b.place_order({"symbol": "AAPL", "qty": "0.25", "side": "buy",
                                                 "broker": "narrow"}), "qty"),
]


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in UNSUPPORTED], ids=[n for n, _, _ in UNSUPPORTED])
def test_unsupported_order_is_not_supported_and_not_recorded(narrow: workbench.Broker, settings_dict: dict,
                                                             call: Callable, field: str):
    assert narrow.name == "narrow"
    with pytest.raises(workbench.NotSupported) as info:
        call(narrow)
    assert info.value.field == field
    assert info.value.broker == "narrow"
    expect_untouched(narrow, db_of(settings_dict))


def test_narrow_adapter_still_takes_supported_orders(narrow: workbench.Broker, settings_dict: dict):
    """Control for the test above: the same broker does record an order it supports."""
    order = narrow.place_limit_order("AAPL", 2, "buy", 1)
    assert order.is_open
    assert ledger_rows(db_of(settings_dict)) == (1, 0)


def test_order_for_another_broker_is_refused(narrow: workbench.Broker, settings_dict: dict):
    with pytest.raises(workbench.InvalidOrder) as info:
        narrow.place_order({"symbol": "AAPL", "qty": 1, "side": "buy", "broker": "paper"})
    assert info.value.field == "broker"
    expect_untouched(narrow, db_of(settings_dict))


# -- malformed settings -------------------------------------------------------------------------

BAD_SETTINGS: list[tuple[str, dict, str]] = [
    ("negative_cash", {"paper": {"starting_cash": -5}}, "paper.starting_cash"),
    ("cash_not_number", {"paper": {"starting_cash": "lots"}}, "paper.starting_cash"),
    ("unknown_key", {"paper": {"bogus": 1}}, "paper.bogus"),
    ("unknown_commission_key", {"paper": {"commission": {"per_share": 0.01, "rebate": 1}}}, "paper.commission.rebate"),
    ("bad_slippage", {"paper": {"slippage_bps": -1}}, "paper.slippage_bps"),
    ("bad_timeout", {"request_timeout": 0}, "request_timeout"),
    ("secret", {"alpaca": {"api_key": "sk-TOPSECRET-42"}}, "alpaca.api_key"),
    ("nested_secret", {"alpaca": {"secret_key": "sk-TOPSECRET-42"}}, "alpaca.secret_key"),
]


@pytest.fixture
def innocent_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work from a project folder whose settings.json is valid (as in a notebook next to settings.json)."""
    project = tmp_path / "project"
    project.mkdir()
    good = project / "settings.json"
    good.write_text(json.dumps({"default_broker": "paper", "paper": {"slippage_bps": 0}}), encoding="utf-8")
    monkeypatch.chdir(project)
    return good


@pytest.mark.parametrize(("bad", "key"), [(b, k) for _, b, k in BAD_SETTINGS], ids=[n for n, _, _ in BAD_SETTINGS])
def test_bad_settings_file_names_file_and_key(tmp_path: Path, settings_dict: dict, bad: dict, key: str):
    path = tmp_path / "bad-settings.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(path))
    err = info.value
    assert err.key == key
    assert err.field == key
    assert err.file == str(path)
    assert str(path) in str(err) and key in str(err)
    assert "sk-TOPSECRET-42" not in str(err) and "sk-TOPSECRET-42" not in repr(err)
    assert_nothing_written(db_of(settings_dict))


@pytest.mark.parametrize(("bad", "key"), [(b, k) for _, b, k in BAD_SETTINGS], ids=[n for n, _, _ in BAD_SETTINGS])
def test_bad_settings_dict_names_key_and_its_source(innocent_project: Path, settings_dict: dict, bad: dict,
                                                     key: str):
    """A bad value given in code is blamed on the settings argument, not on the (valid) settings.json."""
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={**bad, "paper": {**settings_dict["paper"], **bad.get("paper", {})}})
    err = info.value
    assert err.key == key
    assert key in str(err)
    assert "sk-TOPSECRET-42" not in str(err)
    assert err.file == "settings argument", (
        f"the bad key {key!r} came from the settings argument, but the error names {err.file!r}")
    assert_nothing_written(db_of(settings_dict))


def test_invalid_json_names_file(tmp_path: Path, settings_dict: dict):
    path = tmp_path / "broken.json"
    path.write_text('{"paper": {"starting_cash": 100,}', encoding="utf-8")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(path))
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    assert "JSON" in str(info.value)
    assert_nothing_written(db_of(settings_dict))


def test_settings_not_an_object_names_file(tmp_path: Path, settings_dict: dict):
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(path))
    assert info.value.file == str(path)
    assert_nothing_written(db_of(settings_dict))


def test_missing_settings_file_names_file(tmp_path: Path, settings_dict: dict):
    path = tmp_path / "nowhere.json"
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(path))
    assert info.value.file == str(path)
    assert_nothing_written(db_of(settings_dict))


def test_invalid_discovered_settings_file_names_it(innocent_project: Path, settings_dict: dict):
    innocent_project.write_text(json.dumps({"paper": {"starting_cash": -5}}), encoding="utf-8")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={"paper": {"db_path": settings_dict["paper"]["db_path"]}})
    assert info.value.key == "paper.starting_cash"
    assert Path(info.value.file).resolve() == innocent_project.resolve()
    assert_nothing_written(db_of(settings_dict))


# -- history inputs -----------------------------------------------------------------------------

NOW = datetime.now(UTC)

BAD_HISTORY: list[tuple[str, dict, str]] = [
    ("interval_7x", {"interval": "7x"}, "interval"),
    ("interval_empty", {"interval": ""}, "interval"),
    ("interval_0m", {"interval": "0m"}, "interval"),
    ("interval_7m", {"interval": "7m"}, "interval"),
    ("interval_2d", {"interval": "2d"}, "interval"),
    ("days_zero", {"days": 0}, "days"),
    ("days_negative", {"days": -3}, "days"),
    ("days_float", {"days": 1.5}, "days"),
    ("days_bool", {"days": True}, "days"),
    ("start_after_end", {"start": NOW - timedelta(days=1), "end": NOW - timedelta(days=10)}, "start"),
    ("start_equals_end", {"start": "2025-03-03", "end": "2025-03-03"}, "start"),
    ("start_after_end_strings", {"start": "2025-06-01", "end": "2025-01-01"}, "start"),
    ("start_not_a_date", {"start": "yesterday-ish"}, "start"),
    ("end_not_a_date", {"end": "not a date"}, "end"),
    ("all_three", {"start": "2025-01-01", "end": "2025-02-01", "days": 5}, "days"),
]


@pytest.mark.parametrize(("kwargs", "field"), [(k, f) for _, k, f in BAD_HISTORY], ids=[n for n, _, _ in BAD_HISTORY])
def test_bad_history_input_is_invalid_input(broker: workbench.Broker, settings_dict: dict, kwargs: dict,
                                            field: str):
    with pytest.raises(workbench.InvalidInput) as info:
        broker.get_history("AAPL", **kwargs)
    assert info.value.field == field
    assert not isinstance(info.value, workbench.InvalidOrder)
    expect_untouched(broker, db_of(settings_dict))


def test_good_history_input_is_accepted(broker: workbench.Broker):
    """Control for the test above: the same call with sane arguments returns bars."""
    frame = broker.get_history("AAPL", days=10, interval="1d")
    assert not frame.empty


# -- issue 7 §3: the inputs a generated sweep found escaping untyped --------------------------

ESCAPES: list[tuple[str, Callable[[workbench.Broker], Any], type, str]] = [
    ("limit_price_1e30", lambda b: b.place_limit_order("AAPL", 1, "buy", "1e30"), workbench.InvalidOrder,
     "limit_price"),
    ("stop_price_1e999999", lambda b: b.place_order(symbol="AAPL", qty=1, side="sell", order_type="stop",
                                                    stop_price="1e999999"), workbench.InvalidOrder, "stop_price"),
    ("qty_10_pow_30", lambda b: b.place_market_order("AAPL", 10**30, "buy"), workbench.InvalidOrder, "qty"),
    ("qty_1e999999", lambda b: b.place_market_order("AAPL", "1e999999", "buy"), workbench.InvalidOrder, "qty"),
    ("qty_1e-999999", lambda b: b.place_market_order("AAPL", "1e-999999", "buy"), workbench.InvalidOrder, "qty"),
    ("notional_huge", lambda b: b.place_order(symbol="AAPL", side="buy", notional=10**40), workbench.InvalidOrder,
     "notional"),
    ("market_with_order_type", lambda b: b.place_market_order("AAPL", 1, "buy", order_type="limit"),
     workbench.InvalidOrder, "order_type"),
    ("limit_with_order_type", lambda b: b.place_limit_order("AAPL", 1, "buy", 5, order_type="stop"),
     workbench.InvalidOrder, "order_type"),
    ("limit_without_price_positional", lambda b: b.place_limit_order("AAPL", 10, "buy"), workbench.InvalidOrder,
     "limit_price"),
    ("market_without_side", lambda b: b.place_market_order("AAPL", 10), workbench.InvalidOrder, "side"),
    ("market_too_many_positional", lambda b: b.place_market_order("AAPL", 10, "buy", 5), workbench.InvalidOrder,
     "args"),
    ("dict_with_int_key", lambda b: b.place_order({"symbol": "AAPL", "qty": 1, "side": "buy", 7: "x"}),
     workbench.InvalidOrder, "order"),
    ("get_position_none", lambda b: b.get_position(None), workbench.InvalidInput, "symbol"),
    ("get_quote_int", lambda b: b.get_quote(42), workbench.InvalidInput, "symbol"),
    ("get_market_price_empty", lambda b: b.get_market_price("  "), workbench.InvalidInput, "symbol"),
    ("get_order_none", lambda b: b.get_order(None), workbench.InvalidInput, "order_id"),
    ("cancel_order_int", lambda b: b.cancel_order(3), workbench.InvalidInput, "order_id"),
    ("history_since", lambda b: b.get_history("AAPL", since="2024-01-01"), workbench.InvalidInput, "since"),
    ("history_days_huge", lambda b: b.get_history("AAPL", days=10**6), workbench.InvalidInput, "days"),
    ("history_symbol_none", lambda b: b.get_history(None, days=5), workbench.InvalidInput, "symbol"),
    ("history_interval_int", lambda b: b.get_history("AAPL", interval=5), workbench.InvalidInput, "interval"),
    ("history_no_symbol", lambda b: b.get_history(days=5), workbench.InvalidInput, "symbol"),
    ("subscribe_none", lambda b: b.subscribe_market_data(None, print), workbench.InvalidInput, "symbols"),
    ("subscribe_not_callable", lambda b: b.subscribe_market_data("AAPL", "print"), workbench.InvalidInput,
     "callback"),
    ("on_fill_not_callable", lambda b: b.on_fill(None), workbench.InvalidInput, "callback"),
    ("get_account_extra_arg", lambda b: b.get_account("x"), workbench.InvalidInput, "args"),
    ("fills_unknown_kw", lambda b: b.get_fills(limit=3), workbench.InvalidInput, "limit"),
]


@pytest.mark.parametrize(("call", "kind", "field"), [(c, k, f) for _, c, k, f in ESCAPES],
                         ids=[n for n, *_ in ESCAPES])
def test_escapes_are_typed_and_name_the_field(broker: workbench.Broker, settings_dict: dict, call: Callable,
                                              kind: type, field: str):
    with pytest.raises(kind) as info:
        call(broker)
    err = info.value
    assert err.field == field and f"field={field}" in str(err)
    assert err.broker == "paper"  # raised through a Broker: it says which
    assert "_args" not in str(err) and "facade" not in str(err)  # no internal function names
    assert err.__cause__ is None  # one clean error, not a chained TypeError / pydantic traceback
    expect_untouched(broker, db_of(settings_dict))


def test_connect_with_a_list_names_the_broker_argument(settings_dict: dict):
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(["paper"], settings=settings_dict)
    assert info.value.key == "broker" and "broker argument" in str(info.value)
    assert_nothing_written(db_of(settings_dict))


SETTINGS_ESCAPES: list[tuple[str, dict, str]] = [
    ("int_key", {1: "x"}, "1"),
    ("nested_int_key", {"paper": {("a",): 1}}, "paper.('a',)"),
    ("timeout_inf", {"request_timeout": float("inf")}, "request_timeout"),
    ("timeout_nan", {"request_timeout": float("nan")}, "request_timeout"),
    ("timeout_huge", {"request_timeout": 1e300}, "request_timeout"),
    ("ib_typo_unused", {"ib": {"hostt": "x"}}, "ib.hostt"),
    ("ib_bad_port_unused", {"ib": {"port": 0}}, "ib.port"),
    ("alpaca_unknown_unused", {"alpaca": {"foo": 1}}, "alpaca.foo"),
    ("yfinance_unknown_unused", {"market_data": {"yfinance": {"foo": 1}}}, "market_data.yfinance.foo"),
    ("sim_bad_symbol_spec", {"market_data": {"sim": {"symbols": {"ACME": {"price": -1}}}}},
     "market_data.sim.symbols.ACME.price"),
    ("section_not_object", {"ib": 5}, "ib"),
]


@pytest.mark.parametrize(("bad", "key"), [(b, k) for _, b, k in SETTINGS_ESCAPES],
                         ids=[n for n, *_ in SETTINGS_ESCAPES])
def test_every_section_is_validated_at_load_and_blames_the_argument(innocent_project: Path, settings_dict: dict,
                                                                    bad: dict, key: str):
    """Even for a broker or provider not in use; a value given in code is the settings argument's fault."""
    with pytest.raises(workbench.ConfigError) as info:
        workbench.load_settings(bad)
    err = info.value
    assert err.key == key and err.file == "settings argument", (err.key, err.file)
    assert "For further information" not in str(err) and err.__cause__ is None
    with pytest.raises(workbench.ConfigError):
        workbench.connect(settings={**bad, **settings_dict} if "paper" not in bad else bad)
    assert_nothing_written(db_of(settings_dict))


def test_pydantic_detail_stays_on_the_error(innocent_project: Path):
    with pytest.raises(workbench.ConfigError) as info:
        workbench.load_settings({"ib": {"port": "x", "client_id": -1}})
    err = info.value
    assert [e["loc"] for e in err.errors] == [("port",), ("client_id",)]
    assert "1 more problem" in str(err) and err.__cause__ is None and err.__suppress_context__
    with pytest.raises(workbench.InvalidOrder) as order_info:
        workbench.NeutralOrder(symbol="AAPL", side="buy", qty="lots")
    assert order_info.value.errors[0]["loc"] == ("qty",) and order_info.value.__cause__ is None


def test_a_bad_timeout_given_in_code_is_typed(settings_dict: dict):
    adapter = workbench.get_adapter("paper", settings_dict)
    for bad in (float("inf"), float("nan"), 0, -1, "30", 10**9):
        with pytest.raises(workbench.InvalidInput) as info:
            workbench.Broker(adapter, timeout=bad)
        assert info.value.field == "timeout"
