"""Streaming quotes: subscriptions restored after a reconnect stay cancellable; an account without a live-data
entitlement (error 354) gets delayed data marked as such, or DataEntitlementError when delayed data is off."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import workbench
from tests.conftest import eventually


def _streams(gateway: Any) -> dict[int, str]:
    """Streaming quote requests the (current) gateway received and was not asked to cancel: reqId -> symbol.

    Read from the requests on the wire (reqMktData = 1, cancelMktData = 2; protocol reference §5)."""
    open_streams: dict[int, str] = {}
    for f in gateway.emulator.requests():
        if f[0] == "1":
            idx = 15 + (3 if f[15] == "1" else 0)  # a delta-neutral block shifts the tail
            if f[idx + 2] != "1":  # not a snapshot
                open_streams[int(f[2])] = f[4]
        elif f[0] == "2":
            open_streams.pop(int(f[2]), None)
    return open_streams


@pytest.mark.parametrize("gateway", [{"fast_clock": True}], indirect=True)
def test_a_subscription_restored_after_a_reconnect_can_be_cancelled(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    quotes: list[workbench.Quote] = []
    other: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["AAPL", "MSFT"], quotes.append)
    kept = broker.subscribe_market_data(["MSFT"], other.append)  # shares the MSFT stream
    eventually(lambda: {q.symbol for q in quotes} == {"AAPL", "MSFT"} and other)
    gateway.restart(broker)
    eventually(lambda: len(_streams(gateway)) == 2)
    seen = len(quotes)
    eventually(lambda: len(quotes) > seen + 2)  # restored: both streams deliver again
    subscription.cancel()  # the restored streams have new request ids and handlers: cancel must find them
    eventually(lambda: list(_streams(gateway).values()) == ["MSFT"])
    stopped, before = len(quotes), len(other)
    eventually(lambda: len(other) > before + 3)  # MSFT keeps moving for the subscription that stays...
    assert len(quotes) == stopped and not subscription.active and kept.active  # ...and never for this one
    kept.cancel()
    eventually(lambda: not _streams(gateway))


@pytest.mark.parametrize("gateway", [{"live_data": False, "fast_clock": True}], indirect=True)
def test_no_live_entitlement_streams_delayed_quotes_marked_delayed(gateway: Any, connect: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    broker = connect(gateway.port)
    quotes: list[workbench.Quote] = []
    with caplog.at_level("WARNING", logger="workbench.adapters.ib"):
        subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
    eventually(lambda: len(quotes) >= 3)  # it keeps streaming (it used to stay silent after the 354)
    assert all(q.delayed for q in quotes) and subscription.delayed == {"AAPL"}
    assert "delayed" in repr(subscription)
    assert any("354" in r.getMessage() and "delayed" in r.getMessage() for r in caplog.records)
    quote = broker.get_quote("AAPL")  # a snapshot falls back the same way
    assert quote.delayed and quote.last > 0


@pytest.mark.parametrize("gateway", [{"live_data": False}], indirect=True)
def test_the_delayed_fallback_is_said_once_and_not_asked_again(gateway: Any, connect: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # Every snapshot asked for live data first (354 again, two requests per quote) and said nothing, although the
    # README promised one warning.
    broker = connect(gateway.port)
    with caplog.at_level("WARNING", logger="workbench.adapters.ib"):
        assert broker.get_quote("AAPL").delayed
        sent = len(gateway.requests("1"))
        assert broker.get_quote("AAPL").delayed and len(gateway.requests("1")) == sent + 1
        quotes: list[workbench.Quote] = []
        subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
        eventually(lambda: quotes)
    assert subscription.delayed == {"AAPL"} and all(q.delayed for q in quotes)
    warnings = [r for r in caplog.records if "no live market data for AAPL" in r.getMessage()]
    assert len(warnings) == 1
    subscription.cancel()


@pytest.mark.parametrize("gateway", [{"live_data": False}], indirect=True)
def test_no_live_entitlement_raises_when_delayed_data_is_off(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port, delayed_data=False)
    with pytest.raises(workbench.DataEntitlementError) as info:
        broker.subscribe_market_data(["MSFT", "AAPL"], print)
    assert info.value.code == 354 and "MSFT" in str(info.value)
    with pytest.raises(workbench.DataEntitlementError):
        broker.get_quote("AAPL")
    eventually(lambda: not _streams(gateway))  # nothing left subscribed


def test_live_quotes_are_not_marked_delayed(gateway: Any, connect: Any) -> None:
    broker = connect(gateway.port)
    quotes: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
    eventually(lambda: quotes)
    assert not quotes[0].delayed and not subscription.delayed and not broker.get_quote("AAPL").delayed


@pytest.mark.parametrize("gateway", [{"live_data": False}], indirect=True)
def test_a_delayed_snapshot_leaves_no_other_request_delayed(gateway: Any, proxy: Any, connect: Any) -> None:
    # reqMarketDataType is one setting per connection. The delayed fallback of a snapshot set it back to live only
    # once the snapshot had answered, so a subscription started meanwhile went out as delayed: no 354 came, and
    # its delayed quotes were labelled live.
    broker = connect(proxy.port)
    broker.get_history("MSFT", days=1)  # both contracts known: the requests below are market data only
    broker.get_quote("AAPL")  # (live refused once: AAPL's next snapshot asks for delayed data at once)
    held: list[list[str]] = []
    proxy.on_down(lambda fields: held.append(fields) or [] if fields[0] == "57" else [fields])  # snapshot ends
    sent = len(gateway.requests("1"))
    quote: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: quote.update(q=broker.get_quote("AAPL")))
    thread.start()
    eventually(lambda: len(gateway.requests("1")) == sent + 1 and held)  # the delayed snapshot is pending
    quotes: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["MSFT"], quotes.append)
    proxy.on_down(None, send_first=held)
    thread.join(10)
    assert quote["q"].delayed
    assert subscription.delayed == {"MSFT"}
    eventually(lambda: quotes)
    assert all(q.delayed for q in quotes)
    subscription.cancel()
