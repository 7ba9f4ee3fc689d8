"""The broker contract suite runs against every adapter listed in ADAPTERS.

Each entry builds a connected :class:`workbench.Broker` from settings. Brokers that need a gateway
(ib, alpaca) join with an emulator-backed entry when their adapters land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import workbench


def _paper(settings_dict: dict[str, Any]) -> workbench.Broker:
    return workbench.connect("paper", settings=settings_dict)


ADAPTERS: dict[str, Callable[[dict[str, Any]], workbench.Broker]] = {
    "paper": _paper,
}


@pytest.fixture(params=sorted(ADAPTERS))
def broker(request: pytest.FixtureRequest, settings_dict: dict[str, Any]) -> Iterator[workbench.Broker]:
    session = ADAPTERS[request.param](settings_dict)
    try:
        yield session
    finally:
        session.close()
