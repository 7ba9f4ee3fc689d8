"""Paper errors carry ``broker`` and ``code`` (README "Errors"); a price source's errors are said by paper."""

from __future__ import annotations

from decimal import Decimal

import pytest

import workbench
from workbench.core.errors import InvalidOrder, OrderNotFound, SymbolNotFound


def test_unknown_symbols_are_said_by_paper_with_a_code_and_raw_message(settings_dict):
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        for call in (lambda: broker.get_quote("ZZZZQ"), lambda: broker.get_market_price("ZZZZQ"),
                     lambda: broker.place_market_order("ZZZZQ", 1, "buy")):
            with pytest.raises(SymbolNotFound) as info:
                call()
            assert info.value.broker == "paper" and info.value.code and info.value.raw
        assert broker.get_orders_history().empty
    finally:
        broker.close()


def test_engine_refusals_carry_broker_and_code(settings_dict):
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        with pytest.raises(InvalidOrder) as info:
            broker.place_limit_order("AAPL", 1, "buy", Decimal("100.001"))
        assert (info.value.broker, info.value.code, info.value.field) == ("paper", "tick_size", "limit_price")
        with pytest.raises(OrderNotFound) as missing:
            broker.get_order("nope")
        assert (missing.value.broker, missing.value.code, missing.value.raw) == ("paper", "not_found", "nope")
    finally:
        broker.close()
