"""A generated sweep of bad input through the public API: one typed error naming the field, nothing recorded.

Every example calls the public facade (``workbench.connect`` / ``Broker`` methods / ``load_settings``)
and checks: the call either succeeds (the input happened to be valid) or raises a ``WorkbenchError``
whose ``field`` is set, with no chained library exception; and after a failure the paper ledger holds
the same orders and fills as before (counted through a separate read-only SQLite connection).

``WORKBENCH_PROPERTY_EXAMPLES=5000 pytest --timeout=0 tests/core/test_bad_input_properties.py`` hunts longer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import workbench
from workbench.core.models import MAX_PRICE, MAX_QTY, MIN_QUANTUM
from tests.test_bad_input import ledger_rows

EXAMPLES = settings(max_examples=int(os.environ.get("WORKBENCH_PROPERTY_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Anything a notebook user might pass by mistake.
garbage = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**12, max_value=10**60),
    st.floats(), st.decimals(), st.text(max_size=12), st.binary(max_size=4),
    st.sampled_from(["1e30", "1e999999", "-1e999999", "1e-999999", "sNaN", "-0", "NaN", "inf", "1_000", " 5 ", ""]),
    st.lists(st.integers(), max_size=2), st.tuples(st.text(max_size=3)),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
    st.datetimes(), st.datetimes(timezones=st.just(UTC)), st.just(object()), st.just(float("inf")),
)

#: Valid arguments for each operation, and the names a call may replace with garbage.
VALID: dict[str, dict[str, Any]] = {
    "get_position": {"symbol": "AAPL"},
    "get_quote": {"symbol": "AAPL"},
    "get_market_price": {"symbol": "AAPL"},
    "get_order": {"order_id": "P000000001"},
    "cancel_order": {"order_id": "P000000001"},
    "get_orders_history": {"limit": 10, "since": "2020-01-01"},
    "get_fills": {"since": "2020-01-01"},
    "get_history": {"symbol": "AAPL", "days": 5, "start": None, "end": None, "interval": "1d"},
    "place_market_order": {"symbol": "AAPL", "qty": 1, "side": "buy"},
    "place_limit_order": {"symbol": "AAPL", "qty": 1, "side": "buy", "limit_price": 1},
    "place_order": {"symbol": "AAPL", "qty": 1, "side": "buy", "order_type": "limit", "limit_price": 1,
                    "tif": "gtc"},
    "subscribe_market_data": {"symbols": ["AAPL"], "callback": print},
}
ORDER_FIELDS = ("qty", "limit_price", "stop_price", "notional", "trail_price", "trail_percent")


@pytest.fixture
def broker(settings_dict: dict) -> Iterator[workbench.Broker]:
    with workbench.connect(settings=settings_dict) as session:
        yield session


def _expect_clean(call: Any, db: Path) -> BaseException | None:
    """Run ``call``; a failure must be one typed error naming a field, with the ledger unchanged."""
    before = ledger_rows(db)
    try:
        result = call()
    except workbench.WorkbenchError as exc:
        note(f"{type(exc).__name__}: {exc}")
        # Well-formed but unknown, or refused on its merits (funds): a typed answer that needs no field.
        answers = (workbench.SymbolNotFound, workbench.OrderNotFound, workbench.OrderRejected)
        assert exc.field or isinstance(exc, answers), f"{type(exc).__name__} names no field: {exc}"
        if isinstance(exc, (workbench.InvalidInput, workbench.ConfigError)):
            assert exc.__cause__ is None, f"bad input chained to {exc.__cause__!r}"
        assert ledger_rows(db) == before, "a refused call wrote to the ledger"
        return exc
    except Exception as exc:  # noqa: BLE001 - the property: nothing untyped escapes
        raise AssertionError(f"untyped {type(exc).__name__} escaped: {exc}") from exc
    if hasattr(result, "cancel"):
        result.cancel()  # a subscription the garbage happened to make valid
    return None


@EXAMPLES
@given(op=st.sampled_from(sorted(VALID)), data=st.data())
def test_garbage_in_any_argument_is_typed_and_recorded_nowhere(broker: workbench.Broker, settings_dict: dict,
                                                               op: str, data: st.DataObject) -> None:
    kwargs = dict(VALID[op])
    names = data.draw(st.lists(st.sampled_from(sorted(kwargs)), min_size=1, max_size=2, unique=True))
    for name in names:
        kwargs[name] = data.draw(garbage, label=name)
    if op == "get_history" and kwargs["start"] is not None and kwargs["end"] is not None:
        kwargs["days"] = None  # two of three: keep the call about the garbage, not the combination
    db = Path(settings_dict["paper"]["db_path"])
    error = _expect_clean(lambda: getattr(broker, op)(**kwargs), db)
    if isinstance(error, (workbench.InvalidInput, workbench.ConfigError)) and error.field != "args":
        blamed = set(names) | {"order"}
        if blamed & {"start", "end", "days"}:
            blamed |= {"start", "end", "days"}  # a range error may name either end of the range
        assert error.field in blamed, error


out_of_range = st.one_of(
    st.integers(min_value=int(MAX_QTY) + 1, max_value=10**400),
    st.integers(min_value=13, max_value=999_999).map(lambda e: f"1e{e}"),
    st.integers(min_value=10, max_value=999_999).map(lambda e: f"1e-{e}"),
    st.decimals(min_value=MAX_QTY + 1, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal(0), max_value=MIN_QUANTUM / 10, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), float("nan"), float("-inf"), "-1e30"]),
)


@EXAMPLES
@given(field=st.sampled_from(ORDER_FIELDS), value=out_of_range, as_dict=st.booleans())
def test_out_of_range_numbers_name_their_field(broker: workbench.Broker, settings_dict: dict, field: str,
                                               value: Any, as_dict: bool) -> None:
    order: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": 1}
    if field in ("limit_price", "stop_price"):
        order |= {"order_type": "stop_limit", "limit_price": 10, "stop_price": 10}
    elif field in ("trail_price", "trail_percent"):
        order |= {"order_type": "trailing_stop", "side": "sell"}
    elif field == "notional":
        del order["qty"]
    order[field] = value
    if field in ("limit_price", "stop_price") and isinstance(value, (int, Decimal)) and not isinstance(value, bool) \
            and Decimal(value).is_finite() and MIN_QUANTUM <= Decimal(value) <= MAX_PRICE:
        return  # a price in range (the qty bound is higher): not this test's concern
    db = Path(settings_dict["paper"]["db_path"])
    error = _expect_clean(lambda: broker.place_order(order) if as_dict else broker.place_order(**order), db)
    assert isinstance(error, workbench.InvalidOrder) and error.field == field, error


setting_key = st.one_of(st.integers(), st.none(), st.tuples(st.integers()), st.floats(allow_nan=False),
                        st.booleans(), st.binary(min_size=1, max_size=3))
sections = st.sampled_from(["", "paper", "paper.commission", "ib", "alpaca", "market_data", "market_data.sim",
                            "market_data.yfinance"])


@EXAMPLES
@given(section=sections, key=st.one_of(setting_key, st.from_regex(r"\A[a-z]{3,8}_x\Z")), value=garbage)
def test_bad_settings_keys_are_config_errors_naming_the_argument(section: str, key: Any, value: Any,
                                                                 innocent_project: Path) -> None:
    """Unknown or non-string keys anywhere, for sections in use or not, blamed on the settings argument."""
    bad: dict[Any, Any] = {key: value}
    for part in reversed(section.split(".") if section else []):
        bad = {part: bad}
    with pytest.raises(workbench.ConfigError) as info:
        workbench.load_settings(bad)
    err = info.value
    assert err.file == "settings argument" and err.key and err.__cause__ is None
    assert err.key.startswith(section), (err.key, section)


@EXAMPLES
@given(value=st.one_of(st.floats(min_value=86_401), st.just(float("inf")), st.just(float("nan")),
                       st.floats(max_value=0), st.text(alphabet="abcxyz -_", max_size=5), st.none(),
                       st.lists(st.integers())))
def test_bad_request_timeouts_are_refused_at_load(value: Any, innocent_project: Path) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.load_settings({"request_timeout": value})
    assert info.value.key == "request_timeout"


@pytest.fixture
def innocent_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "settings.json").write_text('{"paper": {"slippage_bps": 0}}', encoding="utf-8")
    monkeypatch.chdir(project)
    return project


def test_the_sweep_sees_a_valid_call_through() -> None:
    """Control: the valid arguments of the sweep are valid (so a refusal is the garbage's doing)."""
    with workbench.connect(settings={"paper": {"db_path": ":memory:"}}) as broker:
        for op, kwargs in VALID.items():
            if op in ("get_order", "cancel_order"):
                continue  # no such order yet: OrderNotFound is the right answer
            result = getattr(broker, op)(**kwargs)
            if hasattr(result, "cancel"):
                result.cancel()
        assert datetime.now(UTC) and len(broker.get_orders_history()) == 3
