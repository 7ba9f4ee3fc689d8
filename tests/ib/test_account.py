"""``ib.account`` picks the account get_account / get_positions report (default: the first managed one)."""

from __future__ import annotations

from typing import Any

import pytest

import workbench
from tests.conftest import eventually

TWO = {"accounts": ("DU1111111", "DU2222222")}  # the emulator's engine is the first; the second is empty


@pytest.mark.parametrize("gateway", [TWO], indirect=True)
def test_ib_account_is_honoured(gateway: Any, connect: Any) -> None:
    first = connect(gateway.port, client_id=5)
    first.place_market_order("AAPL", 2, "buy")
    eventually(lambda: not first.get_positions().empty)  # with two accounts ib_async syncs none by itself
    account = first.get_account()
    assert account.id == "DU1111111" and account.cash > 0 and account.raw["AccountCode"] == "DU1111111"
    second = connect(gateway.port, client_id=6, account="DU2222222")
    other = second.get_account()
    assert other.id == "DU2222222" and other.cash == 0 and other.equity == 0  # its own values only
    assert second.get_positions().empty


@pytest.mark.parametrize("gateway", [TWO], indirect=True)
def test_an_account_the_login_does_not_manage_is_refused(gateway: Any, connect: Any) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        connect(gateway.port, account="DU9999999")
    assert info.value.key == "ib.account" and "DU1111111" in str(info.value)


def test_a_closed_position_is_gone(gateway: Any, connect: Any) -> None:
    # The emulator's portfolio updates listed open positions only; IB sends a zero row for a closed one, without
    # which ib_async (and so get_positions) kept showing the position after it was sold.
    broker = connect(gateway.port)
    broker.place_market_order("AAPL", 10, "buy")
    eventually(lambda: not broker.get_positions().empty)
    broker.place_market_order("AAPL", 10, "sell")
    eventually(lambda: broker.get_positions().empty)
    assert gateway.engine.position("AAPL") is None


def test_an_account_in_another_base_currency(gateway: Any, proxy: Any, connect: Any) -> None:
    # Only USD, BASE and currency-less values were read: for a EUR-based account (account-wide values in EUR) cash,
    # equity and buying power all came back 0, labelled USD; and of a tag sent in two currencies the one that
    # happened to arrive last was taken.
    proxy.on_down(lambda f: [[("EUR" if x == "USD" else x) for x in f] if f[0] == "6" else f])  # a EUR account
    broker = connect(proxy.port)
    eventually(lambda: broker.get_account().cash > 0)
    account = broker.get_account()
    assert account.currency == "EUR" and account.equity > 0 and account.buying_power > 0
    assert account.raw["NetLiquidation"] == next(v.value for v in broker.adapter.ib.accountValues()
                                                  if v.tag == "NetLiquidation")
