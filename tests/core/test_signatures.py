"""The generated Broker methods have real signatures: for ``inspect.signature``, Jupyter's help, and type
checkers (through the checked-in ``workbench/facade.pyi``, which must be current)."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from decimal import Decimal

import pandas as pd

import workbench
from workbench import facade
from workbench.adapters.base import Subscription
from workbench.core.models import AccountInfo, MarketClock, Order, Position, Quote
from workbench.facade_stub import STUB_PATH, render

RETURNS = {
    "connect": None, "disconnect": None, "get_account": AccountInfo, "get_positions": pd.DataFrame,
    "get_position": Position | None, "place_order": Order, "place_market_order": Order, "place_limit_order": Order,
    "cancel_order": Order, "get_order": Order, "get_orders_history": pd.DataFrame, "get_fills": pd.DataFrame,
    "get_quote": Quote, "get_market_price": Decimal, "get_history": pd.DataFrame,
    "subscribe_market_data": Subscription, "is_market_open": bool, "get_clock": MarketClock,
}


def test_the_checked_in_stub_is_current() -> None:
    assert STUB_PATH.read_text(encoding="utf-8") == render(), \
        "workbench/facade.pyi is stale: run `python -m workbench.facade_stub`"


def test_return_types_are_what_the_methods_return() -> None:
    assert set(RETURNS) == {op.name for op in facade.OPERATIONS}
    for name, expected in RETURNS.items():
        for method in (getattr(workbench.Broker, name), getattr(workbench.Broker, name + "_async")):
            hints = typing.get_type_hints(method)  # resolvable at run time, not just text
            assert hints["return"] == (type(None) if expected is None else expected), name


def test_signatures_name_the_real_parameters() -> None:
    sig = inspect.signature(workbench.Broker.place_limit_order)
    assert list(sig.parameters) == ["self", "symbol", "qty", "side", "limit_price", "fields"]
    assert inspect.signature(workbench.Broker.get_orders_history).return_annotation == "pd.DataFrame"
    history = inspect.signature(workbench.Broker.get_history_async)
    assert list(history.parameters) == ["self", "symbol", "days", "start", "end", "interval"]
    assert history.parameters["interval"].default == "1d"
    assert inspect.iscoroutinefunction(workbench.Broker.get_history_async)
    assert "end`` is exclusive" in workbench.Broker.get_history.__doc__


def test_the_stub_agrees_with_the_runtime() -> None:
    """Executed as Python, the stub's annotations resolve, and each method's hints equal the live one's."""
    module = types.ModuleType("workbench_facade_stub_check")
    sys.modules[module.__name__] = module  # @dataclass looks its module up
    try:
        exec(compile(STUB_PATH.read_text(encoding="utf-8"), str(STUB_PATH), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    namespace = module.__dict__
    stub_broker = namespace["Broker"]
    for name in RETURNS:
        for method in (name, name + "_async"):
            live, typed = getattr(workbench.Broker, method), getattr(stub_broker, method)
            assert typing.get_type_hints(typed, namespace) == typing.get_type_hints(live), method
            assert inspect.iscoroutinefunction(typed) == inspect.iscoroutinefunction(live), method
            assert list(inspect.signature(typed).parameters) == list(inspect.signature(live).parameters), method
    assert typing.get_type_hints(namespace["connect"], namespace)["return"] is stub_broker
