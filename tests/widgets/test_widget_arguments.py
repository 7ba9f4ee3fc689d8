"""Bad arguments to the desk widgets' public entry points: one typed error naming the field, and nothing left.

Each constructor checks its arguments before it makes a widget, a subscription, a timer or a thread (or connects
a broker), so a refused call leaves ``threading.enumerate()``, ``workbench.widgets.live()`` and ipywidgets'
registry of widget instances exactly as they were.

``WORKBENCH_PROPERTY_EXAMPLES=500 pytest tests/widgets/test_widget_arguments.py`` hunts longer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from ipywidgets.widgets.widget import _instances

import workbench
from tests.conftest import eventually
from tests.core.test_bad_input_properties import garbage
from tests.widgets.conftest import quoted, sent_orders
from workbench.widgets import Blotter, FillsFeed, OrderTicket, PriceChart, desk, live

EXAMPLES = settings(max_examples=int(os.environ.get("WORKBENCH_PROPERTY_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BROKER = object()  # stands for the test's open paper Broker
CLOSED = object()  # stands for a closed one


def _running() -> tuple[frozenset[threading.Thread], frozenset[int], int]:
    """Threads, live desk components and ipywidgets instances now."""
    return frozenset(threading.enumerate()), frozenset(id(c) for c in live()), len(_instances)


@pytest.fixture
def closed_broker(settings_dict: dict[str, Any], tmp_path: Any) -> workbench.Broker:
    """A closed paper Broker (on a ledger of its own: the test's Broker is not disturbed)."""
    broker = workbench.connect("paper", settings={**settings_dict, "paper": {**settings_dict["paper"],
                                                                           "db_path": str(tmp_path / "closed.db")}})
    broker.close()
    return broker


#: name -> (call, the error, the field it names); ``b`` is an open paper Broker, ``c`` a closed one.
CASES: dict[str, tuple[Callable[[Any, Any], Any], type[workbench.WorkbenchError], str | None]] = {
    "OrderTicket(symbol=5)": (lambda b, c: OrderTicket(b, symbol=5), workbench.InvalidInput, "symbol"),
    "OrderTicket(symbol='a,b')": (lambda b, c: OrderTicket(b, symbol="AAPL,MSFT"), workbench.InvalidInput, "symbol"),
    "OrderTicket(qty='x')": (lambda b, c: OrderTicket(b, qty="x"), workbench.InvalidInput, "qty"),
    "OrderTicket(qty=-1)": (lambda b, c: OrderTicket(b, qty=-1), workbench.InvalidInput, "qty"),
    "OrderTicket(qty=nan)": (lambda b, c: OrderTicket(b, qty=float("nan")), workbench.InvalidInput, "qty"),
    "OrderTicket(qty=sNaN)": (lambda b, c: OrderTicket(b, qty=Decimal("sNaN")), workbench.InvalidInput, "qty"),
    "OrderTicket(qty=1e999999)": (lambda b, c: OrderTicket(b, qty="1e999999"), workbench.InvalidInput, "qty"),
    "OrderTicket(qty=True)": (lambda b, c: OrderTicket(b, qty=True), workbench.InvalidInput, "qty"),
    "OrderTicket(broker='x')": (lambda b, c: OrderTicket(broker="x"), workbench.ConfigError, "broker"),
    "OrderTicket(broker=5)": (lambda b, c: OrderTicket(broker=5), workbench.InvalidInput, "broker"),
    "OrderTicket(closed broker)": (lambda b, c: OrderTicket(c), workbench.BrokerClosed, None),
    "OrderTicket(broker, settings)": (lambda b, c: OrderTicket(b, settings={}), workbench.InvalidInput, "settings"),
    "OrderTicket(settings=5)": (lambda b, c: OrderTicket(settings=5), workbench.ConfigError, "settings"),
    "OrderTicket(symbol=None), no broker": (lambda b, c: OrderTicket(symbol=None), workbench.InvalidInput, "symbol"),
    "PriceChart(kind='pie')": (lambda b, c: PriceChart(b, kind="pie"), workbench.InvalidInput, "kind"),
    "PriceChart(days=0)": (lambda b, c: PriceChart(b, "AAPL", days=0), workbench.InvalidInput, "days"),
    "PriceChart(days=None)": (lambda b, c: PriceChart(b, "AAPL", days=None), workbench.InvalidInput, "days"),
    "PriceChart(days=1.5)": (lambda b, c: PriceChart(b, "AAPL", days=1.5), workbench.InvalidInput, "days"),
    "PriceChart(interval='7x')": (lambda b, c: PriceChart(b, "AAPL", interval="7x"), workbench.InvalidInput,
                                  "interval"),
    "PriceChart(interval=5)": (lambda b, c: PriceChart(b, "AAPL", interval=5), workbench.InvalidInput, "interval"),
    "PriceChart(symbol=5)": (lambda b, c: PriceChart(b, 5), workbench.InvalidInput, "symbol"),
    "PriceChart(symbol=list)": (lambda b, c: PriceChart(b, ["AAPL"]), workbench.InvalidInput, "symbol"),
    "PriceChart(symbol='<b>bad')": (lambda b, c: PriceChart(b, "<b>bad"), workbench.InvalidInput, "symbol"),
    "PriceChart(None)": (lambda b, c: PriceChart(None), workbench.InvalidInput, "broker"),
    "PriceChart('paper')": (lambda b, c: PriceChart("paper"), workbench.InvalidInput, "broker"),
    "PriceChart(closed broker)": (lambda b, c: PriceChart(c), workbench.BrokerClosed, None),
    "Blotter(5)": (lambda b, c: Blotter(5), workbench.InvalidInput, "broker"),
    "Blotter(None)": (lambda b, c: Blotter(None), workbench.InvalidInput, "broker"),
    "Blotter(closed broker)": (lambda b, c: Blotter(c), workbench.BrokerClosed, None),
    "Blotter(refresh_seconds=0)": (lambda b, c: Blotter(b, refresh_seconds=0), workbench.InvalidInput,
                                   "refresh_seconds"),
    "Blotter(refresh_seconds=-1)": (lambda b, c: Blotter(b, refresh_seconds=-1), workbench.InvalidInput,
                                    "refresh_seconds"),
    "Blotter(refresh_seconds=nan)": (lambda b, c: Blotter(b, refresh_seconds=float("nan")), workbench.InvalidInput,
                                     "refresh_seconds"),
    "Blotter(refresh_seconds='5')": (lambda b, c: Blotter(b, refresh_seconds="5"), workbench.InvalidInput,
                                     "refresh_seconds"),
    "FillsFeed(None)": (lambda b, c: FillsFeed(None), workbench.InvalidInput, "broker"),
    "FillsFeed(limit=0)": (lambda b, c: FillsFeed(b, limit=0), workbench.InvalidInput, "limit"),
    "FillsFeed(limit='x')": (lambda b, c: FillsFeed(b, limit="x"), workbench.InvalidInput, "limit"),
    "FillsFeed(since='x')": (lambda b, c: FillsFeed(b, since="yesterday-ish"), workbench.InvalidInput, "since"),
    "desk(symbol=None)": (lambda b, c: desk(symbol=None), workbench.InvalidInput, "symbol"),
    "desk(b, symbol=5)": (lambda b, c: desk(b, symbol=5), workbench.InvalidInput, "symbol"),
    "desk('x')": (lambda b, c: desk("x"), workbench.ConfigError, "broker"),
    "desk(5)": (lambda b, c: desk(5), workbench.InvalidInput, "broker"),
    "desk(settings=5)": (lambda b, c: desk(settings=5), workbench.ConfigError, "settings"),
    "desk(b, settings={})": (lambda b, c: desk(b, settings={}), workbench.InvalidInput, "settings"),
    "desk(closed broker)": (lambda b, c: desk(c), workbench.BrokerClosed, None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_argument_is_one_typed_error_naming_it_and_nothing_is_made(
        broker: workbench.Broker, closed_broker: workbench.Broker, case: tuple[Any, ...]) -> None:
    call, error, field = case
    before = _running()
    with pytest.raises(error) as info:
        call(broker, closed_broker)
    assert info.value.field == field, info.value
    assert info.value.__cause__ is None, f"chained to {info.value.__cause__!r}"
    assert _running() == before, "a refused constructor left a thread, a component or widgets behind"
    assert sent_orders(broker).empty


def test_the_methods_scripts_call_refuse_bad_arguments_by_name(broker: workbench.Broker, closing: Callable) -> None:
    ticket = closing(OrderTicket(broker, "AAPL", qty=1))
    blotter = closing(Blotter(broker))
    chart = closing(PriceChart(broker, "AAPL", days=5))
    calls: dict[str, tuple[Callable[[], Any], str]] = {
        "ticket.wait(status='x')": (lambda: ticket.wait(status="sideways"), "status"),
        "ticket.wait(timeout=-1)": (lambda: ticket.wait(timeout=-1), "timeout"),
        "ticket.wait_until(5)": (lambda: ticket.wait_until(5), "predicate"),
        "ticket.on_session(5)": (lambda: ticket.on_session(5), "callback"),
        "blotter.on_refresh(None)": (lambda: blotter.on_refresh(None), "callback"),
        "blotter.cancel(5)": (lambda: blotter.cancel(5), "order_id"),
        "blotter.wait_until(timeout='x')": (lambda: blotter.wait_until(bool, timeout="x"), "timeout"),
        "chart.symbol = 5": (lambda: setattr(chart, "symbol", 5), "symbol"),
        "chart.symbol = 'a b c!'": (lambda: setattr(chart, "symbol", "a b c!"), "symbol"),
    }
    for name, (call, field) in calls.items():
        with pytest.raises(workbench.InvalidInput) as info:
            call()
        assert info.value.field == field, (name, info.value)
    assert chart.symbol == "AAPL" and sent_orders(broker).empty


def test_a_symbol_typed_into_the_desk_that_the_chart_cannot_take_is_said_on_it_as_text(
        broker: workbench.Broker, closing: Callable) -> None:
    view = closing(desk(broker, "AAPL"))
    eventually(lambda: view.chart.renders >= 1, 20)
    view.ticket.symbol.value = "<b>bad"
    assert view.chart.symbol == "AAPL"  # the chart keeps what it shows...
    caption = view.chart.caption.value  # ...and says why it did not follow, as text, not markup
    assert "wb-error" in caption and "&lt;B&gt;BAD" in caption and "<B>" not in caption
    view.ticket.symbol.value = ""  # being typed: no error, nothing reloads
    assert view.chart.symbol == "AAPL"
    view.ticket.symbol.value = "msft"
    eventually(lambda: view.chart.symbol == "MSFT" and "MSFT" in view.chart.caption.value, 20)


def test_a_quantity_too_large_for_any_order_is_refused_on_the_ticket_by_name(
        broker: workbench.Broker, closing: Callable) -> None:
    """1e300 in the qty field: the preview and Submit say ``qty``, nothing escapes the observers, nothing is sent."""
    ticket = quoted(closing(OrderTicket(broker, "AAPL", qty=1)))
    ticket.qty.value = 1e300
    assert ticket.preview.value == ""
    ticket.submit.click()
    assert "qty" in ticket.status.value and "ERROR" in ticket.status.value
    assert sent_orders(broker).empty


# -- generated: garbage in any argument of any constructor -------------------------------------

CONSTRUCTORS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "OrderTicket": (OrderTicket, {"broker": BROKER, "symbol": "AAPL", "qty": 1, "settings": None}),
    "PriceChart": (PriceChart, {"broker": BROKER, "symbol": "AAPL", "days": 5, "interval": "1d", "kind": "ohlc"}),
    "Blotter": (Blotter, {"broker": BROKER, "refresh_seconds": 60}),
    "FillsFeed": (FillsFeed, {"broker": BROKER, "limit": 10, "since": None}),
    "desk": (desk, {"broker": BROKER, "symbol": "AAPL", "settings": None}),
}
#: A broker argument: anything but None (the ticket and desk would connect the default broker for it).
bad_brokers = st.one_of(garbage.filter(lambda v: v is not None), st.just(CLOSED),
                        st.sampled_from(["", "nope", "Paper!", "x" * 80]))


@EXAMPLES
@given(name=st.sampled_from(sorted(CONSTRUCTORS)), data=st.data())
def test_garbage_in_any_constructor_argument_is_typed_and_leaves_nothing_running(
        broker: workbench.Broker, closed_broker: workbench.Broker, name: str, data: st.DataObject) -> None:
    make, valid = CONSTRUCTORS[name]
    kwargs = dict(valid)
    replaced = data.draw(st.lists(st.sampled_from(sorted(kwargs)), min_size=1, max_size=2, unique=True))
    for arg in replaced:
        kwargs[arg] = data.draw(bad_brokers if arg == "broker" else garbage, label=arg)
    kwargs = {k: broker if v is BROKER else closed_broker if v is CLOSED else v for k, v in kwargs.items()}
    before = _running()
    try:
        component = make(**kwargs)
    except workbench.WorkbenchError as exc:
        note(f"{type(exc).__name__}: {exc}")
        event(f"{name}: {type(exc).__name__}")
        if isinstance(exc, (workbench.InvalidInput, workbench.ConfigError)):
            # settings are checked as workbench.connect checks them: the error names the key (or file) in them
            inside_settings = isinstance(exc, workbench.ConfigError) and "settings" in replaced
            assert exc.field in replaced or inside_settings, f"{exc!r} names {exc.field!r}, not one of {replaced}"
            assert exc.__cause__ is None, f"chained to {exc.__cause__!r}"
        else:
            assert isinstance(exc, workbench.BrokerClosed) and kwargs["broker"] is closed_broker, repr(exc)
        assert _running() == before, "a refused constructor left a thread, a component or widgets behind"
        return
    except Exception as exc:  # noqa: BLE001 - the property: nothing untyped escapes
        raise AssertionError(f"untyped {type(exc).__name__} escaped {name}({kwargs})") from exc
    event(f"{name} made")
    component.close()  # the garbage happened to be valid: once closed, it leaves nothing running either
    threads, components = before[0], before[1]
    # (the loop's default executor, which rendering uses, keeps its worker threads: they are workbench's)
    eventually(lambda: {id(c) for c in live()} <= components
               and all(t in threads or t.name.startswith("asyncio_") for t in threading.enumerate()), 10)
    assert sent_orders(broker).empty
