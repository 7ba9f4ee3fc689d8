"""Market-data routes (``/v2/stocks/...``) from the engine's market-data provider.

alpaca-py 0.44.0 only calls the multi-symbol endpoints. Bars are paginated with ``limit`` (capped at the
emulator's ``page_limit``) and an opaque ``next_page_token``. Every bar, trade and quote carries
``wb_simulated`` (an extra key alpaca-py ignores), so workbench labels simulated data as such.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
from aiohttp import web

from workbench.core.errors import InvalidInput, SymbolNotFound

from .book import iso
from .server import EMULATOR, error

if TYPE_CHECKING:
    from .server import AlpacaEmulator

_UNITS = {"Min": "m", "T": "m", "Hour": "h", "H": "h", "Day": "d", "D": "d", "Week": "wk", "W": "wk", "Month": "mo",
          "M": "mo"}


def _emu(request: web.Request) -> AlpacaEmulator:
    return request.app[EMULATOR]


def _symbols(request: web.Request) -> list[str]:
    return [s.strip().upper() for s in request.query.get("symbols", "").split(",") if s.strip()]


def _interval(timeframe: str) -> str:
    """Alpaca's ``15Min`` / ``1Hour`` / ``1Day`` / ``1Week`` / ``1Month`` -> the workbench interval."""
    digits = "".join(ch for ch in timeframe if ch.isdigit()) or "1"
    unit = _UNITS.get(timeframe[len(digits):])
    if unit is None:
        raise InvalidInput(f"invalid timeframe {timeframe!r}", field="timeframe")
    return f"{digits}{unit}"


def _bar(ts: pd.Timestamp, row: Any, simulated: bool) -> dict[str, Any]:
    return {"t": iso(ts.to_pydatetime()), "o": float(row.open), "h": float(row.high), "l": float(row.low),
            "c": float(row.close), "v": float(row.volume), "n": None, "vw": None, "wb_simulated": simulated}


def _stamp(value: str | None, default: datetime, field: str) -> pd.Timestamp:
    if not value:
        return pd.Timestamp(default)
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an RFC-3339 time or a date", field=field) from None
    if stamp is pd.NaT:
        raise InvalidInput(f"{value!r} is not an RFC-3339 time or a date", field=field)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


async def get_bars(request: web.Request) -> web.Response:
    emu = _emu(request)
    q = request.query
    try:
        interval = _interval(q.get("timeframe", "1Day"))
    except InvalidInput as exc:
        return error(400, 40010001, exc.message)
    now = emu.engine.clock()
    try:
        start = _stamp(q.get("start"), now - timedelta(days=1), "start")
        end = min(_stamp(q.get("end"), now, "end"), pd.Timestamp(now))
    except InvalidInput as exc:
        return error(422, 42210000, f"invalid {exc.field}: {exc.message}")
    adjusted = q.get("adjustment", "raw") != "raw"
    prices = emu.engine.prices
    rows: list[tuple[str, dict[str, Any]]] = []
    for symbol in _symbols(request):
        try:
            frame = await emu.run_engine(prices.get_history, symbol, start=start.to_pydatetime(),
                                         end=end.to_pydatetime(), interval=interval, adjusted=adjusted)
        except SymbolNotFound:
            continue
        except InvalidInput as exc:
            return error(422, 42210000, f"invalid {exc.field}: {exc.message}")
        daily = not interval.endswith("m") and not interval.endswith("h")
        index = frame.index
        if daily:  # workbench labels sessions at 00:00 UTC; Alpaca stamps them at New York midnight
            index = index.tz_localize(None).tz_localize("America/New_York").tz_convert("UTC")
        simulated = bool(frame.attrs.get("simulated", False))
        rows += [(symbol, _bar(ts, row, simulated)) for ts, row in zip(index, frame.itertuples(), strict=True)]
    if q.get("sort", "asc") == "desc":
        rows.reverse()
    offset = int(base64.urlsafe_b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
    limit = min(int(q.get("limit") or 1000), emu.page_limit)
    page = rows[offset:offset + limit]
    bars: dict[str, list[dict[str, Any]]] = {}
    for symbol, bar in page:
        bars.setdefault(symbol, []).append(bar)
    more = offset + limit < len(rows)
    token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
    return web.json_response({"bars": bars, "next_page_token": token})


async def _quotes(emu: AlpacaEmulator, symbols: list[str]) -> dict[str, Any]:
    out = {}
    for symbol in symbols:
        try:
            out[symbol] = await emu.run_engine(emu.engine.prices.get_quote, symbol)
        except SymbolNotFound:
            continue
    return out


def _trade(q: Any) -> dict[str, Any]:
    return {"t": iso(q.ts), "x": "V", "p": float(q.last), "s": 100, "c": ["@"], "i": int(q.ts.timestamp() * 1000),
            "z": "C", "wb_simulated": bool(q.simulated)}


def _quote(q: Any) -> dict[str, Any]:
    bid, ask = q.bid if q.bid is not None else q.last, q.ask if q.ask is not None else q.last
    return {"t": iso(q.ts), "ax": "V", "ap": float(ask), "as": 1, "bx": "V", "bp": float(bid), "bs": 1, "c": ["R"],
            "z": "C", "wb_simulated": bool(q.simulated)}


def _minute_bar(q: Any) -> dict[str, Any]:
    ts = pd.Timestamp(q.ts).floor("min")
    p = float(q.last)
    return {"t": iso(ts.to_pydatetime()), "o": p, "h": p, "l": p, "c": p, "v": 0.0, "n": None, "vw": None,
            "wb_simulated": bool(q.simulated)}


async def latest_trades(request: web.Request) -> web.Response:
    quotes = await _quotes(_emu(request), _symbols(request))
    return web.json_response({"trades": {s: _trade(q) for s, q in quotes.items()}})


async def latest_quotes(request: web.Request) -> web.Response:
    quotes = await _quotes(_emu(request), _symbols(request))
    return web.json_response({"quotes": {s: _quote(q) for s, q in quotes.items()}})


async def latest_bars(request: web.Request) -> web.Response:
    quotes = await _quotes(_emu(request), _symbols(request))
    return web.json_response({"bars": {s: _minute_bar(q) for s, q in quotes.items()}})


async def snapshots(request: web.Request) -> web.Response:
    emu = _emu(request)
    quotes = await _quotes(emu, _symbols(request))
    out = {}
    for symbol, q in quotes.items():
        daily = await emu.run_engine(emu.engine.prices.get_history, symbol, days=7, interval="1d")
        days = [_bar(ts.tz_localize(None).tz_localize("America/New_York").tz_convert("UTC"), row,
                     bool(q.simulated)) for ts, row in zip(daily.index[-2:], daily.iloc[-2:].itertuples(), strict=True)]
        out[symbol] = {"latestTrade": _trade(q), "latestQuote": _quote(q), "minuteBar": _minute_bar(q),
                       "dailyBar": days[-1] if days else _minute_bar(q),
                       "prevDailyBar": days[-2] if len(days) > 1 else _minute_bar(q)}
    return web.json_response(out)


ROUTES = (
    ("GET", "/v2/stocks/bars", get_bars),
    ("GET", "/v2/stocks/bars/latest", latest_bars),
    ("GET", "/v2/stocks/trades/latest", latest_trades),
    ("GET", "/v2/stocks/quotes/latest", latest_quotes),
    ("GET", "/v2/stocks/snapshots", snapshots),
)
