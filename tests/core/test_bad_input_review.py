"""Bad (and good) input the review's hunt found mishandled, each class pinned by a test that failed before."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import workbench
from tests.test_bad_input import ledger_rows


@pytest.fixture
def broker(settings_dict: dict) -> Any:
    with workbench.connect(settings=settings_dict) as session:
        yield session


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr failed")

    __str__ = __repr__


def test_numpy_numbers_from_a_dataframe_are_numbers(broker: workbench.Broker) -> None:
    """``qty = frame.qty.sum()`` is an ``np.int64``: it was refused ("Decimal input should be an integer...")."""
    order = broker.place_market_order("AAPL", np.int64(3), "buy")
    assert order.qty == 3
    limit = broker.place_limit_order("AAPL", pd.Series([2]).sum(), "buy", np.float32(1.5))
    assert limit.qty == 2 and limit.limit_price == Decimal("1.5")
    assert len(broker.get_orders_history(limit=np.int64(1))) == 1
    assert not broker.get_history("AAPL", days=np.int32(5)).empty
    for bad in (np.bool_(True), np.array([1]), np.float64("nan")):
        with pytest.raises(workbench.InvalidOrder) as info:
            broker.place_market_order("AAPL", bad, "buy")
        assert info.value.field == "qty"


def test_a_value_whose_repr_fails_still_gets_a_typed_error(broker: workbench.Broker, settings_dict: dict) -> None:
    """Error messages quoted values with ``{value!r}`` (the enum refusal too): the repr's exception escaped."""
    db = Path(settings_dict["paper"]["db_path"])
    before = ledger_rows(db)
    for field, call in (("qty", lambda v: broker.place_market_order("AAPL", v, "buy")),
                        ("side", lambda v: broker.place_market_order("AAPL", 1, v)),
                        ("tif", lambda v: broker.place_order(symbol="AAPL", qty=1, side="buy", tif=v)),
                        ("symbol", lambda v: broker.get_quote(v)),
                        ("order_id", lambda v: broker.get_order(v)),
                        ("since", lambda v: broker.get_fills(since=v)),
                        ("client_order_id", lambda v: broker.place_market_order("AAPL", 1, "buy", client_order_id=v))):
        with pytest.raises(workbench.InvalidInput) as info:
            call(RaisingRepr())
        assert info.value.field == field and "RaisingRepr" in str(info.value)
    assert ledger_rows(db) == before


@pytest.mark.parametrize("call", [
    lambda b: b.place_market_order("AAPL", "9" * 5000, "buy"),
    lambda b: b.get_fills(since="x" * 5000),
    lambda b: b.cancel_order("P" * 100_000),
    lambda b: b.place_market_order("AAPL" * 1000, 1, "buy"),
    lambda b: b.get_history("AAPL", interval="1" * 3000 + "d"),
    lambda b: b.place_market_order("AAPL", pd.DataFrame({"qty": [1, 2]}), "buy"),
])
def test_errors_quote_values_on_one_short_line(broker: workbench.Broker, call: Any) -> None:
    """A pasted 5,000-character value made a 5,000-character error; a DataFrame made a multi-line one."""
    with pytest.raises(workbench.InvalidInput) as info:
        call(broker)
    text = str(info.value)
    assert len(text) < 300 and "\n" not in text and info.value.field


def test_callback_registrations_type_their_argument_errors(broker: workbench.Broker) -> None:
    """``on_fill``/``on_order`` are written by hand: a stray argument was a bare TypeError."""
    for register in (broker.on_fill, broker.on_order):
        with pytest.raises(workbench.InvalidInput) as info:
            register(print, fills=True)
        assert info.value.field == "fills" and info.value.broker == "paper"
        with pytest.raises(workbench.InvalidInput) as info:
            register(print, print)
        assert info.value.field == "args"
        with pytest.raises(workbench.InvalidInput) as info:
            register()
        assert info.value.field == "callback"
    stop = broker.on_fill(callback=lambda fill: None)  # by name still works
    stop()


def test_a_subscription_lists_each_symbol_once(broker: workbench.Broker) -> None:
    subscription = broker.subscribe_market_data(["AAPL", "aapl", " AAPL", "MSFT"], lambda quote: None)
    assert subscription.symbols == ("AAPL", "MSFT")
    subscription.cancel()


@pytest.mark.parametrize(("settings", "key"), [
    ({"paper": {"starting_cash": (x for x in [1])}}, "paper.starting_cash"),  # deepcopy: TypeError
    ({"widgets": {"refresh_seconds": asyncio.Lock()}}, "widgets.refresh_seconds"),
])
def test_settings_values_that_are_no_setting_name_their_key(settings: dict, key: str) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.load_settings(settings)
    assert info.value.key == key and info.value.file == "settings argument"


def test_a_settings_path_with_a_nul_byte_is_a_config_error(tmp_path: Path) -> None:
    """``ValueError: embedded null byte`` escaped from reading the file."""
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(tmp_path / "settings\x00.json"))
    assert "settings" in (info.value.file or "")


@pytest.mark.parametrize(("args", "field"), [
    ((5, "x:y"), "name"), (("Bad Name", "x:y"), "name"), (("mybroker", 5), "target"),
    (("mybroker", "not a target"), "target"), (("mybroker", str), "target"),
])
def test_register_adapter_checks_what_it_registers(args: tuple[Any, Any], field: str) -> None:
    """A number as the name raised AttributeError; a number as the target was registered, to fail later."""
    with pytest.raises(workbench.InvalidInput) as info:
        workbench.register_adapter(*args)
    assert info.value.field == field
    assert "mybroker" not in workbench.known_adapters()
    with pytest.raises(workbench.InvalidInput) as info:
        workbench.register_adapter("mybroker", "pkg.mod:Adapter", config=5)
    assert info.value.field == "config" and "mybroker" not in workbench.known_adapters()


def test_a_comma_separated_symbol_string_suggests_a_list(broker: workbench.Broker) -> None:
    with pytest.raises(workbench.InvalidInput) as info:
        broker.get_history("AAPL,MSFT", days=5)
    assert info.value.field == "symbol" and "pass a list" in str(info.value)


@pytest.mark.parametrize(("section", "key"), [
    ({"paper": {"tick_interval": 1e30}}, "paper.tick_interval"),  # OverflowError, and the ledger stayed locked
    ({"paper": {"starting_cash": "1e999999"}}, "paper.starting_cash"),  # accepted: cash 1E+999999
    ({"paper": {"commission": 1e30}}, "paper.commission.per_order"),  # decimal.InvalidOperation per order
    ({"paper": {"commission": {"per_share": 10**30}}}, "paper.commission.per_share"),
    ({"paper": {"db_path": "~nosuchuser/p.sqlite"}}, "paper.db_path"),  # RuntimeError at connect
    ({"market_data": {"sim": {"seed": -1}}}, "market_data.sim.seed"),  # numpy's ValueError at every quote
    ({"market_data": {"yfinance": {"cache_dir": "~nosuchuser/c"}}}, "market_data.yfinance.cache_dir"),
    ({"market_data": {"yfinance": {"timeout": float("inf")}}}, "market_data.yfinance.timeout"),
])
def test_settings_the_engine_or_a_provider_cannot_use_are_refused_at_load(settings_dict: dict, section: dict,
                                                                          key: str) -> None:
    """The hunt's connect-and-trade family: each was accepted at load and failed later, untyped (or not)."""
    merged = {part: {**settings_dict.get(part, {}), **value} for part, value in section.items()}
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={**settings_dict, **merged})
    assert info.value.key == key and info.value.file == "settings argument"
    with workbench.connect(settings=settings_dict) as broker:  # nothing left locked or half-open
        assert broker.place_market_order("AAPL", 1, "buy").status.value == "FILLED"


def test_a_settings_path_of_an_unknown_users_home_is_a_config_error() -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings="~nosuchuser/settings.json")
    assert info.value.file == "~nosuchuser/settings.json"


@pytest.mark.parametrize("field", ["symbol", "client_order_id", "side"])
def test_bytes_are_not_text_in_an_order(broker: workbench.Broker, field: str) -> None:
    """pydantic decoded ``b"AAPL"`` as a symbol; the facade's own checks refuse bytes everywhere else."""
    order = {"symbol": "AAPL", "side": "buy", "qty": 1, field: field.encode()}
    with pytest.raises(workbench.InvalidOrder) as info:
        broker.place_order(order)
    assert info.value.field == field
