"""Quotes that look alive: top of book, sizes, session volume and generic ticks, per emulator tick.

Prices come from the provider (the sim's continuous path). What a price path alone does not give is
derived deterministically from ``(symbol, second)``: bid/ask/last sizes change every second, and the
session volume grows smoothly within each minute (the provider's minute volumes, interpolated), so a
streaming ticker moves on every tick as a real one does. Everything stays labelled simulated where
the provider is the sim.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from . import messages_data as md
from .history import NY, TRADE_SIZE

__all__ = ["QuoteFeed", "Quote", "Stream", "GENERIC_TICKS"]

#: Generic tick ids the emulator answers (the rest get warning 321 and are skipped).
GENERIC_TICKS = frozenset({"104", "165", "221", "233", "236", "293", "294", "295", "318", "375", "411", "595"})
_RT_VOLUME_TICKS = {"233": md.RT_VOLUME, "375": 77}


@dataclass(frozen=True)
class Quote:
    ts: datetime
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    open: float | None
    high: float | None
    low: float | None
    close: float | None  # the previous session's close
    vwap: float
    in_session: bool
    minute_volume: float


@dataclass
class Stream:
    """One streaming reqMktData subscription and what it last sent."""

    symbol: str
    generics: frozenset[str]
    delayed: bool
    sent: dict[int, Any] = field(default_factory=dict)


class QuoteFeed:
    """Quotes per (symbol, instant), cached for the instant so many subscribers cost one computation."""

    def __init__(self, prices: Any, calendar: Any) -> None:
        self.prices = prices
        self.calendar = calendar
        self._cache: dict[tuple[str, datetime], Quote] = {}
        self._daily: dict[tuple[str, Any], pd.DataFrame] = {}
        self._sessions: dict[Any, list[Any]] = {}

    def quote(self, symbol: str, now: datetime) -> Quote:
        key = (symbol, now)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if len(self._cache) > 512:
            self._cache.clear()
        q = self.prices.get_quote(symbol, now)
        last = float(q.last)
        bid, ask = float(q.bid or q.last), float(q.ask or q.last)
        session = self._session(now)
        bars = self.prices.get_history(symbol, start=session.open, end=min(now, session.close) + timedelta(seconds=1),
                                       interval="1m") if session is not None else None
        rng = np.random.default_rng([zlib.crc32(symbol.encode()), int(now.timestamp())])
        sizes = rng.integers(1, 40, size=3)
        open_ = high = low = None
        volume, vwap, minute_volume = 0.0, last, 0.0
        if bars is not None and len(bars):
            v = bars["volume"].to_numpy(dtype=float)
            minute_volume = float(v[-1])
            frac = 1.0 if now >= session.close else (now.second + now.microsecond / 1e6) / 60
            volume = float(v.sum()) - minute_volume * (1 - frac)
            typical = (bars["high"] + bars["low"] + bars["close"]).to_numpy(dtype=float) / 3
            vwap = float((typical * v).sum() / v.sum()) if v.sum() else last
            open_ = float(bars["open"].iloc[0])
            high, low = float(bars["high"].max()), float(bars["low"].min())
        quote = Quote(ts=now, bid=bid, ask=ask, last=last, bid_size=int(sizes[0]) * 100, ask_size=int(sizes[1]) * 100,
                      last_size=int(sizes[2]) * 10, volume=int(volume), open=open_, high=high, low=low,
                      close=self.previous_close(symbol, now), vwap=round(vwap, 4),
                      in_session=session is not None and session.open <= now < session.close,
                      minute_volume=minute_volume)
        self._cache[key] = quote
        return quote

    def previous_close(self, symbol: str, now: datetime) -> float | None:
        daily = self.daily(symbol, now)
        today = pd.Timestamp(now).tz_convert(NY).date()
        before = daily[daily.index.date < today]
        return float(before["close"].iloc[-1]) if len(before) else None

    def daily(self, symbol: str, now: datetime, days: int = 380) -> pd.DataFrame:
        """About a year of daily bars up to now, cached per day."""
        key = (symbol, pd.Timestamp(now).tz_convert(NY).date())
        frame = self._daily.get(key)
        if frame is None:
            if len(self._daily) > 256:
                self._daily.clear()
            frame = self.prices.get_history(symbol, start=now - timedelta(days=days), end=now, interval="1d")
            self._daily[key] = frame
        return frame

    def _session(self, now: datetime) -> Any:
        """Today's session if it has opened, else the last one."""
        day = pd.Timestamp(now).tz_convert(NY).date()
        recent = self._sessions.get(day)
        if recent is None:
            if len(self._sessions) > 64:
                self._sessions.clear()
            recent = self._sessions[day] = self.calendar.sessions(day - timedelta(days=10), day)
        sessions = [s for s in recent if s.open <= now]
        return sessions[-1] if sessions else None

    # -- messages -------------------------------------------------------------------------------

    def snapshot_messages(self, req_id: int, q: Quote, delayed: bool) -> list[list[Any]]:
        """The ticks of a snapshot (and the first ticks of a stream)."""
        t = _types(delayed)
        out = [md.tick_price(req_id, t[md.BID], q.bid, q.bid_size, 1),
               md.tick_price(req_id, t[md.ASK], q.ask, q.ask_size, 1),
               md.tick_price(req_id, t[md.LAST], q.last, q.last_size)]
        if q.close is not None:
            out.append(md.tick_price(req_id, t[md.CLOSE], q.close))
        for tick, value in ((md.OPEN, q.open), (md.HIGH, q.high), (md.LOW, q.low)):
            if value is not None:
                out.append(md.tick_price(req_id, t[tick], value))
        out.append(md.tick_size(req_id, t[md.VOLUME], q.volume))
        out.append(md.tick_string(req_id, t[md.LAST_TIMESTAMP], str(int(q.ts.timestamp()))))
        return out

    def stream_messages(self, req_id: int, stream: Stream, q: Quote) -> list[list[Any]]:
        """What changed since the last push (everything, the first time)."""
        t = _types(stream.delayed)
        sent = stream.sent
        out: list[list[Any]] = []

        def changed(key: int, value: Any) -> bool:
            if value is None or sent.get(key) == value:
                return False
            sent[key] = value
            return True

        if changed(md.BID, (q.bid, q.bid_size)):
            out.append(md.tick_price(req_id, t[md.BID], q.bid, q.bid_size, 1))
        if changed(md.ASK, (q.ask, q.ask_size)):
            out.append(md.tick_price(req_id, t[md.ASK], q.ask, q.ask_size, 1))
        if changed(md.LAST, (q.last, q.last_size, q.volume)):
            out.append(md.tick_price(req_id, t[md.LAST], q.last, q.last_size))
            out.append(md.tick_string(req_id, t[md.LAST_TIMESTAMP], str(int(q.ts.timestamp()))))
        for tick, value in ((md.CLOSE, q.close), (md.OPEN, q.open), (md.HIGH, q.high), (md.LOW, q.low)):
            if changed(tick, value):
                out.append(md.tick_price(req_id, t[tick], value))
        if changed(md.VOLUME, q.volume):
            out.append(md.tick_size(req_id, t[md.VOLUME], q.volume))
            for generic, tick in _RT_VOLUME_TICKS.items():
                if generic in stream.generics:
                    ms = int(q.ts.timestamp() * 1000)
                    out.append(md.tick_string(req_id, tick, f"{q.last};{q.last_size};{ms};{q.volume};{q.vwap};false"))
        out += self._generic_messages(req_id, stream, q, changed)
        return out

    def _generic_messages(self, req_id: int, stream: Stream, q: Quote, changed: Any) -> list[list[Any]]:
        g, out = stream.generics, []
        if "221" in g and changed(md.MARK_PRICE, q.last):
            out.append(md.tick_price(req_id, md.MARK_PRICE, q.last))
        if "318" in g and changed(md.LAST_RTH_TRADE, q.last if q.in_session else q.close):
            out.append(md.tick_price(req_id, md.LAST_RTH_TRADE, stream.sent[md.LAST_RTH_TRADE]))
        if "293" in g and changed(md.TRADE_COUNT, q.volume // TRADE_SIZE):
            out.append(md.tick_generic(req_id, md.TRADE_COUNT, q.volume // TRADE_SIZE))
        if "294" in g and changed(md.TRADE_RATE, round(q.minute_volume / TRADE_SIZE)):
            out.append(md.tick_generic(req_id, md.TRADE_RATE, round(q.minute_volume / TRADE_SIZE)))
        if "295" in g and changed(md.VOLUME_RATE, q.minute_volume):
            out.append(md.tick_generic(req_id, md.VOLUME_RATE, q.minute_volume))
        if "595" in g and changed(63, q.minute_volume):
            for tick, minutes in ((63, 3), (64, 5), (65, 10)):
                out.append(md.tick_size(req_id, tick, round(q.minute_volume * minutes)))
        if "236" in g and changed(md.SHORTABLE, 3.0):  # > 2.5: shares are available to borrow
            out += [md.tick_generic(req_id, md.SHORTABLE, 3.0), md.tick_size(req_id, md.SHORTABLE_SHARES, 10_000_000)]
        if g & {"104", "165", "411"} and changed(-1, q.ts.date()):  # once a day: from the daily bars
            out += self._daily_stats(req_id, stream, q.ts)
        return out

    def _daily_stats(self, req_id: int, stream: Stream, now: datetime) -> list[list[Any]]:
        daily = self.daily(stream.symbol, now)
        if daily.empty:
            return []
        out = []
        closes = daily["close"].to_numpy(dtype=float)
        returns = np.diff(np.log(closes[-31:]))
        vol = float(returns.std(ddof=1) * math.sqrt(252)) if len(returns) > 2 else 0.0
        if "104" in stream.generics:
            out.append(md.tick_generic(req_id, md.HIST_VOLATILITY, round(vol, 6)))
        if "411" in stream.generics:
            out.append(md.tick_generic(req_id, 58, round(vol, 6)))
        if "165" in stream.generics:
            for weeks, (low_tick, high_tick) in ((13, (md.LOW_13W, md.HIGH_13W)), (26, (md.LOW_26W, md.HIGH_26W)),
                                                 (52, (md.LOW_52W, md.HIGH_52W))):
                window = daily[daily.index >= pd.Timestamp(now) - pd.Timedelta(weeks=weeks)]
                out += [md.tick_price(req_id, low_tick, float(window["low"].min())),
                        md.tick_price(req_id, high_tick, float(window["high"].max()))]
            out.append(md.tick_size(req_id, md.AVG_VOLUME, round(float(daily["volume"].tail(90).mean()))))
        return out


def _types(delayed: bool) -> dict[int, int]:
    return md.DELAYED if delayed else {k: k for k in md.DELAYED}
