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
same whatever was asked before.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import InvalidInput, SymbolNotFound
from workbench.core.frames import empty_history, history_frame
from workbench.core.intervals import parse_interval
from workbench.core.models import Quote

from .base import MarketDataProvider, resolve_range

__all__ = ["SimProvider", "SimConfig", "SimSymbol", "DEFAULT_UNIVERSE"]

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
_CENT = Decimal("0.01")


class SimSymbol(BaseModel):
    """One simulated instrument: its price on 2025-01-01, annual volatility and drift, daily volume."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    price: float = Field(gt=0)
    vol: float = Field(default=0.3, ge=0, le=3)
    drift: float = Field(default=0.05, ge=-1, le=1)
    volume: float = Field(default=20e6, gt=0)


DEFAULT_UNIVERSE: dict[str, SimSymbol] = {
    sym: SimSymbol(price=p, vol=v, volume=adv)
    for sym, p, v, adv in (
        ("AAPL", 245.0, 0.28, 55e6), ("MSFT", 420.0, 0.25, 22e6), ("GOOG", 190.0, 0.30, 25e6),
        ("AMZN", 220.0, 0.32, 40e6), ("META", 590.0, 0.38, 15e6), ("NVDA", 135.0, 0.50, 250e6),
        ("TSLA", 400.0, 0.60, 95e6), ("SPY", 585.0, 0.16, 60e6), ("QQQ", 510.0, 0.20, 35e6),
        ("IWM", 220.0, 0.22, 30e6),
    )
}


class SimConfig(BaseModel):
    """``market_data.sim`` settings: the seed, and extra symbols merged over the built-in universe."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 7
    symbols: dict[str, SimSymbol] = Field(default_factory=dict)


class SimProvider(MarketDataProvider):
    """Seeded synthetic market data. ``clock`` returns "now" (injectable for tests and replays)."""

    name = "sim"
    simulated = True
    blocking = False

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
        self._cache_blocks = max(cache_blocks, 2 * len(self.universe))  # marking every held symbol must not thrash
        self._lock = Lock()

    @classmethod
    def from_config(cls, config: SimConfig, clock: Callable[[], datetime] | None = None) -> SimProvider:
        return cls(seed=config.seed, symbols=config.symbols, clock=clock)

    # -- public API -------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return sorted(self.universe)

    def has_symbol(self, symbol: str) -> bool:
        return symbol.upper() in self.universe

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
            raise SymbolNotFound(f"unknown symbol {sym!r} in the sim universe "
                                 f"({', '.join(sorted(self.universe))}; add more under market_data.sim.symbols)",
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
        local_open = (dates.tz_localize(None) + pd.Timedelta(hours=9, minutes=30)).tz_localize("America/New_York")
        day_idx = ((dates - _EPOCH).days).to_numpy()
        open_min = ((local_open.tz_convert("UTC").as_unit("ns") - dates) // pd.Timedelta(minutes=1)).to_numpy()
        starts = np.arange(0, _SESSION_MIN, size)
        ends = np.minimum(starts + size, _SESSION_MIN)
        points = np.empty((len(dates), _SESSION_MIN + 1))
        vols = np.empty((len(dates), _SESSION_MIN + 1))
        cols = np.arange(_SESSION_MIN + 1)
        for block in np.unique(day_idx // _BLOCK_DAYS):
            sel = np.flatnonzero(day_idx // _BLOCK_DAYS == block)
            prices, volumes = self._block(sym, int(block))
            rows = (day_idx[sel] % _BLOCK_DAYS)[:, None]
            idx = open_min[sel][:, None] + cols
            points[sel], vols[sel] = prices[rows, idx], volumes[rows, idx]
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
        bar_ts = stamp_ns[:, starts]
        keep = ~np.isnan(bar_open) & (bar_ts >= t0.value) & (bar_ts < t1.value)
        return history_frame(bar_ts[keep], bar_open[keep], high[keep], low[keep], close[keep], volume[keep], **attrs)
