"""Against a real IB paper gateway: runs only when IBKR_GATEWAY_HOST is set (never in CI)."""

from __future__ import annotations

import os

import pytest

import workbench

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("IBKR_GATEWAY_HOST"),
                       reason="IBKR_GATEWAY_HOST is not set: no real IB gateway to talk to"),
]


def test_real_paper_gateway_read_only() -> None:
    # The conftest clears IBKR_* for isolation; read them from the real environment captured at import.
    settings = {"ib": {"host": _LIVE["host"], "port": int(_LIVE["port"]), "client_id": int(_LIVE["client_id"]),
                       "readonly": True}}
    with workbench.connect("ib", settings=settings) as broker:
        account = broker.get_account()
        assert account.id.startswith("DU") and account.equity > 0
        bars = broker.get_history("SPY", days=10)
        assert not bars.empty and str(bars.index.tz) == "UTC"


_LIVE = {"host": os.environ.get("IBKR_GATEWAY_HOST", ""), "port": os.environ.get("IBKR_GATEWAY_PORT", "4002"),
         "client_id": os.environ.get("IBKR_CLIENT_ID", "17")}
