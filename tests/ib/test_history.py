"""IB history: a refused request is a typed error, never an empty frame; no waits IB does not ask for."""

from __future__ import annotations

import time
from typing import Any

import pytest

import workbench


def test_a_refused_history_request_raises_instead_of_returning_no_bars(gateway: Any, proxy: Any,
                                                                         connect: Any) -> None:
    # ib_async ends a refused request with an empty bar list: a pacing violation (162) or a missing entitlement
    # came back as an empty frame, indistinguishable from "no bars in that range".
    from workbench.emulators.tws import messages as m

    broker = connect(proxy.port)
    broker.get_history("AAPL", days=3)  # the contract is known: only the history request is answered below
    sv = gateway.emulator.server_version
    refusals = {"MSFT": (162, "Historical Market Data Service error message:Historical data request pacing "
                                "violation"),
                "NVDA": (10187, "Failed to request historical data:No market data permissions for NASDAQ STK")}
    for symbol, (code, text) in refusals.items():
        proxy.on_down(lambda f, code=code, text=text: [[str(x) for x in m.error(sv, int(f[1]), code, text)]]
                      if f[0] == "17" else [f])
        expected = workbench.RateLimited if code == 162 else workbench.DataEntitlementError
        with pytest.raises(expected) as info:
            broker.get_history(symbol, days=3)
        assert info.value.code == code and symbol in str(info.value)
    no_data = "Historical Market Data Service error message:HMDS query returned no data: SPY@SMART Trades"
    proxy.on_down(lambda f: [[str(x) for x in m.error(sv, int(f[1]), 162, no_data)]] if f[0] == "17" else [f])
    empty = broker.get_history("SPY", days=3)  # IB's way of saying "no bars": an empty frame, as usual
    assert empty.empty and list(empty.columns) == ["open", "high", "low", "close", "volume"]


def test_the_same_daily_history_twice_does_not_wait(gateway: Any, connect: Any) -> None:
    # IB's pacing rules (no identical request within 15 s, 60 per 10 minutes) are for bars of 30 s or less; they
    # were applied to every bar size, so re-running a cell stalled 15 s and a 61-symbol pull 10 minutes.
    broker = connect(gateway.port)
    first = broker.get_history("AAPL", days=5)
    started = time.monotonic()
    again = broker.get_history("AAPL", days=5)
    assert time.monotonic() - started < 5 and list(again.index) == list(first.index)  # (today's bar may move)
