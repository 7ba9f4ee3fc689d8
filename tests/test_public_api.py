"""Public names and the error tree."""

from __future__ import annotations

import workbench
from workbench.core.errors import ERROR_CLASSES


def test_public_names_are_importable_from_workbench() -> None:
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name
    for name in ("connect", "get_adapter", "NeutralOrder", "Order", "FillEvent", "Position", "AccountInfo", "Bar",
                 "Side", "OrderType", "TimeInForce", "OrderStatus"):
        assert name in workbench.__all__


def test_every_error_is_exported_and_rooted() -> None:
    for name, cls in ERROR_CLASSES.items():
        assert getattr(workbench, name) is cls and name in workbench.__all__
        assert issubclass(cls, workbench.WorkbenchError)
    assert issubclass(workbench.InsufficientFunds, workbench.OrderRejected)
    assert issubclass(workbench.MarketClosed, workbench.OrderRejected)
    assert issubclass(workbench.RateLimited, workbench.BrokerError) and workbench.RateLimited.retryable
    assert issubclass(workbench.BrokerUnavailable, workbench.BrokerError) and workbench.BrokerUnavailable.retryable
    assert not workbench.OrderRejected.retryable


def test_errors_carry_broker_code_and_raw() -> None:
    err = workbench.OrderRejected("no", broker="ib", code=201, raw={"text": "Order rejected"})
    assert (err.broker, err.code, err.raw) == ("ib", 201, {"text": "Order rejected"})
    assert "broker=ib" in str(err) and "code=201" in str(err)


def test_errors_raised_through_a_broker_name_it(settings_dict: dict) -> None:
    """README: every error carries ``broker``; ``code``/``raw`` are the broker's own, or None when workbench
    itself refused the call (input validation)."""
    import pytest

    with workbench.connect(settings=settings_dict) as broker:
        for call, kind in ((lambda: broker.get_quote("ZZZZ"), workbench.SymbolNotFound),
                           (lambda: broker.place_market_order("ZZZZ", 1, "buy"), workbench.SymbolNotFound),
                           (lambda: broker.place_market_order("AAPL", 0, "buy"), workbench.InvalidOrder),
                           (lambda: broker.get_order("nope"), workbench.OrderNotFound),
                           (lambda: broker.get_history("AAPL", interval="7x"), workbench.InvalidInput)):
            with pytest.raises(kind) as info:
                call()
            assert info.value.broker == "paper" and "broker=paper" in str(info.value)
    err = workbench.SymbolNotFound("unknown symbol 'ZZZZ'", code="sim.unknown_symbol")
    assert (err.broker, err.code, err.raw) == (None, "sim.unknown_symbol", None)  # raised outside a Broker
