"""Against Alpaca's real paper endpoint: only with ALPACA_API_KEY set and WORKBENCH_ALPACA_LIVE_PAPER=1."""

from __future__ import annotations

import os

import pytest

import workbench

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not (os.environ.get("ALPACA_API_KEY") and os.environ.get("WORKBENCH_ALPACA_LIVE_PAPER") == "1"),
                       reason="needs ALPACA_API_KEY/ALPACA_SECRET_KEY and WORKBENCH_ALPACA_LIVE_PAPER=1 "
                              "(confirming they are keys for Alpaca's paper endpoint)"),
]


@pytest.fixture
def live_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py clears these for isolation; the live test takes them from the real environment.
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        value = os.environ.get(name) or _ORIGINAL.get(name)
        if value:
            monkeypatch.setenv(name, value)


_ORIGINAL = {name: os.environ.get(name, "") for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")}


def test_paper_account_round_trip(live_keys: None) -> None:
    broker = workbench.connect("alpaca", settings={"alpaca": {}})  # the paper defaults
    try:
        assert broker.get_account().cash >= 0
        assert broker.get_clock().next_open > broker.get_clock().ts
        assert not broker.get_history("SPY", days=10).empty
        order = broker.place_limit_order("SPY", 1, "buy", "1.00", tif="gtc")
        assert broker.cancel_order(order.order_id).order_id == order.order_id
    finally:
        broker.close()
