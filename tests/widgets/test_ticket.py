"""OrderTicket on real brokers: set values, click, assert on state, on the ledger and on the log."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from tests.contract.conftest import ADAPTERS
from tests.widgets.conftest import DayOnlyPaper, quoted, sent_orders, state
from workbench.core.enums import Feature, OrderType, TimeInForce
from workbench.widgets import OrderTicket, ticket as ticket_module
from workbench.widgets.ticket import round_to_tick


def test_market_order_fills_and_the_status_line_says_so(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=7)))
    ticket.submit.click()
    order = ticket.wait()
    assert order is not None and order.status.value == "FILLED" and order.filled_qty == 7
    assert state(ticket) == "FILLED" and order.order_id in ticket.status.value
    ledger = sent_orders(broker)
    assert list(ledger["client_order_id"]) == [order.client_order_id] and ledger["status"].iloc[0] == "FILLED"


def test_price_line_is_live_and_labelled_simulated(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "MSFT")))
    assert "MSFT" in ticket.price.value and "simulated" in ticket.price.value
    assert "bid" in ticket.price.value and "ask" in ticket.price.value
    ticket.order_type.value = "LIMIT"
    assert Decimal(repr(ticket.limit_price.value)) == round_to_tick(ticket._quote.last)  # pre-filled, on tick
    # The account is fetched in the background, as the quote is: wait for it instead of racing it.
    eventually(lambda: "buying power after" in ticket.preview.value, 10)
    assert "notional" in ticket.preview.value


@pytest.mark.parametrize("kind, limit, stop, trail", [
    ("MARKET", False, False, False), ("LIMIT", True, False, False), ("STOP", False, True, False),
    ("STOP_LIMIT", True, True, False),
])
def test_price_fields_show_only_when_the_order_type_needs_them(broker: workbench.Broker, closing: Callable,
                                                               kind: str, limit: bool, stop: bool, trail: bool) -> None:
    ticket = closing(OrderTicket(broker))
    ticket.order_type.value = kind
    shown = {name: getattr(ticket, name).layout.display != "none" for name in ("limit_price", "stop_price",
                                                                                "trail_percent")}
    assert shown == {"limit_price": limit, "stop_price": stop, "trail_percent": trail}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_the_ticket_is_the_adapters_and_trades_on_it(adapter: str, settings_dict: dict, tmp_path: Any,
                                                     closing: Callable) -> None:
    with ADAPTERS[adapter](settings_dict, tmp_path) as broker:
        ticket = OrderTicket(broker, "AAPL", qty=2)
        try:
            caps = broker.capabilities
            assert list(ticket.tif.options) == [t.value for t in TimeInForce if t in caps.tifs]
            assert list(ticket.order_type.options) == [t.value for t in OrderType if t in caps.order_types]
            assert ticket.broker.value == broker.name and broker.name in ticket.broker.options
            assert (ticket.size_by.layout.display != "none") == (Feature.NOTIONAL in caps.features)
            quoted(ticket).submit.click()
            order = ticket.wait(timeout=20)
            assert order.status.value == "FILLED" and order.filled_qty == 2 and state(ticket) == "FILLED"
            assert broker.get_order(order.order_id).client_order_id == order.client_order_id
        finally:
            ticket.close()


def test_switching_broker_rebuilds_capabilities_and_follows_fills(settings_dict: dict, closing: Callable) -> None:
    workbench.register_adapter("dayonly", DayOnlyPaper)
    broker = workbench.connect("paper", settings=settings_dict)
    try:
        ticket = closing(OrderTicket(broker))
        ticket.tif.value = "GTC"
        ticket.broker.value = "dayonly"
        eventually(lambda: ticket.session.name == "dayonly" and not ticket.submit.disabled, 10)
        assert list(ticket.tif.options) == ["DAY"] and ticket.tif.value == "DAY"
        assert list(ticket.order_type.options) == ["MARKET", "LIMIT"]
        quoted(ticket).submit.click()  # no order stream here: the status follows the fill events
        assert ticket.wait().status.value == "FILLED"
    finally:
        broker.close()


def test_fat_finger_notional_needs_an_explicit_confirm(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=500)))  # ~72k > confirm_notional 50k
    ticket.submit.click()
    assert ticket.confirm.layout.display != "none" and "confirm_notional" in ticket.warning.value
    assert sent_orders(broker).empty
    ticket.confirm.click()
    assert ticket.wait().status.value == "FILLED"
    assert len(sent_orders(broker)) == 1


def test_fat_finger_limit_far_from_the_market(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    ticket.order_type.value = "LIMIT"
    ticket.limit_price.value = float(round_to_tick(ticket._quote.last * Decimal("0.8")))
    ticket.submit.click()
    assert "20.0% away" in ticket.warning.value and sent_orders(broker).empty
    ticket.qty.value = 2  # editing the form withdraws the pending confirm: nothing is sent by a stale click
    assert ticket.confirm.layout.display == "none"
    ticket.confirm.click()
    assert sent_orders(broker).empty
    ticket.submit.click()
    ticket.confirm.click()
    order = ticket.wait("NEW")
    assert order.status.value == "NEW" and order.qty == 2 and len(sent_orders(broker)) == 1


@pytest.mark.parametrize("setup, field", [
    (lambda t: setattr(t.qty, "value", 0), "qty"),
    (lambda t: setattr(t.qty, "value", -5), "qty"),
    (lambda t: (setattr(t.order_type, "value", "LIMIT"), setattr(t.limit_price, "value", 0)), "limit_price"),
    (lambda t: (setattr(t.order_type, "value", "STOP"), setattr(t.stop_price, "value", 0)), "stop_price"),
    (lambda t: (setattr(t.order_type, "value", "LIMIT"), setattr(t.limit_price, "value", 145.123)), "limit_price"),
])
def test_bad_input_shows_the_field_and_sends_nothing(broker: workbench.Broker, closing: Callable,
                                                     caplog: pytest.LogCaptureFixture, setup: Callable,
                                                     field: str) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    setup(ticket)
    ticket.submit.click()
    eventually(lambda: state(ticket) == "ERROR", 5)
    assert field in ticket.status.value
    assert sent_orders(broker).empty
    assert any(field in r.getMessage() for r in caplog.records if r.name.startswith("workbench.widgets"))


@pytest.mark.parametrize("setup, text", [
    (lambda t: setattr(t.symbol, "value", ""), "symbol: not a valid symbol: ''"),
    (lambda t: setattr(t.qty, "value", 1e13),
     "qty: Input should be less than or equal to 1E+12 (got '10000000000000')"),
])
def test_bad_input_is_said_in_plain_words(broker: workbench.Broker, closing: Callable, setup: Callable,
                                          text: str) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    setup(ticket)
    ticket.submit.click()
    eventually(lambda: state(ticket) == "ERROR", 5)
    assert re.sub(r"<[^>]+>", "", html.unescape(ticket.status.value)) == text
    assert sent_orders(broker).empty


def test_unknown_symbol_is_shown_and_nothing_is_sent(broker: workbench.Broker, closing: Callable) -> None:
    ticket = closing(OrderTicket(broker, "ZZZZ"))
    eventually(lambda: "wb-error" in ticket.price.value, 5)
    assert "ZZZZ" in ticket.price.value and ticket.subscription is None
    ticket.submit.click()
    assert state(ticket) == "ERROR" and "symbol" in ticket.status.value
    assert sent_orders(broker).empty


def test_double_click_sends_once(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=3)))
    ticket.submit.click()
    ticket.submit.click()
    ticket.wait()
    ticket.submit.click()  # still the same submission (same form, within the double-click window)
    ledger = sent_orders(broker)
    assert len(ledger) == 1 and ledger["qty"].iloc[0] == 3


def test_each_deliberate_submission_gets_its_own_client_order_id(broker: workbench.Broker, closing: Callable,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticket_module, "DOUBLE_CLICK_SECONDS", 0.0)
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=3)))
    ids = []
    for _ in range(2):
        ticket.submit.click()
        ids.append(ticket.wait().client_order_id)
    assert len(set(ids)) == 2 and len(sent_orders(broker)) == 2


def test_status_line_follows_partial_fills(make_broker: Callable, closing: Callable) -> None:
    broker = make_broker(partial_fill_fraction=0.25)
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=8)))
    seen: list[str] = []
    ticket.status.observe(lambda change: seen.append(state(ticket) or ""), names="value")
    ticket.submit.click()
    order = ticket.wait(timeout=20)
    assert order.status.value == "FILLED" and order.filled_qty == 8
    steps = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert steps[0] == "PENDING_NEW" and "PARTIALLY_FILLED" in steps and steps[-1] == "FILLED"
    assert steps.index("PARTIALLY_FILLED") < steps.index("FILLED")  # never backwards


def _preview_number(ticket: OrderTicket, label: str) -> Decimal:
    match = re.search(label + r" (-?[\d,]+\.\d\d)", ticket.preview.value)
    assert match, ticket.preview.value
    return Decimal(match.group(1).replace(",", ""))


def test_preview_buying_power_after_a_sell_credits_it_and_a_buy_spends_it(make_broker: Callable,
                                                                          closing: Callable) -> None:
    broker = make_broker(commission=1, tick_interval=3600)  # quotes stand still while we read the preview
    broker.place_market_order("AAPL", 10, "buy")
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=4)))
    power, last = broker.get_account().buying_power, ticket._quote.last
    assert _preview_number(ticket, "buying power after") == (power - 4 * last - 1).quantize(Decimal("0.01"))
    ticket.side.value = "SELL"
    after = _preview_number(ticket, "buying power after")
    assert after == (power + 4 * last - 1).quantize(Decimal("0.01"))
    ticket.submit.click()
    assert ticket.wait().status.value == "FILLED"
    assert abs(broker.get_account().buying_power - after) < Decimal("0.01") * 4 * last  # what the ledger booked


def test_a_broker_rejection_shows_rejected(make_broker: Callable, closing: Callable) -> None:
    broker = make_broker(starting_cash=1000)
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=100)))  # ~14k of a 1k account
    ticket.submit.click()
    assert ticket.wait() is None
    assert state(ticket) == "REJECTED" and "buying power" in ticket.status.value
    assert sent_orders(broker).empty


def test_notional_orders_from_the_ticket(broker: workbench.Broker, closing: Callable) -> None:
    ticket = quoted(closing(OrderTicket(broker, "AAPL")))
    assert ticket.size_by.layout.display != "none" and ticket.notional.layout.display == "none"
    ticket.size_by.value = "notional"
    assert ticket.qty.layout.display == "none" and ticket.notional.layout.display != "none"
    ticket.submit.click()
    assert state(ticket) == "ERROR" and "notional" in ticket.status.value and sent_orders(broker).empty
    ticket.notional.value = 60_000
    ticket.submit.click()
    assert "confirm_notional" in ticket.warning.value and sent_orders(broker).empty
    ticket.notional.value = 1_000
    assert "notional ≈ 1,000.00" in ticket.preview.value and "shares" in ticket.preview.value
    ticket.submit.click()
    order = ticket.wait()
    assert order.status.value == "FILLED" and order.notional == 1000 and order.qty is not None
    assert abs(order.filled_qty * order.avg_fill_price - 1000) < 1
    assert "$1,000.00" in ticket.status.value
    ledger = sent_orders(broker)
    assert len(ledger) == 1 and ledger["notional"].iloc[0] == 1000
    ticket.order_type.value = "LIMIT"  # notional is for market orders only: back to qty
    assert ticket.size_by.layout.display == "none" and ticket.qty.layout.display != "none"
    assert ticket.build_order().qty == 10 and ticket.build_order().notional is None


def test_changing_symbol_or_closing_unsubscribes(broker: workbench.Broker) -> None:
    ticket = quoted(OrderTicket(broker, "AAPL"))
    first = ticket.subscription
    ticket.symbol.value = "msft"
    assert ticket.symbol.value == "MSFT"
    eventually(lambda: ticket.subscription is not None and ticket.subscription is not first, 5)
    assert not first.active and ticket.subscription.symbols == ("MSFT",)
    second = ticket.subscription
    ticket.close()
    eventually(lambda: not second.active, 5)
    assert ticket.closed and ticket.widget.comm is None


def test_a_ticket_that_connected_its_own_broker_closes_it(isolated_env: Any) -> None:
    ticket = OrderTicket(settings={"paper": {"tick_interval": 0.02}})
    assert ticket.session.is_connected() and ticket.session.settings.section("paper")["db_path"] == str(isolated_env)
    ticket.close()
    assert not ticket.session.is_connected()
