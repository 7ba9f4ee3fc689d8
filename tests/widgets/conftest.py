"""Fixtures for the desk widget tests: a paper Broker on a temporary ledger, and no silent widget errors."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import workbench
from tests.conftest import eventually
from workbench.adapters.base import Capabilities
from workbench.adapters.paper.adapter import PaperAdapter
from workbench.core.enums import Feature, OrderType, TimeInForce
from workbench.core.runner import get_runner
from workbench.widgets import OrderTicket


@pytest.fixture(autouse=True)
def no_unexpected_widget_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """ipywidgets swallows callback exceptions: fail the test when a widget logged an error instead."""
    caplog.set_level(logging.INFO, logger="workbench")
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("workbench", "ipywidgets"))]
    assert not errors, "widget errors were logged:\n" + "\n".join(r.getMessage() for r in errors)


@pytest.fixture
def make_broker(settings_dict: dict[str, Any]) -> Iterator[Callable[..., workbench.Broker]]:
    """``make_broker(**paper_settings)`` -> a connected paper Broker on the test's ledger; closed at teardown."""
    made: list[workbench.Broker] = []

    def make(**paper: Any) -> workbench.Broker:
        settings = {**settings_dict, "paper": {**settings_dict["paper"], **paper}}
        broker = workbench.connect("paper", settings=settings)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def broker(make_broker: Callable[..., workbench.Broker]) -> workbench.Broker:
    return make_broker()


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """``closing(widget)`` returns the widget and closes it at teardown."""
    made: list[Any] = []

    def keep(component: Any) -> Any:
        made.append(component)
        return component

    yield keep
    for component in reversed(made):
        component.close()


def sent_orders(broker: workbench.Broker) -> Any:
    """Every order the ledger has (the truth about what was sent)."""
    return broker.get_orders_history(limit=None)


@contextmanager
def loop_busy() -> Iterator[None]:
    """Hold workbench's loop thread (as a slow broker call or a busy loop does) until the block ends.

    What a test does inside the block happens before any broker answer, event or quote can arrive: the
    orderings a slow broker produces, made deterministic.
    """
    loop = get_runner().loop
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(30)

    loop.call_soon_threadsafe(hold)
    assert holding.wait(10), "workbench's loop did not pick up the hold"
    try:
        yield
    finally:
        release.set()


def quoted(ticket: OrderTicket) -> OrderTicket:
    """The ticket once its price line and its account (for the preview) have loaded."""
    eventually(lambda: ticket._quote is not None and ticket.subscription is not None
               and ticket._account is not None, 10)
    return ticket


def state(ticket: OrderTicket) -> str | None:
    match = re.search(r"data-status='([A-Z_]+)'", ticket.status.value)
    return match.group(1) if match else None


class DayOnlyPaper(PaperAdapter):
    """A paper broker that carries only DAY market/limit orders (a real adapter with narrower capabilities)."""

    name = "dayonly"
    capabilities = Capabilities(order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}),
                                tifs=frozenset({TimeInForce.DAY}),
                                features=PaperAdapter.capabilities.features - {Feature.STREAM_ORDERS})
