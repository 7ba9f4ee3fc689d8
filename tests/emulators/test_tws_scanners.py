"""ib_async's scanners notebook and docs recipes against the emulator: scans over the sim universe, checked
against the sim's own prices (a Wednesday, 10:00 New York)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import ScannerSubscription, TagValue  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def _change(engine: Any, symbol: str) -> float:
    """% change from the previous close, from the provider directly."""
    now = engine.clock()
    daily = engine.prices.get_history(symbol, start=now - timedelta(days=10), end=now, interval="1d")
    return 100 * (float(engine.prices.get_market_price(symbol)) / float(daily["close"].iloc[-2]) - 1)


def test_top_gainers_as_the_notebook_asks(ib: Any, engine: Any) -> None:
    sub = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN")
    scanData = ib.reqScannerData(sub)
    assert len(scanData) == 50 and [sd.rank for sd in scanData] == list(range(50))
    symbols = [sd.contractDetails.contract.symbol for sd in scanData]
    changes = [_change(engine, sym) for sym in symbols]
    assert changes == sorted(changes, reverse=True)
    universe = [s for s in engine.prices.symbols() if engine.prices.info(s).kind == "STK"]
    assert changes[0] == pytest.approx(max(_change(engine, s) for s in universe))
    first = scanData[0].contractDetails
    assert first.contract.exchange == "SMART" and first.contract.conId > 0 and first.marketName
    assert not {"SPY", "QQQ"} & set(symbols)  # ETFs are another instrument

    sub.abovePrice = 200
    rich = [sd.contractDetails.contract.symbol for sd in ib.reqScannerData(sub)]
    assert rich and all(float(engine.prices.get_market_price(s)) >= 200 for s in rich)

    losers = ib.reqScannerData(ScannerSubscription(instrument="STK", locationCode="STK.NYSE",
                                                   scanCode="TOP_PERC_LOSE", numberOfRows=10))
    changes = [_change(engine, sd.contractDetails.contract.symbol) for sd in losers]
    assert len(losers) == 10 and changes == sorted(changes)
    assert {engine.prices.info(sd.contractDetails.contract.symbol).exchange for sd in losers} == {"NYSE"}


def test_scanner_parameters_and_filter_tags(ib: Any, engine: Any) -> None:
    tree = ET.fromstring(ib.reqScannerParameters())
    tags = [e.text for e in tree.findall(".//AbstractField/code")]
    assert {"priceAbove", "priceBelow", "changePercAbove"} <= set(tags)
    assert "TOP_PERC_GAIN" in [e.text for e in tree.findall(".//scanCode")]
    assert {"STK", "ETF.EQ.US"} == {e.text for e in tree.findall(".//Instrument/type")}
    assert "STK.US.MAJOR" in [e.text for e in tree.findall(".//locationCode")]

    sub = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN")
    tagValues = [TagValue("changePercAbove", "0.5"), TagValue("priceAbove", 5), TagValue("priceBelow", 300)]
    found = [sd.contractDetails.contract.symbol for sd in ib.reqScannerData(sub, [], tagValues)]
    assert found
    for sym in found:
        assert _change(engine, sym) >= 0.5 and 5 <= float(engine.prices.get_market_price(sym)) <= 300


def test_what_is_not_simulated_gets_162(ib: Any) -> None:
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((code, msg))
    futures = ScannerSubscription(instrument="FUT.US", locationCode="FUT.GLOBEX", scanCode="TOP_PERC_GAIN")
    assert list(ib.reqScannerData(futures)) == []  # the docs recipe: an IB error, never a hang
    cap = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode="MOST_ACTIVE",
                              marketCapAbove=1e9)
    assert list(ib.reqScannerData(cap)) == []
    texts = [msg for code, msg in errors if code == 162]
    assert any("'FUT.US' is not emulated" in t for t in texts)
    assert any("marketCapAbove" in t and "not simulated" in t for t in texts)


def test_a_scanner_subscription_streams_until_cancelled(ib: Any, emulator: Any, clock: Any) -> None:
    """docs recipe "Scanner data (streaming)": updates as the prices move, none after the cancel."""
    sub = ScannerSubscription(instrument="ETF.EQ.US", locationCode="ETF.EQ.US.MAJOR", scanCode="MOST_ACTIVE",
                              numberOfRows=5)
    scanData = ib.reqScannerSubscription(sub)
    updates: list[list[str]] = []
    scanData.updateEvent += lambda data: updates.append([sd.contractDetails.contract.symbol for sd in data])
    ib_eventually(ib, lambda: len(updates) == 1 and len(updates[0]) == 5)
    clock.advance(seconds=30)
    emulator.tick()
    ib_eventually(ib, lambda: len(updates) == 2)
    ib.cancelScannerSubscription(scanData)
    ib_eventually(ib, lambda: not emulator.call(lambda: any(s.subs.scanners for s in emulator.sessions)))
    sent = emulator.responses(ib.client.clientId).count(20)  # scannerData messages so far
    clock.advance(seconds=60)
    emulator.tick()  # runs on the emulator's loop and returns when done: anything it sends is recorded by now
    assert emulator.responses(ib.client.clientId).count(20) == sent and len(updates) == 2
