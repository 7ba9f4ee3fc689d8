"""``sim``: deterministic, seeded, offline prices. Everything it returns is labelled simulated.

Each symbol follows one continuous price path, defined minute by minute around the clock and
reproducible from ``(seed, symbol)``: a daily log-random-walk anchored so that the price on
2025-01-01 is the configured ``price``, with a Brownian bridge of minute moves inside each UTC day.
History bars and the live price read the same path, so the latest bar agrees with the live price.

- Intraday bars cover the regular US session (09:30-16:00 America/New_York) on weekdays.
- Daily bars are the session's OHLCV on weekdays (exchange holidays are *not* removed: the path is
  synthetic; the paper broker's market hours come from the real exchange calendar).
- The bar containing "now" is partial, up to now; nothing after now is returned.

Minute paths are generated in blocks of 32 days from a counter-based seed, so any range costs the
same whatever was asked before. Daily bars of finished sessions come from a small per-block cache of
session summaries, so a year of daily bars does not regenerate a year of minutes.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from threading import Lock
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import InvalidInput, SymbolNotFound
from workbench.core.frames import empty_history, history_frame
from workbench.core.intervals import parse_interval
from workbench.core.models import Quote

from .base import MarketDataProvider, resolve_range
from .sim_universe import UNIVERSE_ROWS

__all__ = ["SimProvider", "SimConfig", "SimSymbol", "DEFAULT_UNIVERSE", "FIRST_SESSION_OPEN"]

_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
_EPOCH_NS = _EPOCH.value
_EPOCH_DT = _EPOCH.to_pydatetime()
_END_DT = (pd.Timestamp("2059-12-31", tz="UTC")).to_pydatetime()
_MIN_NS = 60_000_000_000
_DAY_MIN = 1440
_ANCHOR_DAY = (pd.Timestamp("2025-01-01", tz="UTC") - _EPOCH).days
_N_DAYS = (pd.Timestamp("2060-01-01", tz="UTC") - _EPOCH).days
_BLOCK_DAYS = 32
_SESSION_MIN = 390  # 09:30-16:00
_SESSION_CACHE = 8192  # (symbol, 32-day block) session summaries kept: 60 years of 10 symbols
_CENT = Decimal("0.01")


class SimSymbol(BaseModel):
    """One simulated instrument: its price on 2025-01-01, annual volatility and drift, daily volume,
    and (optional) how it is listed: long name, primary exchange, STK or ETF, industry and category."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    price: float = Field(gt=0)
    vol: float = Field(default=0.3, ge=0, le=3)
    drift: float = Field(default=0.05, ge=-1, le=1)
    volume: float = Field(default=20e6, gt=0)
    name: str = ""
    exchange: str = "NASDAQ"
    kind: Literal["STK", "ETF"] = "STK"
    industry: str = ""
    category: str = ""


#: The built-in universe (:mod:`workbench.marketdata.sim_universe`): about 130 much-traded US stocks and ETFs.
DEFAULT_UNIVERSE: dict[str, SimSymbol] = {sym: SimSymbol.model_validate(spec) for sym, spec in UNIVERSE_ROWS}
#: The span the sim covers: the first bar is the 2000-01-03 open, the last one is in 2059.
FIRST_SESSION_OPEN = datetime(2000, 1, 3, 14, 30, tzinfo=UTC)


class SimConfig(BaseModel):
    """``market_data.sim`` settings: the seed, and extra symbols merged over the built-in universe."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = Field(default=7, ge=0)  # (numpy seeds are non-negative)
    symbols: dict[str, SimSymbol] = Field(default_factory=dict)


class SimProvider(MarketDataProvider):
    """Seeded synthetic market data. ``clock`` returns "now" (injectable for tests and replays)."""

    name = "sim"
    simulated = True
    blocking = False
    #: The first bar the sim has (what a gateway answers to reqHeadTimeStamp).
    first_timestamp = FIRST_SESSION_OPEN

    def __init__(
        self,
        seed: int = 7,
        symbols: Mapping[str, SimSymbol | Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] | None = None,
        cache_blocks: int = 48,
    ) -> None:
        self.seed = int(seed)
        self.universe: dict[str, SimSymbol] = dict(DEFAULT_UNIVERSE)
        for sym, spec in (symbols or {}).items():
            self.universe[sym.upper()] = spec if isinstance(spec, SimSymbol) else SimSymbol(**spec)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._daily: dict[str, np.ndarray] = {}
        self._blocks: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # One current block per symbol (marking every held symbol must not thrash) plus history's working set;
        # a block is ~0.7 MB and is only made when used.
        self._cache_blocks = cache_blocks + len(self.universe)
        self._session_cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()  # ~1 kB each
        self._lock = Lock()

    @classmethod
    def from_config(cls, config: SimConfig, clock: Callable[[], datetime] | None = None) -> SimProvider:
        return cls(seed=config.seed, symbols=config.symbols, clock=clock)

    # -- public API -------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return sorted(self.universe)

    def has_symbol(self, symbol: str) -> bool:
        return symbol.upper() in self.universe

    def info(self, symbol: str) -> SimSymbol:
        """The simulation parameters and listing details of ``symbol`` (SymbolNotFound if unknown)."""
        return self.universe[self._known(symbol)]

    def get_quote(self, symbol: str, at: datetime | None = None) -> Quote:
        sym = self._known(symbol)
        ts = at or self.clock()
        last = self._price_at(sym, ts)
        half = max(_CENT, (last * Decimal("0.0001")).quantize(_CENT))
        return Quote(symbol=sym, last=last, bid=last - half, ask=last + half, ts=ts, source=self.name,
                     simulated=True)

    def get_market_price(self, symbol: str, at: datetime | None = None) -> Decimal:
        return self._price_at(self._known(symbol), at or self.clock())

    def get_history(
        self,
        symbol: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        days: int | None = None,
        interval: str = "1d",
        adjusted: bool = True,
    ) -> pd.DataFrame:
        sym = self._known(symbol)
        iv = parse_interval(interval)
        now = pd.Timestamp(self.clock()).tz_convert("UTC")
        t0, t1 = resolve_range(start, end, days, now.to_pydatetime(), iv.intraday)
        t1 = min(t1, now)
        if t0 < _EPOCH or t1 > _EPOCH + pd.Timedelta(days=_N_DAYS - 1):
            raise InvalidInput(f"sim data covers {_EPOCH.date()} to 2059; got {t0.date()}..{t1.date()}", field="start")
        attrs = {"source": self.name, "simulated": True, "symbol": sym, "interval": iv.name, "adjusted": adjusted}
        if t0 >= t1:
            return empty_history(**attrs)
        if iv.intraday:
            assert iv.minutes is not None
            return self._intraday(sym, t0, t1, now, iv.minutes, attrs)
        daily = self._intraday(sym, t0.normalize(), t1, now, _SESSION_MIN, attrs)
        daily.index = daily.index.normalize()
        if iv.name == "1d":
            return daily
        agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        out = daily.resample(iv.rule, label="left", closed="left").agg(agg).dropna(subset=["close"])
        return history_frame(out.index, out["open"], out["high"], out["low"], out["close"], out["volume"], **attrs)

    # -- the path ---------------------------------------------------------------------------

    def _known(self, symbol: str) -> str:
        sym = str(symbol).strip().upper()
        if sym not in self.universe:
            raise SymbolNotFound(f"unknown symbol {sym!r} in the sim universe ({len(self.universe)} symbols, "
                                 f"SimProvider.symbols() lists them; add more under market_data.sim.symbols)",
                                 broker=None, code="sim.unknown_symbol")
        return sym

    def _rng(self, sym: str, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(sym.encode()), stream])

    def _daily_logs(self, sym: str) -> np.ndarray:
        """Log price at 00:00 UTC of every day since the epoch."""
        logs = self._daily.get(sym)
        if logs is None:
            spec = self.universe[sym]
            sigma = spec.vol / np.sqrt(365.0)
            steps = self._rng(sym, 1 << 30).normal((spec.drift - 0.5 * spec.vol**2) / 365.0, sigma, _N_DAYS + 1)
            logs = np.concatenate([[0.0], np.cumsum(steps)])
            logs += np.log(spec.price) - logs[_ANCHOR_DAY]
            self._daily[sym] = logs
        return logs

    def _block(self, sym: str, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Prices and volumes of every minute of ``_BLOCK_DAYS`` days, shape ``(days, 1441)``."""
        key = (sym, block)
        with self._lock:
            hit = self._blocks.get(key)
            if hit is not None:
                self._blocks.move_to_end(key)
                return hit
        spec = self.universe[sym]
        logs = self._daily_logs(sym)
        d0 = block * _BLOCK_DAYS
        rng = self._rng(sym, block)
        steps = rng.standard_normal((_BLOCK_DAYS, _DAY_MIN))
        walk = np.concatenate([np.zeros((_BLOCK_DAYS, 1)), np.cumsum(steps, axis=1)], axis=1)
        frac = np.arange(_DAY_MIN + 1) / _DAY_MIN
        bridge = walk - frac * walk[:, -1:]
        sigma_min = spec.vol / np.sqrt(365.0 * _DAY_MIN)
        start, stop = logs[d0:d0 + _BLOCK_DAYS], logs[d0 + 1:d0 + _BLOCK_DAYS + 1]
        path = start[:, None] + frac * (stop - start)[:, None] + sigma_min * bridge
        prices = np.round(np.exp(path), 2)
        volumes = np.round(spec.volume / _SESSION_MIN * rng.lognormal(-0.125, 0.5, (_BLOCK_DAYS, _DAY_MIN + 1)))
        with self._lock:
            self._blocks[key] = (prices, volumes)
            while len(self._blocks) > self._cache_blocks:
                self._blocks.popitem(last=False)
        return prices, volumes

    def _price_at(self, sym: str, ts: datetime) -> Decimal:
        if not _EPOCH_DT <= ts < _END_DT:
            raise InvalidInput(f"sim prices cover 2000-01-01 to 2059, not {ts:%Y-%m-%d}", field="at")
        delta = ts - _EPOCH_DT  # plain datetime arithmetic: this runs once per order
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        minutes, rem = divmod(ns, _MIN_NS)
        day, minute = divmod(int(minutes), _DAY_MIN)
        prices, _ = self._block(sym, day // _BLOCK_DAYS)
        row = prices[day % _BLOCK_DAYS]
        value = row[minute] + (row[minute + 1] - row[minute]) * (rem / _MIN_NS)
        return Decimal(repr(round(float(value), 2))).quantize(_CENT)

    def _intraday(
        self, sym: str, t0: pd.Timestamp, t1: pd.Timestamp, now: pd.Timestamp, size: int, attrs: dict[str, Any]
    ) -> pd.DataFrame:
        """Session bars of ``size`` minutes starting in ``[t0, t1)``, truncated at ``now``."""
        dates = pd.date_range(t0.normalize(), t1.normalize(), freq="D", tz="UTC").as_unit("ns")
        dates = dates[dates.day_of_week < 5]
        if len(dates) == 0:
            return empty_history(**attrs)
        day_idx = ((dates - _EPOCH).days).to_numpy()
        open_min = _open_minutes(dates)
        if size == _SESSION_MIN:  # daily: finished sessions come from the per-block session cache
            complete = dates.asi8 + (open_min + _SESSION_MIN) * _MIN_NS <= now.value
            bar_ts = dates.asi8 + open_min * _MIN_NS
            values = np.empty((len(dates), 5))
            for block in np.unique(day_idx[complete] // _BLOCK_DAYS):
                sel = np.flatnonzero(complete & (day_idx // _BLOCK_DAYS == block))
                values[sel] = self._sessions(sym, int(block))[day_idx[sel] % _BLOCK_DAYS]
            if not complete.all():
                rest = ~complete
                values[rest] = self._bars(sym, dates[rest], day_idx[rest], open_min[rest], size, now)[1][..., 0]
        else:
            stamps, per_day = self._bars(sym, dates, day_idx, open_min, size, now)
            bar_ts, values = stamps.reshape(-1), per_day.transpose(0, 2, 1).reshape(-1, 5)
        keep = ~np.isnan(values[:, 0]) & (bar_ts >= t0.value) & (bar_ts < t1.value)
        v = values[keep]
        return history_frame(bar_ts[keep], v[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4], **attrs)

    def _points(self, sym: str, day_idx: np.ndarray, open_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prices and volumes of the 391 session minutes (09:30..16:00 New York) of each day."""
        cols = np.arange(_SESSION_MIN + 1)
        points = np.empty((len(day_idx), _SESSION_MIN + 1))
        vols = np.empty((len(day_idx), _SESSION_MIN + 1))
        for block in np.unique(day_idx // _BLOCK_DAYS):
            sel = np.flatnonzero(day_idx // _BLOCK_DAYS == block)
            prices, volumes = self._block(sym, int(block))
            rows = (day_idx[sel] % _BLOCK_DAYS)[:, None]
            idx = open_min[sel][:, None] + cols
            points[sel], vols[sel] = prices[rows, idx], volumes[rows, idx]
        return points, vols

    def _sessions(self, sym: str, block: int) -> np.ndarray:
        """(open, high, low, close, volume) of the whole session of every day of ``block``, cached (small)."""
        key = (sym, block)
        with self._lock:
            hit = self._session_cache.get(key)
            if hit is not None:
                self._session_cache.move_to_end(key)
                return hit
        days = pd.date_range(_EPOCH + pd.Timedelta(days=block * _BLOCK_DAYS), periods=_BLOCK_DAYS, freq="D")
        day_idx = block * _BLOCK_DAYS + np.arange(_BLOCK_DAYS)
        points, vols = self._points(sym, day_idx, _open_minutes(days.as_unit("ns")))
        out = np.column_stack([points[:, 0], points.max(axis=1), points.min(axis=1), points[:, _SESSION_MIN],
                               vols[:, :-1].sum(axis=1)])
        with self._lock:
            self._session_cache[key] = out
            while len(self._session_cache) > _SESSION_CACHE:
                self._session_cache.popitem(last=False)
        return out

    def _bars(self, sym: str, dates: pd.DatetimeIndex, day_idx: np.ndarray, open_min: np.ndarray, size: int,
              now: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        """Bars of ``size`` minutes of each day: their start stamps ``(days, bars)`` and values
        ``(days, 5, bars)``: open, high, low, close, volume (open is NaN for a bar after "now")."""
        starts = np.arange(0, _SESSION_MIN, size)
        ends = np.minimum(starts + size, _SESSION_MIN)
        cols = np.arange(_SESSION_MIN + 1)
        points, vols = self._points(sym, day_idx, open_min)
        # Minute stamps of every point; mask what lies after "now".
        stamp_ns = (dates.asi8[:, None] + (open_min[:, None] + cols) * _MIN_NS)
        # The point just after "now" becomes the live price, so the partial bar closes at it.
        upcoming = (stamp_ns > now.value) & (stamp_ns - _MIN_NS < now.value)
        points[upcoming] = float(self._price_at(sym, now.to_pydatetime()))
        future = (stamp_ns > now.value) & ~upcoming
        points = np.where(future, np.nan, points)
        vols = np.where(stamp_ns > now.value, 0.0, vols)
        bar_open = points[:, starts]
        high = np.fmax.reduceat(points, starts, axis=1)[:, : len(starts)]
        low = np.fmin.reduceat(points, starts, axis=1)[:, : len(starts)]
        close_pts = points[:, ends]
        high, low = np.fmax(high, close_pts), np.fmin(low, close_pts)
        last_valid = pd.DataFrame(points.T).ffill().to_numpy().T  # close of a partial bar = latest point
        close = np.where(np.isnan(close_pts), last_valid[:, np.minimum(ends, _SESSION_MIN)], close_pts)
        volume = np.add.reduceat(vols[:, :-1], starts, axis=1)
        return stamp_ns[:, starts], np.stack([bar_open, high, low, close, volume], axis=1)


def _open_minutes(dates: pd.DatetimeIndex) -> np.ndarray:
    """Minutes from 00:00 UTC to 09:30 New York on each date (DST-aware)."""
    local_open = (dates.tz_localize(None) + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York")
    return ((local_open.tz_convert("UTC").as_unit("ns") - dates) // pd.Timedelta(minutes=1)).to_numpy()
