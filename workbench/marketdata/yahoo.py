"""``yfinance``: Yahoo Finance bars and prices through yfinance, with a Parquet history cache.

What it fixes compared with calling yfinance directly:

- Errors instead of silence: unknown symbol -> SymbolNotFound; HTTP 429 -> bounded retries with
  exponential backoff and jitter, then RateLimited; network down -> BrokerUnavailable, unless the
  cache can answer (then the frame says ``attrs["stale"] = True`` and ``attrs["cached_as_of"]``, and
  a warning is logged). Never simulated data.
- One schema: tz-aware UTC index ``ts``, float64 ``open high low close volume``. ``adjusted`` is always
  explicit: True = split- and dividend-adjusted (Yahoo's adjclose method); False = prices as traded
  (splits undone with the symbol's split history). Several symbols come back long: a (symbol, ts)
  MultiIndex with the same columns, so ``df.loc["AAPL"]`` is one symbol's frame and
  ``df["close"].unstack("symbol")`` is wide.
- The cache fetches only missing ranges, re-fetches the possibly incomplete last bar after
  ``ttl_seconds``, and re-fetches an adjusted series whole when a new dividend or split appears.
- Many symbols: a tqdm progress bar, ``max_workers`` threads and a ``requests_per_second`` limit.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import (
    BrokerUnavailable,
    InvalidInput,
    RateLimited,
    SymbolNotFound,
    WorkbenchError,
)
from workbench.core.frames import empty_history, history_frame, long_history_frame, quotes_frame
from workbench.core.intervals import Interval, parse_interval
from workbench.core.log import get_logger
from workbench.core.models import _SYMBOL, Quote

from .base import MarketDataProvider, resolve_range
from .cache import CacheEntry, HistoryCache, merge_ranges, subtract_ranges

__all__ = ["YFinanceProvider", "YFinanceConfig"]

log = get_logger(__name__)

_SOURCE = "yfinance"
_DAY_NS = 86_400 * 1_000_000_000


class YFinanceConfig(BaseModel):
    """``market_data.yfinance`` settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cache_dir: str = "~/.workbench/cache/yfinance"
    ttl_seconds: float = Field(default=900, ge=0)
    quote_ttl_seconds: float = Field(default=15, ge=0)
    max_workers: int = Field(default=4, ge=1, le=32)
    requests_per_second: float = Field(default=2.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)
    timeout: float = Field(default=10.0, gt=0)
    progress: bool = True


class _RateLimiter:
    """At most ``rate`` call starts per second, shared by every worker thread."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_raising_lock = threading.Lock()
_raising_depth = 0
_raising_saved: list[bool] = []


@contextlib.contextmanager
def _yfinance_raises() -> Iterator[None]:
    """Make yfinance raise instead of returning empty frames while our calls run (refcounted).

    ``hide_exceptions`` is yfinance's own, process-wide switch; it is restored when the last of our
    concurrent calls finishes.
    """
    import yfinance as yf

    global _raising_depth
    with _raising_lock:
        if _raising_depth == 0:
            _raising_saved[:] = [yf.config.debug.hide_exceptions]
            yf.config.debug.hide_exceptions = False
        _raising_depth += 1
    try:
        yield
    finally:
        with _raising_lock:
            _raising_depth -= 1
            if _raising_depth == 0:
                yf.config.debug.hide_exceptions = _raising_saved[0]


class YFinanceProvider(MarketDataProvider):
    """Yahoo Finance market data. ``session``: a curl_cffi or requests session (proxies, tests)."""

    name = _SOURCE
    simulated = False
    blocking = True

    def __init__(
        self,
        session: Any = None,
        cache_dir: str | None = None,
        *,
        ttl_seconds: float = 900,
        quote_ttl_seconds: float = 15,
        max_workers: int = 4,
        requests_per_second: float = 2.0,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        timeout: float = 10.0,
        progress: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.session = session
        self.cache = HistoryCache(cache_dir or YFinanceConfig().cache_dir)
        self.ttl_ns = int(ttl_seconds * 1e9)
        self.quote_ttl = quote_ttl_seconds
        self.max_workers = max_workers
        self.retries = retries
        self.backoff = backoff_seconds
        self.timeout = timeout
        self.progress = progress
        self.clock = clock or (lambda: datetime.now(UTC))
        self._limiter = _RateLimiter(requests_per_second)
        self._quotes: dict[str, tuple[Quote, datetime]] = {}  # symbol -> (quote, when fetched)

    @classmethod
    def from_config(cls, config: YFinanceConfig, clock: Callable[[], datetime] | None = None,
                    session: Any = None) -> YFinanceProvider:
        return cls(session=session, clock=clock, **config.model_dump())

    # -- public API -------------------------------------------------------------------------

    def get_history(  # type: ignore[override]
        self,
        symbol_or_symbols: str | Sequence[str],
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        days: int | None = None,
        interval: str = "1d",
        adjusted: bool = True,
        errors: str = "raise",
    ) -> pd.DataFrame:
        """Bars for one symbol (history schema) or several (long, indexed by symbol and ts).

        ``errors="skip"`` keeps going past failed symbols and lists them in ``attrs["failed"]``.
        """
        iv = parse_interval(interval)
        now = pd.Timestamp(self.clock()).tz_convert("UTC")
        t0, t1 = resolve_range(start, end, days, now.to_pydatetime(), iv.intraday)
        if not iv.intraday:
            t0 = t0.normalize()
        t1 = min(t1, now)
        if isinstance(symbol_or_symbols, str):
            return self._history_one(_clean(symbol_or_symbols), iv, t0, t1, bool(adjusted), now)
        return self._history_many([_clean(s) for s in symbol_or_symbols], iv, t0, t1, bool(adjusted), now, errors)

    def get_quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest price (``at`` is ignored: Yahoo cannot replay). Memoised ``quote_ttl_seconds``."""
        sym = _clean(symbol)
        now = self.clock()
        memo = self._quotes.get(sym)
        if memo is not None and (now - memo[1]).total_seconds() < self.quote_ttl:
            return memo[0]

        def fetch() -> Quote:
            import yfinance as yf

            ticker = yf.Ticker(sym, session=self.session)
            df = ticker.history(period="5d", interval="1d", auto_adjust=False, actions=False, timeout=self.timeout)
            meta = ticker.history_metadata or {}
            last = meta.get("regularMarketPrice")
            if last is None and not df.empty:
                last = float(df["Close"].iloc[-1])
            if last is None:
                raise SymbolNotFound(f"no price for {sym!r} from Yahoo", broker=None, code="yfinance.no_price")
            stamp = meta.get("regularMarketTime")
            ts = _as_utc(stamp) if stamp is not None else now
            return Quote(symbol=sym, last=Decimal(str(round(float(last), 4))), ts=ts, source=_SOURCE)

        quote = self._call(sym, fetch)
        self._quotes[sym] = (quote, now)
        return quote

    def get_quotes(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Latest quotes, one row per symbol (index ``symbol``)."""
        wanted = [_clean(s) for s in symbols]
        quotes = self._map(wanted, self.get_quote, "quotes")
        return quotes_frame([quotes[s] for s in dict.fromkeys(wanted)], source=_SOURCE)

    def cached(self) -> pd.DataFrame:
        """What the history cache holds: one row per (symbol, interval, adjusted)."""
        return self.cache.entries()

    def clear_cache(self, symbol: str | None = None, interval: str | None = None) -> int:
        """Delete cached history; returns how many datasets were removed."""
        return self.cache.clear(_clean(symbol) if symbol else None, interval)

    # -- history ----------------------------------------------------------------------------

    def _history_one(self, sym: str, iv: Interval, t0: pd.Timestamp, t1: pd.Timestamp, adjusted: bool,
                     now: pd.Timestamp) -> pd.DataFrame:
        attrs = {"source": _SOURCE, "simulated": False, "symbol": sym, "interval": iv.name, "adjusted": adjusted}
        if t0 >= t1:
            return empty_history(**attrs, cached=False)
        entry = self.cache.read(sym, iv.name, adjusted)
        missing = self._missing(entry.meta() if entry else None, t0, t1, now)
        if entry is not None and adjusted:
            # Yahoo adjusts all history as of today: once a day, look at what happened since the last fetch,
            # so a new dividend or split (which rescales every older bar) is noticed even for cached ranges.
            last_day = pd.Timestamp(entry.fetched_at, tz="UTC").normalize()
            if last_day < now.normalize():
                missing = merge_ranges([*missing, (last_day.value, now.value)])
        if entry is not None and not missing:
            return _slice(entry.frame, t0, t1, attrs, cached=True, as_of=entry.fetched_at)
        try:
            entry = self._refresh(sym, iv, adjusted, entry, missing, (t0.value, t1.value), now)
        except BrokerUnavailable as exc:
            if entry is not None:
                served = _slice(entry.frame, t0, t1, attrs, cached=True, as_of=entry.fetched_at)
                if not served.empty:
                    served.attrs["stale"] = True
                    log.warning("Yahoo unreachable (%s); serving %s %s from the cache as of %s",
                                exc, sym, iv.name, served.attrs["cached_as_of"])
                    return served
            raise
        return _slice(entry.frame, t0, t1, attrs, cached=False, as_of=entry.fetched_at)

    def _missing(self, meta: dict[str, Any] | None, t0: pd.Timestamp, t1: pd.Timestamp,
                 now: pd.Timestamp) -> list[tuple[int, int]]:
        """The parts of ``[t0, t1)`` the cache cannot answer (a fresh provisional tail counts as covered)."""
        if meta is None:
            return [(t0.value, t1.value)]
        have = [tuple(r) for r in meta.get("covered", [])]
        provisional = meta.get("provisional")
        if provisional and now.value - provisional[2] < self.ttl_ns:
            have.append((provisional[0], max(provisional[1], t1.value)))
        return subtract_ranges((t0.value, t1.value), have)  # type: ignore[arg-type]

    def _refresh(self, sym: str, iv: Interval, adjusted: bool, entry: CacheEntry | None,
                 missing: list[tuple[int, int]], want: tuple[int, int], now: pd.Timestamp) -> CacheEntry:
        """Fetch ``missing`` ranges, merge them into the cache entry and write it."""
        frames, latest_event = [], None
        for start, end in missing:
            frame, event = self._fetch(sym, iv, start, end, adjusted, entry)
            frames.append(frame)
            latest_event = event if latest_event is None or (event or 0) > latest_event else latest_event
        last_fetch_day = pd.Timestamp(entry.fetched_at, tz="UTC").normalize().value if entry else 0
        if entry is not None and adjusted and entry.covered and latest_event is not None \
                and latest_event >= last_fetch_day:
            # A dividend or split since the last fetch rescales every adjusted price before it (Yahoo adjusts
            # history as of today): refetch the range whole.
            log.info("%s: new dividend/split, refetching adjusted %s history", sym, iv.name)
            entry, missing = None, [want]
            frames = [self._fetch(sym, iv, want[0], want[1], adjusted, None)[0]]
        parts = ([entry.frame] if entry is not None else []) + frames
        combined = pd.concat([p for p in parts if not p.empty]) if any(not p.empty for p in parts) else parts[0]
        combined = history_frame(combined.index, combined["open"], combined["high"], combined["low"],
                                 combined["close"], combined["volume"])  # dedupes: the newest fetch wins
        settle = _settled_before(now, iv)
        covered = list(entry.covered) if entry else []
        covered += [(a, min(b, settle)) for a, b in missing if a < settle]
        tail = [(max(a, settle), b) for a, b in missing if b > settle]
        provisional = (min(t[0] for t in tail), max(t[1] for t in tail), now.value) if tail else \
            (entry.provisional if entry else None)
        updated = CacheEntry(sym, iv.name, adjusted, combined, merge_ranges(covered), provisional, now.value,
                             dict(entry.extra) if entry else {})
        self.cache.write(updated)
        return updated

    def _fetch(self, sym: str, iv: Interval, start: int, end: int, adjusted: bool,
               entry: CacheEntry | None) -> tuple[pd.DataFrame, int | None]:
        """One yfinance history call for ``[start, end)``; returns our frame and the latest event date (ns)."""

        def fetch() -> pd.DataFrame:
            import yfinance as yf

            ticker = yf.Ticker(sym, session=self.session)
            return ticker.history(start=pd.Timestamp(start, tz="UTC").to_pydatetime(),
                                  end=pd.Timestamp(end, tz="UTC").to_pydatetime(), interval=iv.name,
                                  auto_adjust=adjusted, actions=True, timeout=self.timeout)

        raw = self._call(sym, fetch, empty_ok=True)
        if raw is None or raw.empty:
            return empty_history(), None
        index = raw.index
        events = index[(raw.get("Dividends", 0) != 0) | (raw.get("Stock Splits", 0) != 0)]
        latest_event = pd.Timestamp(events.max().date(), tz="UTC").value if len(events) else None
        if iv.intraday:
            ts = index.tz_convert("UTC")
        else:  # label daily and longer bars with the exchange-local date at 00:00 UTC
            ts = pd.DatetimeIndex(index.tz_localize(None).normalize()).tz_localize("UTC")
        prices = {c: raw[c.capitalize()].to_numpy(dtype="float64") for c in ("open", "high", "low", "close")}
        volume = raw["Volume"].to_numpy(dtype="float64")
        if not adjusted:
            factor = self._split_factor(sym, ts, entry)
            prices = {c: v * factor for c, v in prices.items()}
            volume = volume / factor
        frame = history_frame(ts, prices["open"], prices["high"], prices["low"], prices["close"], volume)
        return frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index < pd.Timestamp(end, tz="UTC"))], \
            latest_event

    def _split_factor(self, sym: str, ts: pd.DatetimeIndex, entry: CacheEntry | None) -> Any:
        """Per-row factor that turns Yahoo's split-adjusted prices back into prices as traded."""
        import numpy as np

        now_ns = pd.Timestamp(self.clock()).value
        known = entry.extra.get("splits") if entry else None
        if known is None or now_ns - known.get("fetched_at", 0) > _DAY_NS:
            import yfinance as yf

            splits = self._call(sym, lambda: yf.Ticker(sym, session=self.session).get_splits(), empty_ok=True)
            dates = [] if splits is None else [
                (pd.Timestamp(d.date(), tz="UTC").value, float(r)) for d, r in splits.items() if r]
            known = {"fetched_at": now_ns, "dates": dates}
            if entry is not None:
                entry.extra["splits"] = known
        factor = np.ones(len(ts))
        stamps = ts.asi8 if ts.unit == "ns" else ts.as_unit("ns").asi8
        for day, ratio in known["dates"]:
            factor[stamps < day] *= ratio
        return factor

    def _history_many(self, symbols: list[str], iv: Interval, t0: pd.Timestamp, t1: pd.Timestamp, adjusted: bool,
                      now: pd.Timestamp, errors: str) -> pd.DataFrame:
        if errors not in ("raise", "skip"):
            raise InvalidInput("errors must be 'raise' or 'skip'", field="errors")
        symbols = list(dict.fromkeys(symbols))
        # Fast path: symbols the cache fully answers are read in one dataset scan (footers checked only).
        metas = {s: self.cache.read_meta(s, iv.name, adjusted) for s in symbols}
        warm = [s for s in symbols if metas[s] is not None and not self._missing(metas[s], t0, t1, now)]
        cold = [s for s in symbols if s not in set(warm)]
        results = self._map(cold, lambda s: self._history_one(s, iv, t0, t1, adjusted, now), "history",
                            skip=errors == "skip") if cold else {}
        failed = {s: str(r) for s, r in results.items() if isinstance(r, Exception)}
        parts = []
        if warm:
            bulk = self.cache.read_many(warm, iv.name, adjusted)
            ts = bulk.index.get_level_values("ts")
            parts.append(bulk[(ts >= t0) & (ts < t1)])
        fetched = [s for s in cold if s in results and not isinstance(results[s], Exception)]
        if fetched:
            parts.append(long_history_frame({s: results[s] for s in fetched}))
        ordered = [s for s in symbols if s in set(warm) | set(fetched)]
        out = long_history_frame(parts)
        out.attrs = {"source": _SOURCE, "simulated": False, "symbols": ordered, "interval": iv.name,
                     "adjusted": adjusted, "failed": failed,
                     "cached": bool(ordered) and all(s in warm or results[s].attrs.get("cached") for s in ordered),
                     "stale": any(results[s].attrs.get("stale") for s in fetched)}
        return out

    def _map(self, symbols: list[str], fn: Callable[[str], Any], what: str, skip: bool = False) -> dict[str, Any]:
        """Run ``fn`` per symbol on ``max_workers`` threads with a progress bar; raise or collect errors."""
        from tqdm.auto import tqdm

        results: dict[str, Any] = {}
        show = self.progress and len(symbols) > 1
        with ThreadPoolExecutor(max_workers=min(self.max_workers, max(1, len(symbols)))) as pool, \
                tqdm(total=len(symbols), desc=f"yfinance {what}", unit="sym", disable=not show, leave=False) as bar:
            futures = {pool.submit(fn, s): s for s in dict.fromkeys(symbols)}
            for future in as_completed(futures):
                sym = futures[future]
                try:
                    results[sym] = future.result()
                except WorkbenchError as exc:
                    if not skip:
                        for other in futures:
                            other.cancel()
                        raise
                    log.warning("%s %s failed: %s", what, sym, exc)
                    results[sym] = exc
                bar.update(1)
        return results

    # -- calling yfinance -------------------------------------------------------------------

    def _back_off(self, sym: str, attempt: int, exc: Exception) -> int:
        """Sleep before retry ``attempt + 1`` (exponential, with jitter), or raise RateLimited when out of tries."""
        if attempt >= self.retries:
            raise RateLimited(f"Yahoo rate limit for {sym} after {attempt + 1} attempts", code=429, raw=str(exc),
                              retry_after=self.backoff * 2 ** attempt) from exc
        delay = self.backoff * 2 ** attempt * (1 + random.random() / 4)
        log.info("Yahoo rate limit for %s, retry %d in %.2f s", sym, attempt + 1, delay)
        time.sleep(delay)
        return attempt + 1

    def _call(self, sym: str, fn: Callable[[], Any], empty_ok: bool = False) -> Any:
        """Run one yfinance call with rate limiting, 429 retries and error mapping."""
        from yfinance.exceptions import (
            YFInvalidPeriodError,
            YFPricesMissingError,
            YFRateLimitError,
            YFTzMissingError,
        )

        attempt = 0
        while True:
            self._limiter.wait()
            try:
                with _yfinance_raises():
                    return fn()
            except YFRateLimitError as exc:
                attempt = self._back_off(sym, attempt, exc)
            except YFTzMissingError as exc:
                raise SymbolNotFound(f"unknown symbol {sym!r} (Yahoo has no such ticker)", code="yfinance.no_tz",
                                     raw=str(exc)) from exc
            except YFPricesMissingError as exc:
                reason = str(getattr(exc, "yahoo_reason", None) or "")
                if not reason:
                    if empty_ok:
                        return None
                    raise SymbolNotFound(f"no data for {sym!r}", code="yfinance.no_data", raw=str(exc)) from exc
                if "delisted" in reason.lower() or "not found" in reason.lower():
                    raise SymbolNotFound(f"unknown symbol {sym!r}: {reason}", code="yfinance.not_found",
                                         raw=reason) from exc
                raise InvalidInput(f"Yahoo refused the request for {sym}: {reason}", field="start",
                                   raw=reason) from exc
            except YFInvalidPeriodError as exc:
                raise InvalidInput(str(exc), field="days", raw=str(exc)) from exc
            except WorkbenchError:
                raise
            except Exception as exc:
                status = _http_status(exc)
                if status == 404:  # yfinance's .info fallback for an unknown ticker
                    raise SymbolNotFound(f"unknown symbol {sym!r} (Yahoo answered 404)", code=404,
                                         raw=str(exc)) from exc
                if status == 429:
                    attempt = self._back_off(sym, attempt, exc)
                    continue
                if status is not None or _is_network_error(exc):
                    raise BrokerUnavailable(f"Yahoo Finance unavailable: {type(exc).__name__}: {exc}",
                                            code=status or "yfinance.network", raw=str(exc)) from exc
                raise


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of a curl_cffi / requests HTTPError, else None."""
    if type(exc).__name__ != "HTTPError":
        return None
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)  # not exc.code: that is curl's own error code
    return int(status) if isinstance(status, int) or (isinstance(status, str) and status.isdigit()) else None


def _is_network_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    if module.startswith(("curl_cffi", "requests", "urllib3")) or isinstance(exc, (OSError, TimeoutError)):
        return True
    return type(exc).__name__ == "YFDataException" and "DOWN" in str(exc)


def _as_utc(stamp: Any) -> datetime:
    """yfinance gives epoch seconds or (once formatted) a Timestamp."""
    value = pd.Timestamp(stamp, unit="s", tz="UTC") if isinstance(stamp, (int, float)) else pd.Timestamp(stamp)
    return (value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")).to_pydatetime()


def _clean(symbol: str) -> str:
    sym = str(symbol).strip().upper()
    if not _SYMBOL.match(sym):
        raise InvalidInput(f"not a valid symbol: {symbol!r}", field="symbol")
    return sym


def _settled_before(now: pd.Timestamp, iv: Interval) -> int:
    """Bars starting at or after this instant may still change (the bar containing ``now``)."""
    if iv.intraday:
        return now.floor(f"{iv.minutes}min").value
    day = now.normalize()
    if iv.name.endswith("wk"):
        day -= pd.Timedelta(days=day.day_of_week)
    elif iv.name.endswith("mo"):
        day = day.replace(day=1)
    return day.value


def _slice(frame: pd.DataFrame, t0: pd.Timestamp, t1: pd.Timestamp, attrs: dict[str, Any], cached: bool,
           as_of: int) -> pd.DataFrame:
    part = frame.iloc[frame.index.searchsorted(t0):frame.index.searchsorted(t1)].copy()
    part.attrs = {**attrs, "cached": cached, "stale": False,
                  "cached_as_of": pd.Timestamp(as_of, tz="UTC").isoformat() if as_of else None}
    return part
