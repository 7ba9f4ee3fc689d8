"""Enums parse what users type; the status machine only moves forward."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workbench import OrderStatus, OrderType, Side, TimeInForce
from workbench.core.enums import status_from_fills

S = OrderStatus


@pytest.mark.parametrize(("text", "member"), [
    ("buy", Side.BUY), (" Sell ", Side.SELL), ("BOT", Side.BUY), ("limit", OrderType.LIMIT),
    ("LMT", OrderType.LIMIT), ("stop-limit", OrderType.STOP_LIMIT), ("stp lmt", OrderType.STOP_LIMIT),
    ("gtc", TimeInForce.GTC), ("opg", TimeInForce.OPG), ("canceled", S.CANCELLED), ("Partially_Filled", S.PARTIALLY_FILLED),
])
def test_case_insensitive_parsing(text: str, member: object) -> None:
    assert type(member)(text) is member


def test_unknown_values_are_rejected() -> None:
    with pytest.raises(ValueError):
        Side("hold")


def test_terminal_and_open() -> None:
    assert {s for s in S if s.is_terminal} == {S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}
    assert all(s.is_open != s.is_terminal for s in S)


def test_late_updates_never_move_backwards() -> None:
    assert S.FILLED.advance("NEW") is S.FILLED
    assert S.FILLED.advance(S.CANCELLED) is S.FILLED
    assert S.PARTIALLY_FILLED.advance(S.NEW) is S.PARTIALLY_FILLED
    assert S.CANCELLED.advance(S.PARTIALLY_FILLED) is S.CANCELLED
    assert S.NEW.advance(S.PARTIALLY_FILLED) is S.PARTIALLY_FILLED
    assert S.PENDING_NEW.advance(S.FILLED) is S.FILLED
    assert S.PENDING_CANCEL.advance(S.NEW) is S.NEW  # cancel refused: back to working
    for terminal in (S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED):
        assert all(terminal.advance(s) is terminal for s in S)


def test_partial_fill_status_is_derived_from_quantities() -> None:
    assert status_from_fills(S.NEW, Decimal(3), Decimal(10)) is S.PARTIALLY_FILLED
    assert status_from_fills(S.NEW, Decimal(10), Decimal(10)) is S.FILLED
    assert status_from_fills(S.NEW, Decimal(0), Decimal(10)) is S.NEW
    assert status_from_fills(S.CANCELLED, Decimal(3), Decimal(10)) is S.CANCELLED
    assert status_from_fills(S.CANCELLED, Decimal(10), Decimal(10)) is S.FILLED  # a fill raced the cancel
