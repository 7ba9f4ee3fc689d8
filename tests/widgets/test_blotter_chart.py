"""Blotter, FillsFeed, PriceChart and desk(): event-driven updates, Cancel, close()."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import workbench
from tests.conftest import eventually
from tests.widgets.conftest import quoted, sent_orders
from workbench.widgets import Blotter, Desk, FillsFeed, PriceChart, desk, live


def resting_limit(broker: workbench.Broker, symbol: str = "AAPL", qty: int = 5) -> workbench.Order:
    price = broker.get_market_price(symbol)
    return broker.place_limit_order(symbol, qty, "buy", limit_price=(price * Decimal("0.7")).quantize(Decimal("0.01")))


def test_blotter_shows_positions_orders_and_fills_from_events(broker: workbench.Broker, closing: Callable) -> None:
    broker.place_market_order("MSFT", 4, "buy")
    blotter = closing(Blotter(broker))
    eventually(lambda: "MSFT" in blotter.positions.value, 5)
    assert "no open orders" in blotter.orders.children[0].value
    limit = resting_limit(broker)  # placed after the blotter was built: it arrives by on_order
    eventually(lambda: limit.order_id in blotter.cancel_buttons(), 5)
    assert "wb-cancel" in blotter.cancel_buttons()[limit.order_id]._dom_classes
    broker.place_market_order("AAPL", 3, "buy")  # a fill: positions and fills feed follow
    eventually(lambda: "AAPL" in blotter.positions.value and blotter.fills.table.value.count("<tr>") == 3, 5)
    assert blotter.fills.table.value.index("AAPL") < blotter.fills.table.value.index("MSFT")  # newest first
    assert "simulated" in blotter.positions.value


def test_blotter_cancel_button_cancels_the_order(broker: workbench.Broker, closing: Callable) -> None:
    first, second = resting_limit(broker), resting_limit(broker, "MSFT")
    blotter = closing(Blotter(broker))
    eventually(lambda: set(blotter.cancel_buttons()) == {first.order_id, second.order_id}, 5)
    rows = [row.children[0] for row in blotter.orders.children]
    assert rows[0] is blotter.cancel_buttons()[second.order_id]  # newest first
    blotter.cancel_buttons()[first.order_id].click()
    eventually(lambda: first.order_id not in blotter.cancel_buttons(), 5)
    assert "CANCELLED" in blotter.message.value and first.order_id in blotter.message.value
    ledger = sent_orders(broker)
    assert ledger.loc[first.order_id, "status"] == "CANCELLED" and ledger.loc[second.order_id, "status"] == "NEW"


def test_closed_blotter_stops_following(broker: workbench.Broker) -> None:
    blotter = Blotter(broker)
    eventually(lambda: "no positions" in blotter.positions.value, 5)
    refreshed: list[int] = []
    blotter.on_refresh(lambda: refreshed.append(1))
    blotter.close()
    order = resting_limit(broker)
    broker.place_market_order("AAPL", 1, "buy")
    probe = Blotter(broker)  # a live blotter sees the same events, so they were delivered
    try:
        eventually(lambda: order.order_id in probe.cancel_buttons() and "AAPL" in probe.positions.value, 5)
    finally:
        probe.close()
    assert refreshed == [] and order.order_id not in blotter.open_orders and blotter.closed


def test_a_late_snapshot_never_brings_a_finished_order_back(broker: workbench.Broker, closing: Callable) -> None:
    blotter = closing(Blotter(broker))
    limit = resting_limit(broker)
    eventually(lambda: limit.order_id in blotter.cancel_buttons(), 5)
    working = broker.get_order(limit.order_id)
    broker.cancel_order(limit.order_id)
    eventually(lambda: limit.order_id not in blotter.open_orders, 5)
    blotter.on_order_update(working)  # the NEW snapshot again, late (a slow stream, or the blotter's first load)
    assert limit.order_id not in blotter.open_orders and limit.order_id not in blotter.cancel_buttons()
    assert "no open orders" in blotter.orders.children[0].value


def test_a_blotter_on_a_closed_broker_stops_re_marking_and_says_so(make_broker: Callable) -> None:
    broker = make_broker()
    blotter = Blotter(broker, refresh_seconds=0.02)
    try:
        eventually(lambda: "no positions" in blotter.positions.value, 5)
        broker.close()  # before the blotter: the timer must neither fail every 20 ms nor hide it
        eventually(lambda: re.search("is (disconnected|closed)", getattr(blotter, "state", blotter.message).value), 3)
        assert "no positions" in blotter.positions.value  # the last marks stay on screen
    finally:
        blotter.close()  # the autouse fixture fails the test if any refresh logged an error


def test_fills_feed_lists_todays_fills_newest_first_once_each(broker: workbench.Broker, closing: Callable) -> None:
    broker.place_market_order("AAPL", 1, "buy")
    feed = closing(FillsFeed(broker, limit=2))
    eventually(lambda: "AAPL" in feed.table.value, 5)
    broker.place_market_order("MSFT", 2, "buy")
    broker.place_market_order("NVDA", 3, "buy")
    eventually(lambda: "NVDA" in feed.table.value, 5)
    assert "MSFT" in feed.table.value and "AAPL" not in feed.table.value  # only the newest 2 shown
    assert "3 fills, newest 2 shown" in feed.table.value
    assert [f.symbol for f in feed.fills] == ["NVDA", "MSFT", "AAPL"]  # every fill of today, the loaded one too


def test_fills_feed_fills_hold_the_fills_loaded_at_start(broker: workbench.Broker, closing: Callable) -> None:
    broker.place_market_order("AAPL", 1, "buy")
    broker.place_market_order("MSFT", 2, "buy")
    feed = closing(FillsFeed(broker))
    eventually(lambda: "MSFT" in feed.table.value and "AAPL" in feed.table.value, 5)
    earlier = broker.adapter.engine.fills()
    assert feed.fills == sorted(earlier, key=lambda f: f.ts, reverse=True)  # the same events, newest first
    assert [f.symbol for f in feed.fills] == ["MSFT", "AAPL"] and feed.fills[0].broker == broker.name
    broker.place_market_order("NVDA", 3, "buy")
    eventually(lambda: len(feed.fills) == 3, 5)
    assert [f.symbol for f in feed.fills] == ["NVDA", "MSFT", "AAPL"]
    assert len({f.exec_id for f in feed.fills}) == 3 and feed.table.value.count("<tr>") == 4


def test_chart_marks_fills_and_redraws_on_a_new_fill(broker: workbench.Broker, closing: Callable) -> None:
    broker.place_market_order("AAPL", 2, "buy")
    chart = closing(PriceChart(broker, "AAPL", days=30))
    eventually(lambda: chart.renders >= 1, 20)
    assert chart.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 of your fills marked" in chart.caption.value and "simulated" in chart.caption.value
    broker.place_market_order("AAPL", 1, "sell")
    eventually(lambda: "2 of your fills marked" in chart.caption.value, 20)
    renders = chart.renders
    broker.place_market_order("MSFT", 1, "buy")  # another symbol's fill does not redraw this chart
    chart.symbol = "msft"
    eventually(lambda: chart.symbol == "MSFT" and "MSFT" in chart.caption.value, 20)
    assert chart.renders == renders + 1 and "1 of your fills marked" in chart.caption.value


def test_chart_errors_are_text_and_its_fills_are_public(broker: workbench.Broker, closing: Callable) -> None:
    chart = closing(PriceChart(broker, "ZZZZ"))  # well formed, unknown: the broker's answer is on the caption
    eventually(lambda: "wb-error" in chart.caption.value and "ZZZZ" in chart.caption.value, 10)
    order = broker.place_market_order("AAPL", 1, "buy")
    chart.symbol = "AAPL"
    eventually(lambda: order.order_id in set(chart.fills["order_id"]), 20)


def test_desk_one_liner_wires_ticket_blotter_and_chart(broker: workbench.Broker, closing: Callable) -> None:
    view = closing(desk(broker, symbol="AAPL"))
    assert isinstance(view, Desk) and "wb-desk" in view.widget._dom_classes
    classes = _classes(view.widget)
    for css in ("wb-ticket", "wb-symbol", "wb-side", "wb-qty", "wb-order-type", "wb-limit-price", "wb-tif",
                "wb-submit", "wb-confirm", "wb-status", "wb-price", "wb-blotter", "wb-positions", "wb-orders",
                "wb-fills", "wb-chart"):
        assert css in classes, css
    eventually(lambda: view.ticket._quote is not None, 5)
    view.ticket.submit.click()
    view.ticket.wait()
    eventually(lambda: "AAPL" in view.blotter.positions.value and "1 of your fills" in view.chart.caption.value, 20)
    view.ticket.symbol.value = "NVDA"
    eventually(lambda: "NVDA" in view.chart.caption.value, 20)
    mimebundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in mimebundle


def test_closing_the_desk_closes_every_part(broker: workbench.Broker) -> None:
    view = desk(broker)
    parts = [view.ticket, view.blotter, view.blotter.fills, view.chart, view]
    assert all(p in live() for p in parts)
    view.close()
    assert all(p.closed for p in parts) and not any(p in live() for p in parts)
    assert broker.is_connected()  # the desk did not connect it, so it does not close it


def test_switching_the_desks_broker_rebuilds_blotter_and_chart_on_the_new_one(settings_dict: dict,
                                                                               tmp_path: Path) -> None:
    pytest.importorskip("ib_async")
    from workbench.core.models import NeutralOrder
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gateway.sqlite"), slippage_bps=0, commission=0),
                         SimProvider())
    engine.submit(NeutralOrder(symbol="NVDA", side="buy", qty=3))  # a position only the gateway's account has
    emulator = TwsEmulator(engine, port=0, tick_interval=0.05).start_in_thread()
    settings = {**settings_dict, "ib": {"port": emulator.port, "client_id": 7, "sdk": "ib_async", "connect_timeout": 5}}
    paper = workbench.connect("paper", settings=settings)
    view = None
    try:
        paper.place_market_order("MSFT", 4, "buy")  # a position only the paper ledger has
        view = desk(paper, symbol="AAPL")
        old_blotter, old_chart = view.blotter, view.chart
        eventually(lambda: "MSFT" in old_blotter.positions.value, 5)
        view.ticket.broker.value = "ib"
        old_parts = (old_blotter, old_blotter.fills, old_chart)
        eventually(lambda: all(part.closed for part in old_parts), 20)  # the switch's last step
        assert view.session.name == "ib" and not view.ticket.submit.disabled and paper.is_connected()
        new_blotter, new_chart = view.blotter, view.chart
        assert new_blotter.session is view.session and new_chart.session is view.session
        assert view._bottom.children == (new_blotter.widget,) and new_chart.widget in view._top.children
        assert not any(part in live() for part in old_parts) and new_blotter in live() and new_chart in live()
        eventually(lambda: "NVDA" in new_blotter.positions.value, 20)
        assert "MSFT" not in new_blotter.positions.value
        quoted(view.ticket).submit.click()
        order = view.ticket.wait(timeout=20)
        assert order.status.value == "FILLED" and "AAPL" in {o.symbol for o in engine.orders()}  # sent to the gateway
        eventually(lambda: "AAPL" in new_blotter.positions.value and "1 of your fills" in new_chart.caption.value
                   and [f.symbol for f in new_blotter.fills.fills] == ["AAPL", "NVDA"], 20)
        assert "AAPL" not in set(sent_orders(paper)["symbol"]) and paper.is_connected()  # not the desk's to close
    finally:
        if view is not None:
            view.close()
        paper.close()
        emulator.stop_thread()
        engine.close()


def _classes(widget) -> set[str]:
    found = set(getattr(widget, "_dom_classes", ()))
    for child in getattr(widget, "children", ()):
        found |= _classes(child)
    return found


def test_todays_fills_are_the_new_york_trading_days() -> None:
    from datetime import UTC, datetime

    from workbench.widgets.blotter import _today

    evening = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # 19:30 in New York on Dec 1: still Dec 1's session
    assert _today(evening) == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)  # 23:00 EDT on June 30
    assert _today(summer) == datetime(2026, 6, 30, 4, 0, tzinfo=UTC)
