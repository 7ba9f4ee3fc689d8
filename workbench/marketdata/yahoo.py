"""``yfinance``: Yahoo Finance bars and prices through yfinance, with a Parquet history cache.

What it fixes compared with calling yfinance directly:

- Errors instead of silence (see :mod:`.yahoo_client`): unknown symbol -> SymbolNotFound; HTTP 429 ->
  bounded retries with exponential backoff and jitter, then RateLimited; network down, error pages or
  unreadable answers -> BrokerUnavailable, unless the cache can answer (then the frame says
  ``attrs["stale"] = True`` and ``attrs["cached_as_of"]``, and a warning is logged). Never simulated data.
- One schema: tz-aware UTC index ``ts``, float64 ``open high low close volume``. ``adjusted`` is always
  explicit: True = split- and dividend-adjusted (Yahoo's adjclose method; intraday bars are split-adjusted
  only, as Yahoo gives them); False = prices as traded (splits undone with the symbol's split history).
  Several symbols come back long: a (symbol, ts) MultiIndex with the same columns, so ``df.loc["AAPL"]``
  is one symbol's frame and ``df["close"].unstack("symbol")`` is wide.
- Ranges are ``[start, end)``: ``end`` is exclusive.
- The cache fetches only missing ranges, re-fetches the possibly incomplete last bar after
  ``ttl_seconds``, keeps each symbol's split/dividend history (re-checked at most once a UTC day), and
  re-fetches an adjusted series when a new dividend or split appears. One rule decides whether the
  cache can answer, for one symbol or many.
- Yahoo's intraday limits are known up front (1m: 30 days back, 7-day requests; 2m-90m: 60 days;
  60m: 730 days): long ranges are split into requests Yahoo accepts; older ranges that the cache does
  not hold are an InvalidInput naming ``start``.
- Many symbols: a tqdm progress bar, ``max_workers`` threads and a ``requests_per_second`` limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workbench.core.errors import BrokerUnavailable, InvalidInput, SymbolNotFound, WorkbenchError
from workbench.core.frames import empty_history, history_frame, long_history_frame, quotes_frame
from workbench.core.intervals import Interval, parse_interval
from workbench.core.log import get_logger
from workbench.core.models import _SYMBOL, Quote

from . import events
from .base import MarketDataProvider, resolve_range
from .yahoo_config import YFinanceConfig
from .cache import CacheEntry, CacheReadError, EventsRecord, HistoryCache, merge_ranges, subtract_ranges
from .yahoo_client import YahooClient

__all__ = ["YFinanceProvider", "YFinanceConfig", "YAHOO_INTERVALS"]

log = get_logger(__name__)

_SOURCE = "yfinance"
_DAY_NS = 86_400 * 1_000_000_000
_DAILY = parse_interval("1d")
#: The bar sizes Yahoo serves (``1h`` is spelled ``60m``).
YAHOO_INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1d", "1wk", "1mo", "3mo")
# How far back Yahoo serves intraday bars, and how much 1m history one request may ask for.
_LOOKBACK_DAYS = {"1m": 30, "60m": 730}
_INTRADAY_LOOKBACK_DAYS = 60
_REQUEST_SPAN_NS = {"1m": 7 * _DAY_NS}
_EDGE_NS = 60 * 1_000_000_000  # a start this close to the lookback edge is nudged inside it (clock skew)
_LOOKBACK = "yfinance.lookback"


class _Fetched(NamedTuple):
    frame: pd.DataFrame  # bars in Yahoo's basis (split-adjusted as of now, dividend-adjusted if asked)
    events: events.EventBatch | None  # daily fetches also report every dividend and split of their range
    tz: str | None = None  # the exchange's timezone, as yfinance gives it


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
        self.progress = progress
        self.clock = clock or (lambda: datetime.now(UTC))
        self._client = YahooClient(session, requests_per_second=requests_per_second, retries=retries,
                                   backoff_seconds=backoff_seconds, timeout=timeout)
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
        """Bars in ``[start, end)`` for one symbol (history schema) or several (long, indexed by symbol and ts).

        ``end`` is exclusive and defaults to now; ``days`` counts back from ``end``. Intervals: 1m 2m 5m
        15m 30m 60m/1h 90m 1d 1wk 1mo 3mo. ``errors="skip"`` keeps going past failed symbols and lists
        them in ``attrs["failed"]``. Frames say where they came from in ``attrs`` (``cached``, ``stale``,
        ``cached_as_of``).
        """
        iv = _yahoo_interval(interval)
        if errors not in ("raise", "skip"):
            raise InvalidInput(f"errors must be 'raise' or 'skip', got {errors!r}", field="errors")
        if not isinstance(adjusted, (bool, np.bool_)):
            raise InvalidInput(f"adjusted must be True or False, got {adjusted!r}", field="adjusted")
        now = pd.Timestamp(self.clock()).tz_convert("UTC")
        t0, t1 = resolve_range(start, end, days, now.to_pydatetime(), iv.intraday)
        if not iv.intraday:
            t0 = t0.normalize()
        t1 = min(t1, now)
        if isinstance(symbol_or_symbols, str):
            return self._history_one(_clean(symbol_or_symbols), iv, t0, t1, bool(adjusted), now)
        return self._history_many(_clean_many(symbol_or_symbols), iv, t0, t1, bool(adjusted), now, errors)

    def get_quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The latest price (``at`` is ignored: Yahoo cannot replay). Memoised ``quote_ttl_seconds``."""
        sym = _clean(symbol)
        now = self.clock()
        memo = self._quotes.get(sym)
        if memo is not None and (now - memo[1]).total_seconds() < self.quote_ttl:
            return memo[0]
        last, stamp = self._client.quote(sym)
        if last is None:
            raise SymbolNotFound(f"no price for {sym!r} from Yahoo", broker=None, code="yfinance.no_price")
        ts = _as_utc(stamp) if stamp is not None else now
        quote = Quote(symbol=sym, last=Decimal(str(round(last, 4))), ts=ts, source=_SOURCE)
        self._quotes[sym] = (quote, now)
        return quote

    def get_quotes(self, symbols: Sequence[str]) -> pd.DataFrame:
        """Latest quotes, one row per symbol (index ``symbol``)."""
        wanted = _clean_many(symbols)
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
        if t0 >= t1:  # e.g. a range that starts in the future
            return _slice(empty_history(), t0, t1, attrs, cached=False, as_of=0)
        entry = self.cache.read(sym, iv.name, adjusted)
        if entry is not None and self._answerable(sym, entry.meta(), iv, t0, t1, adjusted, now):
            return _slice(entry.frame, t0, t1, attrs, cached=True, as_of=entry.fetched_at)
        try:
            updated, fetched = self._refresh(sym, iv, adjusted, entry, _whole_bars(iv, t0, t1, now), now)
        except BrokerUnavailable as exc:
            if (served := _stale(entry, t0, t1, attrs)) is None:
                raise
            log.warning("Yahoo unreachable (%s); serving %s %s from the cache as of %s",
                        exc, sym, iv.name, served.attrs["cached_as_of"])
            return served
        except InvalidInput as exc:  # Yahoo no longer serves part of a range the cache holds from its start
            if exc.code != _LOOKBACK or entry is None or _cached_from(entry) > t0.value or \
                    (served := _stale(entry, t0, t1, attrs)) is None:
                raise
            log.warning("%s; serving %s %s from the cache as of %s", exc.message, sym, iv.name,
                        served.attrs["cached_as_of"])
            return served
        cached = not any(a < t1.value and b > t0.value for a, b in fetched)  # no bar of the answer was fetched
        return _slice(updated.frame, t0, t1, attrs, cached=cached, as_of=updated.fetched_at)

    def _answerable(self, sym: str, meta: dict[str, Any] | None, iv: Interval, t0: pd.Timestamp,
                    t1: pd.Timestamp, adjusted: bool, now: pd.Timestamp) -> bool:
        """Whether the cache alone answers ``[t0, t1)``: the one rule for one symbol and for many.

        Every bar must be cached (a provisional last bar only within ``ttl_seconds``), and an adjusted
        series must still match the symbol's dividends and splits, as checked today.
        """
        if meta is None or self._missing(meta, *_whole_bars(iv, t0, t1, now), now):
            return False
        if not adjusted:
            return True  # prices as traded never change
        known = (meta.get("extra") or {}).get("basis")
        return bool(known) and events.stale(self.cache.read_events(sym), known, now.value, iv.intraday) is False

    def _missing(self, meta: dict[str, Any] | None, t0: int, t1: int, now: pd.Timestamp) -> list[tuple[int, int]]:
        """The parts of ``[t0, t1)`` the cache cannot answer (a fresh provisional tail counts as covered)."""
        if meta is None:
            return [(t0, t1)]
        have = [tuple(r) for r in meta.get("covered", [])]
        provisional = meta.get("provisional")
        if provisional and now.value - provisional[2] < self.ttl_ns:
            have.append((provisional[0], max(provisional[1], t1)))
        return subtract_ranges((t0, t1), have)  # type: ignore[arg-type]

    def _refresh(self, sym: str, iv: Interval, adjusted: bool, entry: CacheEntry | None, want: tuple[int, int],
                 now: pd.Timestamp) -> tuple[CacheEntry, list[tuple[int, int]]]:
        """Bring the dataset up to date for ``want``: check the symbol's events where the answer depends on
        them, re-base a stale adjusted series, fetch what is missing, write. Returns the entry and the
        ranges whose bars were fetched."""
        known = (entry.extra.get("basis") if entry is not None else None) if adjusted else None
        if adjusted and entry is not None and not known:
            entry = None  # written before the cache recorded what an adjusted series reflects: fetch it again
        record = self.cache.read_events(sym)
        verdict = events.stale(record, known, now.value, iv.intraday) if known else False
        if verdict:
            entry, known = self._rebase(sym, iv, entry, record, known), None
        missing = self._missing(entry.meta() if entry is not None else None, *want, now)
        # The events record must cover every split after the first bar fetched as traded, and, for an
        # adjusted series not checked today, everything since the day it was fetched.
        since = int(known["day"]) if verdict is None else (missing[0][0] if missing and not adjusted else None)
        gaps = events.gaps(record, since, now.value) if since is not None else []
        if iv.name == _DAILY.name and gaps:  # daily bars carry their range's events: one request, bars kept
            missing, gaps = merge_ranges([*missing, *gaps]), []
        requests = _requests(iv, missing, now)
        fetched = [self._fetch(sym, iv, a, b, adjusted) for a, b in requests]
        batches = [f.events for f in fetched] + [self._fetch(sym, _DAILY, a, b, False).events for a, b in gaps]
        record = self._update_events(sym, batches, now)
        if known and events.stale(record, known, now.value, iv.intraday) is not False:
            entry, known = self._rebase(sym, iv, entry, record, known), None
            if entry is None:
                missing = requests = [want]
                fetched = [self._fetch(sym, iv, *want, adjusted)]
        if not fetched and entry is not None and known:
            return entry, []  # the events were checked and nothing changed: the dataset stands as it was
        frames = [f.frame if adjusted else _as_traded(f.frame, record, iv, f.tz) for f in fetched]
        parts = [p for p in ([entry.frame] if entry is not None else []) + frames if not p.empty]
        combined = pd.concat(parts) if parts else empty_history()
        combined = history_frame(combined.index, combined["open"], combined["high"], combined["low"],
                                 combined["close"], combined["volume"])  # dedupes: the newest fetch wins
        settle = _settled_before(now, iv)
        covered = list(entry.covered) if entry is not None else []
        covered += [(a, min(b, settle)) for a, b in missing if a < settle]
        tail = [(max(a, settle), b) for a, b in missing if b > settle]
        provisional = (min(t[0] for t in tail), max(t[1] for t in tail), now.value) if tail else \
            (entry.provisional if entry is not None else None)
        extra = {k: v for k, v in (entry.extra if entry is not None else {}).items() if k != "splits"}
        if adjusted and not known:  # which dividends and splits the series reflects from today on
            day = events.day_of(now.value)
            extra["basis"] = {"day": day, "at": now.value, "events": events.basis(record, day, iv.intraday)}
        updated = CacheEntry(sym, iv.name, adjusted, combined, merge_ranges(covered), provisional, now.value, extra)
        self._store(self.cache.write, updated)
        return updated, requests

    def _rebase(self, sym: str, iv: Interval, entry: CacheEntry | None, record: EventsRecord | None,
                known: dict[str, Any]) -> CacheEntry | None:
        """A dividend or split appeared after the adjusted series was fetched: Yahoo rescales every earlier
        bar. Intraday bars (split-adjusted only) are rescaled here, since Yahoo may no longer serve them;
        daily and longer ones are dropped, to be fetched again."""
        log.info("%s: new dividend/split since the adjusted %s series was fetched; re-basing it", sym, iv.name)
        if entry is not None and iv.intraday:
            return replace(entry, frame=_rescale(entry.frame, events.new_splits(record, known), record))
        return None

    def _fetch(self, sym: str, iv: Interval, start: int, end: int, adjusted: bool) -> _Fetched:
        """One yfinance history call for ``[start, end)``: bars in our schema (Yahoo's basis) and, for daily
        bars, the events of the range."""
        raw = self._client.history(sym, start=start, end=end, interval=iv.name, adjusted=adjusted,
                                   intraday=iv.intraday)
        daily = iv.name == _DAILY.name
        if raw is None or raw.empty:
            return _Fetched(empty_history(), events.EventBatch(start, end, events.empty_events()) if daily else None)
        index = raw.index
        tz = str(index.tz) if index.tz is not None else None
        if iv.intraday:
            ts = index.tz_convert("UTC")
        else:  # label daily and longer bars with the exchange-local date at 00:00 UTC
            ts = pd.DatetimeIndex(index.tz_localize(None).normalize()).tz_localize("UTC")
        prices = {c: raw[c.capitalize()].to_numpy(dtype="float64") for c in ("open", "high", "low", "close")}
        has_bar = ~np.all(np.isnan(np.column_stack(list(prices.values()))), axis=1)  # event-only rows have none
        frame = history_frame(ts[has_bar], *(v[has_bar] for v in prices.values()),
                              raw["Volume"].to_numpy(dtype="float64")[has_bar])
        frame = frame.iloc[frame.index.searchsorted(pd.Timestamp(start, tz="UTC")):
                           frame.index.searchsorted(pd.Timestamp(end, tz="UTC"))]
        batch = None
        if daily:
            split = _column(raw, "Stock Splits")
            dividend = _column(raw, "Dividends")
            hit = (split != 0) | (dividend != 0)
            found = pd.DataFrame({"split": split[hit], "dividend": dividend[hit]},
                                 index=pd.DatetimeIndex(ts[hit], name="ts").as_unit("ns"))
            batch = events.EventBatch(start, end, found[~found.index.duplicated(keep="last")], tz)
        return _Fetched(frame, batch, tz)

    def _update_events(self, sym: str, batches: Iterable[events.EventBatch | None], now: pd.Timestamp
                       ) -> EventsRecord | None:
        """Merge what the fetches reported into the symbol's events record and write it if it changed."""
        record = self.cache.read_events(sym)
        merged = events.merge(record, sym, [b for b in batches if b is not None], now.value)
        if merged is not record and merged is not None:
            self._store(self.cache.write_events, merged)
        return merged

    def _store(self, write: Callable[[Any], None], item: Any) -> None:
        """Write to the cache; a full disk or a read-only folder costs the caching, not the answer."""
        import pyarrow as pa

        try:
            write(item)
        except (OSError, pa.ArrowException) as exc:
            log.warning("could not write the yfinance cache under %s (%s: %s); the answer is not cached",
                        self.cache.root, type(exc).__name__, exc)

    def _history_many(self, symbols: list[str], iv: Interval, t0: pd.Timestamp, t1: pd.Timestamp, adjusted: bool,
                      now: pd.Timestamp, errors: str) -> pd.DataFrame:
        symbols = list(dict.fromkeys(symbols))
        # Fast path: symbols the cache answers alone (footers checked only) are read in one dataset scan.
        metas = {s: self.cache.read_meta(s, iv.name, adjusted) for s in symbols}
        warm = [s for s in symbols if t0 < t1 and self._answerable(s, metas[s], iv, t0, t1, adjusted, now)]
        parts = []
        if warm:
            try:
                bulk = self.cache.read_many(warm, iv.name, adjusted)
                ts = bulk.index.get_level_values("ts")
                parts.append(bulk[(ts >= t0) & (ts < t1)])
            except CacheReadError as exc:
                log.warning("cached %s bars unreadable together (%s); reading them one by one", iv.name, exc)
                warm = []
        cold = [s for s in symbols if s not in set(warm)]
        results = self._map(cold, lambda s: self._history_one(s, iv, t0, t1, adjusted, now), "history",
                            skip=errors == "skip") if cold else {}
        failed = {s: str(r) for s, r in results.items() if isinstance(r, Exception)}
        fetched = [s for s in cold if s in results and not isinstance(results[s], Exception)]
        if fetched:
            parts.append(long_history_frame({s: results[s] for s in fetched}))
        ordered = [s for s in symbols if s in set(warm) | set(fetched)]
        as_of = {s: _iso(metas[s]["fetched_at"]) for s in warm}
        as_of.update({s: results[s].attrs.get("cached_as_of") for s in fetched})
        stale = [s for s in fetched if results[s].attrs.get("stale")]
        out = long_history_frame(parts)
        out.attrs = {"source": _SOURCE, "simulated": False, "symbols": ordered, "interval": iv.name,
                     "adjusted": adjusted, "failed": failed,
                     "cached": bool(ordered) and all(s in warm or results[s].attrs.get("cached") for s in ordered),
                     "stale": bool(stale), "stale_symbols": stale,
                     "cached_as_of": {s: as_of[s] for s in ordered}}
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


def _yahoo_interval(interval: str) -> Interval:
    iv = parse_interval(interval)
    if iv.name not in YAHOO_INTERVALS:
        raise InvalidInput(f"Yahoo has no {interval!r} bars; use one of {', '.join(YAHOO_INTERVALS)} (1h = 60m)",
                           field="interval")
    return iv


def _requests(iv: Interval, missing: list[tuple[int, int]], now: pd.Timestamp) -> list[tuple[int, int]]:
    """The yfinance calls that fetch ``missing``, within Yahoo's intraday limits (InvalidInput beyond them)."""
    if not iv.intraday:
        return list(missing)
    days = _LOOKBACK_DAYS.get(iv.name, _INTRADAY_LOOKBACK_DAYS)
    oldest = now.value - days * _DAY_NS
    span = _REQUEST_SPAN_NS.get(iv.name)
    out = []
    for a, b in missing:
        if a < oldest:
            raise InvalidInput(f"Yahoo serves {iv.name} bars for the last {days} days only, and the cache does "
                               f"not hold them from {_iso(a)}; start on or after {_iso(oldest)}", field="start",
                               code=_LOOKBACK)
        a = max(a, oldest + _EDGE_NS) if a < oldest + _EDGE_NS else a
        while a < b:
            step = min(b, a + span) if span else b
            out.append((a, step))
            a = step
    return out


def _column(raw: pd.DataFrame, name: str) -> np.ndarray:
    return raw[name].fillna(0).to_numpy(dtype="float64") if name in raw else np.zeros(len(raw))


def _as_traded(frame: pd.DataFrame, record: EventsRecord | None, iv: Interval, tz: str | None) -> pd.DataFrame:
    """Yahoo's split-adjusted bars back into prices (and volumes) as traded."""
    if frame.empty:
        return frame
    tz = tz or (record.tz if record else None)
    labels = events.local_days(frame.index, tz) if iv.intraday else frame.index.asi8
    factor = events.split_factor(record, labels)
    return history_frame(frame.index, *(frame[c].to_numpy() * factor for c in ("open", "high", "low", "close")),
                         frame["volume"].to_numpy() / factor)


def _rescale(frame: pd.DataFrame, splits: list[tuple[int, float]], record: EventsRecord | None) -> pd.DataFrame:
    """Apply new splits to cached split-adjusted intraday bars (prices / ratio, volume * ratio before each)."""
    if frame.empty or not splits:
        return frame
    labels = events.local_days(frame.index, record.tz if record else None)
    factor = np.ones(len(frame))
    for day, ratio in splits:
        factor[labels < day] *= ratio
    return history_frame(frame.index, *(frame[c].to_numpy() / factor for c in ("open", "high", "low", "close")),
                         frame["volume"].to_numpy() * factor)


def _as_utc(stamp: Any) -> datetime:
    """yfinance gives epoch seconds or (once formatted) a Timestamp."""
    value = pd.Timestamp(stamp, unit="s", tz="UTC") if isinstance(stamp, (int, float)) else pd.Timestamp(stamp)
    return (value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")).to_pydatetime()


def _iso(ns: int | None) -> str | None:
    return pd.Timestamp(int(ns), tz="UTC").isoformat() if ns else None


def _clean(symbol: Any) -> str:
    if not isinstance(symbol, str):
        raise InvalidInput(f"a symbol is a string such as 'AAPL', got {symbol!r}", field="symbol")
    sym = symbol.strip().upper()
    if not _SYMBOL.match(sym):
        raise InvalidInput(f"not a valid symbol: {symbol!r}", field="symbol")
    return sym


def _clean_many(symbols: Any) -> list[str]:
    if isinstance(symbols, (bytes, dict)) or not isinstance(symbols, Iterable):
        raise InvalidInput(f"symbols are a string or a list of strings, got {symbols!r}", field="symbol")
    return [_clean(s) for s in symbols]


def _bar_start(stamp: pd.Timestamp, iv: Interval) -> pd.Timestamp:
    """Start of the weekly (Monday), monthly or N-monthly (calendar) bar containing ``stamp``."""
    day = stamp.normalize()
    if iv.name.endswith("wk"):
        return day - pd.Timedelta(days=day.day_of_week)
    months = int(iv.name[:-2])
    return day.replace(month=(day.month - 1) // months * months + 1, day=1)


def _whole_bars(iv: Interval, t0: pd.Timestamp, t1: pd.Timestamp, now: pd.Timestamp) -> tuple[int, int]:
    """What to fetch and cache for ``[t0, t1)``: for weekly and longer bars, whole bars (a bar is fetched from
    its first session to its last, never in parts that would be cached as two half bars)."""
    if iv.intraday or iv.name == _DAILY.name:
        return t0.value, t1.value
    end = _bar_start(t1 - pd.Timedelta(1, "ns"), iv)
    end = end + (pd.Timedelta(days=7) if iv.name.endswith("wk") else pd.DateOffset(months=int(iv.name[:-2])))
    return _bar_start(t0, iv).value, min(end, now).value


def _settled_before(now: pd.Timestamp, iv: Interval) -> int:
    """Bars starting at or after this instant may still change (the bar containing ``now``)."""
    if iv.intraday:  # a bar is final once its whole length has passed, however the exchange aligns bars
        return now.value - iv.minutes * 60 * 1_000_000_000  # type: ignore[operator]
    return (now.normalize() if iv.name == _DAILY.name else _bar_start(now, iv)).value  # 3mo: this quarter


def _cached_from(entry: CacheEntry) -> int:
    """Where the dataset's fetched ranges begin."""
    starts = [a for a, _ in entry.covered] + ([entry.provisional[0]] if entry.provisional else [])
    return min(starts, default=2**63 - 1)


def _stale(entry: CacheEntry | None, t0: pd.Timestamp, t1: pd.Timestamp, attrs: dict[str, Any]) -> pd.DataFrame | None:
    """The cached bars of ``[t0, t1)`` labelled stale (the cache could not be brought up to date), or None."""
    if entry is None:
        return None
    served = _slice(entry.frame, t0, t1, attrs, cached=True, as_of=entry.fetched_at)
    if served.empty:
        return None
    served.attrs["stale"] = True
    return served


def _slice(frame: pd.DataFrame, t0: pd.Timestamp, t1: pd.Timestamp, attrs: dict[str, Any], cached: bool,
           as_of: int) -> pd.DataFrame:
    part = frame.iloc[frame.index.searchsorted(t0):frame.index.searchsorted(t1)].copy()
    part.attrs = {**attrs, "cached": cached, "stale": False, "cached_as_of": _iso(as_of)}
    return part
