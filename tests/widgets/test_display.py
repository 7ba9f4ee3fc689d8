"""Rich displays: readable reprs, HTML cards, the Broker card, compact frames that keep every column."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import pandas as pd
import pytest

import workbench
from tests.conftest import eventually
from workbench.core import display
from workbench.widgets import desk


def test_account_repr_is_a_readable_block_and_html_a_card(broker: workbench.Broker) -> None:
    account = broker.get_account()
    text = repr(account)
    assert text.splitlines()[0] == "AccountInfo PAPER-0001 (USD)"
    assert any(line.split() == ["buying", "power", "100,000.00"] for line in text.splitlines())
    assert str(account) == text and "Decimal(" not in text
    html = account._repr_html_()
    assert "wb-account-card" in html and "100,000.00" in html and "buying power" in html


def test_order_position_quote_fill_reprs(broker: workbench.Broker) -> None:
    order = broker.place_market_order("AAPL", 10, "buy")
    assert repr(order).startswith(f"<Order {order.order_id} BUY 10 AAPL MARKET DAY FILLED filled 10 @ ")
    assert "FILLED" in order._repr_html_() and order.client_order_id in order._repr_html_()
    position = broker.get_position("AAPL")
    assert repr(position).startswith("<Position AAPL 10 @ ") and "P&L" in repr(position)
    quote = broker.get_quote("AAPL")
    assert "simulated" in repr(quote) and "wb-sim" in quote._repr_html_()
    fill = broker.adapter.engine.fills()[0]
    assert repr(fill).startswith(f"<FillEvent {fill.exec_id} BUY 10 AAPL @ ") and fill.exec_id in fill._repr_html_()


def test_broker_card_says_state_account_and_simulated_data(broker: workbench.Broker) -> None:
    card = broker._repr_html_()
    assert "wb-broker-card" in card and "connected" in card and "PAPER-0001" in card and "simulated" in card
    assert repr(broker).startswith("<Broker paper connected account=PAPER-0001 data=sim (simulated)")


def test_broker_card_never_shows_secrets(monkeypatch: pytest.MonkeyPatch, settings_dict: dict) -> None:
    monkeypatch.setenv("ALPACA_SECRET_KEY", "sk-DISPLAY-SECRET-9")
    with workbench.connect("paper", settings=settings_dict) as broker:
        assert "sk-DISPLAY-SECRET-9" not in broker._repr_html_() + repr(broker)


def test_compact_frames_keep_every_column(broker: workbench.Broker) -> None:
    broker.place_market_order("AAPL", 10, "buy")
    for frame in (broker.get_orders_history(), broker.get_positions(), broker.get_fills()):
        html = display.frame_html(frame)
        assert html is not None and f"{len(frame.columns) + 1} columns" in html
        headers = re.findall(r"<th[^>]*>([^<]*)</th>", html)
        empty = re.search(r"empty here: ([^<·]*)", html)
        shown = headers + (empty.group(1).strip().split(", ") if empty else [])
        assert len(shown) == len(frame.columns) + 1  # every column is either shown or named as empty
        assert not empty or all(frame[c].isna().all() for c in ("trail_price", "trail_percent", "notional"))
    orders = display.frame_html(broker.get_orders_history())
    assert "+00:00" not in orders and "…" in orders  # seconds-precision times, shortened client ids
    assert display.frame_html(pd.DataFrame({"a": [1]})) is None  # other frames are left to pandas


def test_long_frames_are_truncated_like_pandas(broker: workbench.Broker) -> None:
    for _ in range(12):
        broker.place_market_order("AAPL", 1, "buy")
    html = display.frame_html(broker.get_fills(), max_rows=6)
    assert html.count("<tr>") == 1 + 6 + 1 and "12 fills" in html


def test_ipython_shows_workbench_frames_compactly_and_others_as_pandas(broker: workbench.Broker) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert display.install_frame_display()
        html = shell.display_formatter.formatters["text/html"]
        assert "wb-frame-orders" in html(broker.get_orders_history())
        plain = pd.DataFrame({"x": [1, 2]})
        assert html(plain) == plain._repr_html_()
    finally:
        InteractiveShell.clear_instance()


def _dom_classes(widget: object) -> set[str]:
    found = set(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        found |= _dom_classes(child)
    return found


def test_display_classes_and_the_desks_stable_classes_are_disjoint(broker: workbench.Broker,
                                                                   closing: Callable) -> None:
    """A notebook shows both (02 prints frames and the Broker card next to the desk): a selector for one,
    a browser test's or a user's stylesheet, must never match the other."""
    order = broker.place_market_order("AAPL", 2, "buy")
    limit = broker.place_limit_order("MSFT", 1, "buy", limit_price=1)  # an open order: the blotter's rows
    view = closing(desk(broker))
    eventually(lambda: limit.order_id in view.blotter.cancel_buttons() and "AAPL" in view.blotter.positions.value, 10)
    desk_classes = _dom_classes(view.widget)
    assert {"wb-broker", "wb-orders", "wb-positions", "wb-fills", "wb-order-row", "wb-cancel"} <= desk_classes
    shown = [broker._repr_html_(), broker.get_account()._repr_html_(), order._repr_html_(),
             broker.get_position("AAPL")._repr_html_(), broker.get_quote("AAPL")._repr_html_(),
             broker.adapter.engine.fills()[0]._repr_html_(),
             *(display.frame_html(frame) for frame in (broker.get_orders_history(), broker.get_positions(),
                                                       broker.get_fills()))]
    display_classes = {css for html in shown for attr in re.findall(r"class=['\"]([^'\"]*)['\"]", html)
                       for css in attr.split()}
    assert {"wb-broker-card", "wb-frame-orders", "wb-frame-positions", "wb-frame-fills"} <= display_classes
    assert display_classes.isdisjoint(desk_classes), display_classes & desk_classes


def test_import_workbench_stays_light() -> None:
    code = ("import sys, workbench; b = workbench.connect(settings={'paper': {'db_path': ':memory:'}}); repr(b); "
            "print(sorted(m for m in ('ipywidgets', 'matplotlib', 'IPython', 'workbench.widgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_frame_the_compact_display_cannot_render_falls_back_and_says_why(
        broker: workbench.Broker, caplog: pytest.LogCaptureFixture) -> None:
    broker.place_market_order("AAPL", 1, "buy")
    odd = broker.get_orders_history().astype({"qty": object})
    odd.iloc[0, odd.columns.get_loc("qty")] = "ten"  # the schema's columns, a value it cannot format
    assert display._frame_formatter(odd) == odd._repr_html_()  # pandas' own display, nothing broken
    assert any("compact display" in r.getMessage() and r.exc_info for r in caplog.records)
