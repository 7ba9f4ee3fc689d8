"""The ticket under real orderings: slow quotes, late events, a broker switch, lost answers.

``loop_busy()`` holds workbench's loop (where quotes, events and broker answers arrive) while the test acts as
the user, so "the user was faster than the broker" is deterministic instead of a race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from tests.widgets.conftest import DayOnlyPaper, loop_busy, quoted, sent_orders, state
from workbench.adapters.paper.adapter import PaperAdapter
from workbench.core.errors import DataEntitlementError
from workbench.core.models import NeutralOrder, Order
from workbench.widgets import OrderTicket, ticket as ticket_module
from workbench.widgets.orderform import round_to_tick


class LatePaper(PaperAdapter):
    """A paper broker whose answer to the first order never arrives (the order itself does reach it)."""

    name = "latepaper"
    answered = False

    async def _place_order(self, order: NeutralOrder) -> Order:
        placed = await super()._place_order(order)
        if not LatePaper.answered:
            LatePaper.answered = True
            await asyncio.Event().wait()  # lost in transit: the caller must give up on its own
        return placed


def test_the_guard_asks_for_a_confirm_while_the_price_is_still_loading(make_broker: Callable,
                                                                       closing: Callable) -> None:
    broker = make_broker(starting_cash=100_000_000)
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    with loop_busy():  # the new symbol's quote has not arrived yet
        ticket.symbol.value = "MSFT"
        ticket.qty.value = 50_000  # ~27 M: far above widgets.confirm_notional
        ticket.submit.click()
        assert ticket.confirm.layout.display != "none" and "no last price yet" in ticket.warning.value
    eventually(lambda: ticket._quote is not None and ticket._quote.symbol == "MSFT", 5)
    eventually(lambda: not ticket._futures, 5)
    assert sent_orders(broker).empty
    ticket.submit.click()  # priced now: the notional guard itself asks
    assert "confirm_notional" in ticket.warning.value and sent_orders(broker).empty


def test_a_confirm_pending_when_the_broker_selector_moves_sends_nothing(settings_dict: dict,
                                                                       closing: Callable) -> None:
    workbench.register_adapter("dayonly", DayOnlyPaper)  # same ledger file: any order lands in sent_orders
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=500)))  # ~72k: needs a confirm
        ticket.submit.click()
        assert ticket.confirm.layout.display != "none"
        with loop_busy():  # the switch is still connecting when the user clicks the (stale) Confirm
            ticket.broker.value = "dayonly"
            ticket.confirm.click()
        eventually(lambda: ticket.session.name == "dayonly" and not ticket.submit.disabled, 10)
        eventually(lambda: not ticket._futures, 5)
        assert sent_orders(broker).empty and ticket.confirm.layout.display == "none"
    finally:
        broker.close()


def test_a_price_typed_while_the_quote_loads_is_never_overwritten(broker: workbench.Broker,
                                                                  closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    ticket.order_type.value = "LIMIT"
    with loop_busy():
        ticket.symbol.value = "MSFT"
        ticket.limit_price.value = 123.45  # typed before MSFT's first quote arrives
    eventually(lambda: ticket._quote is not None and ticket._quote.symbol == "MSFT", 5)
    eventually(lambda: not ticket._futures, 5)
    assert ticket.limit_price.value == 123.45
    assert ticket.stop_price.value == float(round_to_tick(ticket._quote.last))  # untouched: pre-filled


def test_a_late_snapshot_of_the_previous_submission_is_not_shown(settings_dict: dict, closing: Callable) -> None:
    workbench.register_adapter("dayonly", DayOnlyPaper)  # no order stream: the ticket fetches after each fill
    broker = workbench.connect("dayonly", settings=settings_dict)
    try:
        ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
        ticket.submit.click()
        first = ticket.wait()
        old_fill = broker.adapter.engine.fills()[0]
        shown: list[str] = []
        ticket.status.observe(lambda change: shown.append(change["new"]), names="value")
        ticket.qty.value = 2
        with loop_busy():
            ticket._on_fill_event(old_fill)  # the first order's fill event, delivered late by a slow stream
            ticket.submit.click()
            second = ticket._tracked
        eventually(lambda: ticket.last_order is not None and ticket.last_order.status.is_terminal, 5)
        eventually(lambda: not ticket._futures, 5)
        assert ticket.last_order.client_order_id == second != first.client_order_id
        assert ticket.wait().qty == 2
        assert not any(first.order_id in html for html in shown), shown
    finally:
        broker.close()


def test_a_send_without_an_answer_is_resent_with_the_same_client_order_id(
        settings_dict: dict, closing: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticket_module, "DOUBLE_CLICK_SECONDS", 0.0)
    monkeypatch.setattr(LatePaper, "answered", False)
    workbench.register_adapter("latepaper", LatePaper)
    broker = workbench.connect("latepaper", settings={**settings_dict, "request_timeout": 1.0})
    try:
        ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=3)))
        ticket.submit.click()
        first = ticket._tracked
        eventually(lambda: state(ticket) == "ERROR", 5)  # the ticket gave up waiting, it did not hang
        assert "did not answer" in ticket.status.value and "same client order id" in ticket.status.value
        assert not ticket.submit.disabled and len(sent_orders(broker)) == 1  # the order did reach the broker
        ticket.submit.click()  # the user tries again, form unchanged: the same submission
        order = ticket.wait()
        assert order.client_order_id == first and order.status.value == "FILLED"
        assert len(sent_orders(broker)) == 1 and len(broker.get_fills()) == 1
        ticket.qty.value = 4  # a different order is a new submission
        ticket.submit.click()
        assert ticket.wait().client_order_id != first and len(sent_orders(broker)) == 2
    finally:
        broker.close()


def test_an_ignored_double_click_says_so_on_the_ticket(broker: workbench.Broker, closing: Callable,
                                                       caplog: Any) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=3)))
    ticket.submit.click()
    ticket.wait()
    ticket.submit.click()  # quickly again, nothing changed
    assert "Submit ignored" in ticket.warning.value and "double-click" in ticket.warning.value
    assert len(sent_orders(broker)) == 1
    assert any("Submit ignored" in r.getMessage() for r in caplog.records)
    ticket.qty.value = 4  # any edit clears the note
    assert ticket.warning.value == ""


class NoDataPaper(PaperAdapter):
    """A paper broker whose account has no market-data subscription (as IB answers with error 354)."""

    name = "nodatapaper"

    async def get_quote(self, symbol: str) -> Any:
        raise DataEntitlementError(f"no market data subscription for {symbol}", broker=self.name, code="354")


def test_without_market_data_the_symbol_still_trades_after_a_confirm(settings_dict: dict,
                                                                    closing: Callable) -> None:
    workbench.register_adapter("nodatapaper", NoDataPaper)
    broker = workbench.connect("nodatapaper", settings=settings_dict)
    try:
        ticket = closing(OrderTicket(broker, "AAPL", qty=2))
        eventually(lambda: "no market data subscription" in ticket.price.value, 5)
        assert "no live price" in ticket.price.value
        ticket.submit.click()
        assert "no last price yet" in ticket.warning.value and sent_orders(broker).empty  # unpriced: asks first
        ticket.confirm.click()
        assert ticket.wait().status.value == "FILLED" and len(sent_orders(broker)) == 1
    finally:
        broker.close()


def test_a_confirm_asked_before_the_symbol_proved_unknown_is_withdrawn(broker: workbench.Broker,
                                                                       closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    with loop_busy():  # the user is faster than the broker's "unknown symbol"
        ticket.symbol.value = "ZZZZ"
        ticket.submit.click()
        assert ticket.confirm.layout.display != "none" and "no last price yet" in ticket.warning.value
    eventually(lambda: "wb-error" in ticket.price.value and "ZZZZ" in ticket.price.value, 5)
    assert ticket.confirm.layout.display == "none" and "no last price yet" not in ticket.warning.value
    ticket.confirm.click()  # a click on the stale button (already on its way) sends nothing
    eventually(lambda: not ticket._futures, 5)
    assert sent_orders(broker).empty and ticket.last_order is None
    ticket.submit.click()  # and Submit says why, naming the field
    assert state(ticket) == "ERROR" and "symbol" in ticket.status.value and sent_orders(broker).empty
