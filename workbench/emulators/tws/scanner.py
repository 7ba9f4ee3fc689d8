"""Market scanners over the provider's universe: ``reqScannerParameters`` and ``reqScannerSubscription``
(``ib.reqScannerData`` is a subscription the client cancels after the first answer).

- Instruments ``STK`` (stocks) and ``ETF.EQ.US`` (ETFs); locations ``STK.US.MAJOR`` / ``STK.US`` (all), or
  one listing exchange (``STK.NASDAQ``, ``STK.NYSE``, ``STK.ARCA``, ``STK.BATS``); ``ETF.EQ.US[.MAJOR]``.
- Scan codes: ``TOP_PERC_GAIN`` / ``TOP_PERC_LOSE`` (change from the previous close), ``TOP_OPEN_PERC_GAIN``
  / ``TOP_OPEN_PERC_LOSE`` (from today's open), ``MOST_ACTIVE`` (session volume), ``HOT_BY_VOLUME``
  (session volume over the average daily volume of the last 20 sessions), ``TOP_PRICE_RANGE`` (today's
  range in % of the price). Before today's open, "today" is the last session.
- Filters, as subscription fields or filter tags: price (``abovePrice`` / ``priceAbove``, ``belowPrice`` /
  ``priceBelow``), volume (``aboveVolume`` / ``volumeAbove``), ``changePercAbove`` / ``changePercBelow``.
  Other filters (market cap, ratings, fundamentals...) are not simulated: error 162 naming them.
- At most ``numberOfRows`` rows (50, as IB); a subscription is answered again every
  :data:`PUSH_SECONDS` of emulator time, as the prices move.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import messages_data as md
from .account import session_day
from .codec import to_float, to_int
from .handlers import handles

if TYPE_CHECKING:
    from .server import Session

__all__ = ["ScannerSub", "push_scanners", "parameters_xml", "SCAN_CODES"]

log = logging.getLogger(__name__)

PUSH_SECONDS = 30
MAX_ROWS = 50
_ERR = "Historical Market Data Service error message:"
#: scan code -> (display name, the figure ranked on, descending?)
SCAN_CODES: dict[str, tuple[str, str, bool]] = {
    "TOP_PERC_GAIN": ("Top % Gainers", "change", True), "TOP_PERC_LOSE": ("Top % Losers", "change", False),
    "TOP_OPEN_PERC_GAIN": ("Top % Gainers Since Open", "open_change", True),
    "TOP_OPEN_PERC_LOSE": ("Top % Losers Since Open", "open_change", False),
    "MOST_ACTIVE": ("Most Active", "volume", True), "HOT_BY_VOLUME": ("Hot by Volume", "relative_volume", True),
    "TOP_PRICE_RANGE": ("Top Price Range", "range", True),
}
INSTRUMENTS = {"STK": ("US Stocks", "STK"), "ETF.EQ.US": ("US Equity ETFs", "ETF")}
#: location code -> (instrument, listing exchanges; empty: all)
LOCATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "STK.US.MAJOR": ("STK", ()), "STK.US": ("STK", ()), "STK.NASDAQ": ("STK", ("NASDAQ",)),
    "STK.NYSE": ("STK", ("NYSE",)), "STK.ARCA": ("STK", ("ARCA",)), "STK.BATS": ("STK", ("BATS",)),
    "ETF.EQ.US": ("ETF.EQ.US", ()), "ETF.EQ.US.MAJOR": ("ETF.EQ.US", ()),
}
#: filter tag -> (figure, is a lower bound)
FILTERS: dict[str, tuple[str, bool]] = {
    "priceAbove": ("price", True), "priceBelow": ("price", False), "volumeAbove": ("volume", True),
    "changePercAbove": ("change", True), "changePercBelow": ("change", False),
}
#: Subscription fields of the request (index: filter tag, or a name when the emulator cannot honour it).
_FIELDS = {6: "priceAbove", 7: "priceBelow", 8: "volumeAbove", 9: "marketCapAbove", 10: "marketCapBelow",
           11: "moodyRatingAbove", 12: "moodyRatingBelow", 13: "spRatingAbove", 14: "spRatingBelow",
           15: "maturityDateAbove", 16: "maturityDateBelow", 17: "couponRateAbove", 18: "couponRateBelow",
           20: "averageOptionVolumeAbove"}


@dataclass
class ScannerSub:
    """One reqScannerSubscription: what it ranks, its filters and when it was last answered."""

    rows: int
    location: str
    code: str
    filters: dict[str, float]
    last: datetime | None = None


class ScanError(ValueError):
    """Becomes error 162 naming what the scan asks for that is not emulated."""


def parse(f: list[str]) -> ScannerSub:
    """``[22, reqId, numberOfRows, instrument, locationCode, scanCode, abovePrice, ..., filterOptions, options]``."""
    instrument, location, code = f[3].strip(), f[4].strip(), f[5].strip().upper()
    if instrument not in INSTRUMENTS:
        raise ScanError(f"instrument {instrument!r} is not emulated (the scanners cover {', '.join(INSTRUMENTS)})")
    if LOCATIONS.get(location, ("",))[0] != instrument:
        raise ScanError(f"location {location!r} is not emulated for {instrument} (use one of "
                        f"{', '.join(k for k, v in LOCATIONS.items() if v[0] == instrument)})")
    if code not in SCAN_CODES:
        raise ScanError(f"scan code {code!r} is not emulated (use one of {', '.join(SCAN_CODES)})")
    filters: dict[str, float] = {}
    for index, tag in _FIELDS.items():
        value = f[index].strip() if index < len(f) else ""
        if value:
            filters[tag] = _number(tag, value)
    for pair in (f[23] if len(f) > 23 else "").split(";"):
        tag, _, value = pair.partition("=")
        if tag.strip():
            filters[tag.strip()] = _number(tag.strip(), value)
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise ScanError(f"scanner filters {', '.join(unknown)} are not simulated (the emulator filters on "
                        f"{', '.join(FILTERS)})")
    rows = to_int(f[2], -1)
    return ScannerSub(MAX_ROWS if rows <= 0 else min(rows, MAX_ROWS), location, code, filters)


def _number(tag: str, text: str) -> float:
    try:
        value = to_float(text)
    except ValueError:
        raise ScanError(f"scanner filter {tag}={text!r} is not a number") from None
    if value is None:
        raise ScanError(f"scanner filter {tag} has no value")
    return value


def scan(s: Session, sub: ScannerSub, now: datetime) -> list[Any]:
    """The instruments ``sub`` ranks first, best first."""
    catalog, prices = s.server.catalog, s.server.engine.prices
    instrument, exchanges = LOCATIONS[sub.location]
    kind = INSTRUMENTS[instrument][1]
    _, figure, descending = SCAN_CODES[sub.code]
    ranked = []
    for symbol in catalog.universe():
        inst = catalog.get(symbol)
        if inst is None or (inst.stock_type == "ETF") != (kind == "ETF") \
                or exchanges and inst.primary_exchange not in exchanges:
            continue
        figures = _figures(prices, symbol, now)
        if figures is None or not all(_passes(figures[FILTERS[tag][0]], FILTERS[tag][1], bound)
                                      for tag, bound in sub.filters.items()):
            continue
        ranked.append((figures[figure], inst))
    ranked.sort(key=lambda pair: (-pair[0] if descending else pair[0], pair[1].symbol))
    return [inst for _, inst in ranked[:sub.rows]]


def _passes(value: float, lower: bool, bound: float) -> bool:
    return value >= bound if lower else value <= bound


def _figures(prices: Any, symbol: str, now: datetime) -> dict[str, float] | None:
    """Price, session volume and the changes a scan ranks on, from a month of daily bars (today's partial)."""
    try:
        frame = prices.get_history(symbol, start=now - timedelta(days=31), end=now, interval="1d")
        price = float(prices.get_market_price(symbol, now))
    except Exception as exc:  # a symbol the provider cannot price drops out of the scan
        log.debug("scanner: no figures for %s: %s", symbol, exc)
        return None
    if frame.empty or not price:
        return None
    today = frame.index[-1].date() == session_day(now)
    before = frame.iloc[:-1] if today else frame
    if before.empty:
        return None
    close = float(before["close"].iloc[-1])
    open_, high, low, volume = ((float(frame[c].iloc[-1]) for c in ("open", "high", "low", "volume")) if today
                                else (price, price, price, 0.0))
    average = float(before["volume"].tail(20).mean())
    return {"price": price, "volume": volume, "change": 100 * (price / close - 1),
            "open_change": 100 * (price / open_ - 1), "relative_volume": volume / average if average else 0.0,
            "range": 100 * (high - low) / price}


def _answer(s: Session, req_id: int, sub: ScannerSub, now: datetime) -> None:
    sub.last = now
    s.send(md.scanner_data(req_id, scan(s, sub, now)))


# -- handlers -------------------------------------------------------------------------------

@handles(22)
def req_scanner_subscription(s: Session, f: list[str]) -> None:
    req_id = to_int(f[1])
    try:
        sub = parse(f)
    except ScanError as exc:
        s.error(req_id, 162, f"{_ERR}{exc}")
        return
    s.subs.scanners[req_id] = sub
    _answer(s, req_id, sub, s.server.engine.clock())


@handles(23)
def cancel_scanner_subscription(s: Session, f: list[str]) -> None:
    s.subs.scanners.pop(to_int(f[2]), None)


@handles(24)
def req_scanner_parameters(s: Session, f: list[str]) -> None:
    s.send(md.scanner_parameters(parameters_xml()))


def push_scanners(s: Session, now: datetime, guarded: Callable[[Callable[[], None], str], None]) -> None:
    """Answer each subscription again once PUSH_SECONDS of emulator time have passed."""
    for req_id, sub in list(s.subs.scanners.items()):
        if sub.last is None or (now - sub.last).total_seconds() >= PUSH_SECONDS:
            guarded(lambda: _answer(s, req_id, sub, now), f"scanner {sub.code}")


def parameters_xml() -> str:
    """The scanner parameters document, shaped as a gateway's (``Instrument/type``, ``locationCode``,
    ``scanCode``, ``AbstractField/code``) and listing only what the emulator scans."""
    root = ET.Element("ScanParameterResponse")
    instruments = ET.SubElement(root, "InstrumentList", varName="fullInstrumentList")
    for code, (name, _) in INSTRUMENTS.items():
        node = ET.SubElement(instruments, "Instrument")
        ET.SubElement(node, "name").text, ET.SubElement(node, "type").text = name, code
        ET.SubElement(node, "filters").text = ",".join(FILTERS)
    locations = ET.SubElement(root, "LocationTree", varName="locationTree")
    for code, (instrument, _) in LOCATIONS.items():
        node = ET.SubElement(locations, "Location")
        ET.SubElement(node, "locationCode").text, ET.SubElement(node, "instruments").text = code, instrument
    scans = ET.SubElement(root, "ScanTypeList", varName="scanTypeList")
    for code, (name, _, _) in SCAN_CODES.items():
        node = ET.SubElement(scans, "ScanType")
        ET.SubElement(node, "displayName").text, ET.SubElement(node, "scanCode").text = name, code
        ET.SubElement(node, "instruments").text = ",".join(INSTRUMENTS)
    fields = ET.SubElement(root, "FilterList", varName="filterList")
    for tag in FILTERS:
        node = ET.SubElement(ET.SubElement(fields, "RangeFilter"), "AbstractField", type="DoubleField")
        ET.SubElement(node, "code").text = tag
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
