"""An offline stand-in for the Yahoo Finance HTTP endpoints that yfinance 1.7.0 calls, served on 127.0.0.1.

yfinance's real code (cookie/crumb dance, chart parsing, adjustment, timezone handling) runs unchanged; the only
trick is :class:`LoopbackCurlSession`, a ``curl_cffi`` Session subclass that rewrites every URL to
``http://127.0.0.1:PORT/<path>?<query>`` and passes the original host in the ``X-Original-Host`` header. Nothing
here ever opens a connection to anything but the loopback interface.

Data comes from the synthetic fixtures in ``tests/fixtures/yahoo/<SYMBOL>.json`` (see ``make_fixtures.py``); the
stand-in answers as Yahoo would at its settable ``now``: it never serves a bar that has not finished by ``now``
(except today's partial daily bar, which it builds from the minute bars when it has them), and it applies only
the splits and dividends that have happened by ``now`` (``close`` split-adjusted, ``adjclose`` split- and
dividend-adjusted, dividend amounts split-adjusted, volumes split-adjusted).

Typical use (see ``tests/yahoo/fixtures.py`` for the pytest fixtures)::

    with YahooStandin() as yahoo:
        s = LoopbackCurlSession(yahoo.target)
        df = yf.Ticker("AAPL", session=s).history(start="2024-04-01", end="2024-04-10")
        yahoo.chart_requests("AAPL")[-1].period1   # -> 1711944000
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from curl_cffi import requests as creq
from dateutil.relativedelta import relativedelta

__all__ = ["ChartRequest", "LoopbackCurlSession", "Request", "YahooStandin", "DEFAULT_NOW", "FIXTURES_DIR"]

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "yahoo"
DEFAULT_NOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)  # Friday 16:00 New York, the fixtures' last close
DEFAULT_CRUMB = "FakeCrumb123"
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
# minutes per bar for the intraday intervals (built from the 1m fixture bars, aligned to the session open)
INTRADAY_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60, "4h": 240}
MULTIDAY_INTERVALS = ("1d", "5d", "1wk", "1mo", "3mo")
VALID_INTERVALS = [*INTRADAY_MINUTES, *MULTIDAY_INTERVALS]
_TRUE = {"1", "true", "yes", "on"}


# ============================================================================================ loopback session
class LoopbackCurlSession(creq.Session):
    """curl_cffi Session that sends every request to the stand-in instead of the URL's host.

    The reference recipe, plus ``trust_env=False`` by default so that an ``http_proxy`` in the environment cannot
    divert loopback traffic to a proxy.
    """

    def __init__(self, target: str, **kw: Any) -> None:  # target = "127.0.0.1:PORT"
        kw.setdefault("impersonate", "chrome")
        kw.setdefault("trust_env", False)
        super().__init__(**kw)
        self._target = target

    @property
    def target(self) -> str:
        return self._target

    def request(self, method, url, *args, **kw):  # type: ignore[override]
        u = urlsplit(url)
        headers = dict(kw.pop("headers", None) or {})
        headers["X-Original-Host"] = u.hostname or ""  # the stand-in routes on this
        return super().request(method, urlunsplit(("http", self._target, u.path, u.query, "")),
                               *args, headers=headers, **kw)


# ============================================================================================ bookkeeping types
class Request(NamedTuple):
    """One request the stand-in received: original host, path, and query parameters (first value of each)."""

    host: str
    path: str
    params: dict[str, str]


class ChartRequest(NamedTuple):
    """A ``/v8/finance/chart/{symbol}`` request, with the parameters that decide what was fetched."""

    symbol: str
    period1: int | None
    period2: int | None
    interval: str | None
    range: str | None
    params: dict[str, str]
    status: int | None  # HTTP status the stand-in answered with (None while still being answered)


@dataclass
class _Fault:
    status: int
    body: bytes
    content_type: str
    remaining: int | None  # None = forever
    symbol: str | None  # None = every symbol


class _Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str


def _json_reply(status: int, obj: Any) -> _Reply:
    body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    return _Reply(status, body, "application/json;charset=utf-8")


def _chart_error(status: int, code: str, description: str) -> _Reply:
    return _json_reply(status, {"chart": {"result": None, "error": {"code": code, "description": description}}})


def _parse_bool(value: str | None, default: bool = False) -> bool:
    return default if value is None else value.strip().lower() in _TRUE


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


# ============================================================================================ fixture model
class _Bar(NamedTuple):
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    adjclose: float | None
    day: int  # index of the (last) session the bar belongs to


class _Adjust(NamedTuple):
    split_factor: list[float]  # raw price / split_factor = price in today's (as of now) shares
    div_factor: list[float]  # adjclose = close * div_factor
    dividends: dict[int, float]  # session index -> split-adjusted amount
    splits: dict[int, tuple[float, float]]  # session index -> (numerator, denominator)
    capital_gains: dict[int, float]


class _Symbol:
    """One fixture file, with session timestamps precomputed. Immutable after construction."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.symbol: str = doc["symbol"].upper()
        self.meta: dict[str, Any] = dict(doc["meta"])
        self.tz_name: str = self.meta["exchangeTimezoneName"]
        self.tz = ZoneInfo(self.tz_name)
        sessions = {k: (_hhmm(a), _hhmm(b)) for k, (a, b) in doc["sessions"].items()}
        early = {date.fromisoformat(d): _hhmm(t) for d, t in doc.get("early_closes", {}).items()}
        daily = doc["daily"]
        self.dates = [date.fromisoformat(d) for d in daily["date"]]
        self.index = {d: i for i, d in enumerate(self.dates)}
        self.raw_open, self.raw_high, self.raw_low = daily["open"], daily["high"], daily["low"]
        self.raw_close, self.raw_volume = daily["close"], daily["volume"]

        def at(d: date, t: time) -> int:
            return int(datetime.combine(d, t, tzinfo=self.tz).timestamp())

        self.day_start = [at(d, time(0)) for d in self.dates]
        self.day_end = [at(d + timedelta(days=1), time(0)) for d in self.dates]
        self.open_ts = [at(d, sessions["regular"][0]) for d in self.dates]
        self.close_ts = [at(d, early.get(d, sessions["regular"][1])) for d in self.dates]
        self.pre = [(at(d, sessions["pre"][0]), at(d, sessions["pre"][1])) for d in self.dates]
        self.post = [(c, max(c, at(d, sessions["post"][1]))) for d, c in zip(self.dates, self.close_ts)]

        minute = doc.get("minute") or {}
        self.min_ts: list[int] = minute.get("t", [])
        self.min_cols = [minute.get(k, []) for k in ("open", "high", "low", "close", "volume")]
        self.min_day: list[int] = []  # session index of each minute bar
        self.min_range: dict[int, tuple[int, int]] = {}  # session index -> [lo, hi) into the minute arrays
        for j, ts in enumerate(self.min_ts):
            i = bisect.bisect_right(self.day_start, ts) - 1
            self.min_day.append(i)
            lo, _ = self.min_range.get(i, (j, j))
            self.min_range[i] = (lo, j + 1)

        def events(key: str) -> list[tuple[int, dict[str, Any]]]:
            out = []
            for ev in doc.get(key, []):
                d = date.fromisoformat(ev["date"])
                if d not in self.index:
                    raise ValueError(f"{self.symbol}: {key} event on {d}, which is not a session in the fixture")
                out.append((self.index[d], ev))
            return sorted(out, key=lambda x: x[0])

        self.dividends = events("dividends")
        self.splits = events("splits")
        self.capital_gains = events("capital_gains")
        self._adjust_cache: dict[tuple[int, int, int], _Adjust] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ time helpers
    def offset_and_abbrev(self, ts: int) -> tuple[int, str]:
        local = datetime.fromtimestamp(ts, tz=self.tz)
        return int(local.utcoffset().total_seconds()), local.tzname() or ""

    def period_entry(self, start: int, end: int) -> dict[str, Any]:
        gmtoffset, abbrev = self.offset_and_abbrev(start)
        return {"timezone": abbrev, "start": start, "end": end, "gmtoffset": gmtoffset}

    def sessions_started(self, now: int) -> int:
        """Number of sessions whose regular open is at or before now."""
        return bisect.bisect_right(self.open_ts, now)

    def local_midnight(self, d: date) -> int:
        return int(datetime.combine(d, time(0), tzinfo=self.tz).timestamp())

    # ------------------------------------------------------------------------------------------ adjustments
    def adjust(self, now: int) -> _Adjust:
        """Split and dividend adjustment as Yahoo would show it at ``now`` (events count once their session opens)."""
        n_started = self.sessions_started(now)
        splits = [(i, ev) for i, ev in self.splits if i < n_started]
        divs = [(i, ev) for i, ev in self.dividends if i < n_started]
        gains = [(i, ev) for i, ev in self.capital_gains if i < n_started]
        key = (len(splits), len(divs), len(gains))
        with self._lock:
            cached = self._adjust_cache.get(key)
        if cached is not None:
            return cached
        n = len(self.dates)
        split_at = {i: (float(ev["numerator"]), float(ev["denominator"])) for i, ev in splits}
        split_factor = [1.0] * n
        f = 1.0
        for i in range(n - 1, -1, -1):
            split_factor[i] = f
            if i in split_at:  # a split on session i applies to every bar before it
                num, den = split_at[i]
                f *= num / den
        dividends = {i: float(ev["amount"]) / split_factor[i] for i, ev in divs}
        capital_gains = {i: float(ev["amount"]) / split_factor[i] for i, ev in gains}
        div_factor = [1.0] * n
        f = 1.0
        for i in range(n - 1, -1, -1):
            div_factor[i] = f
            if i in dividends and i > 0:  # CRSP/Yahoo: multiply earlier bars by 1 - D / previous close
                prev_close = self.raw_close[i - 1] / split_factor[i - 1]
                f *= 1.0 - dividends[i] / prev_close
        result = _Adjust(split_factor, div_factor, dividends, split_at, capital_gains)
        with self._lock:
            self._adjust_cache[key] = result
        return result

    # ------------------------------------------------------------------------------------------ bars
    def _minute_bars(self, i: int, now: int, adj: _Adjust, lo_ts: int | None = None, hi_ts: int | None = None):
        """Split-adjusted 1m bars of session i that are complete at now (and start in [lo_ts, hi_ts))."""
        if i not in self.min_range:
            return []
        lo, hi = self.min_range[i]
        f = adj.split_factor[i]
        o, h, lw, c, v = self.min_cols
        out = []
        for j in range(lo, hi):
            ts = self.min_ts[j]
            if ts + 60 > now or (lo_ts is not None and ts < lo_ts) or (hi_ts is not None and ts >= hi_ts):
                continue
            out.append(_Bar(ts, o[j] / f, h[j] / f, lw[j] / f, c[j] / f, round(v[j] * f), None, i))
        return out

    def daily_bar(self, i: int, now: int, adj: _Adjust) -> _Bar | None:
        """Session i's daily bar as known at now: full once closed, partial (from 1m bars) while open."""
        if self.close_ts[i] <= now:
            f = adj.split_factor[i]
            close = self.raw_close[i] / f
            return _Bar(self.open_ts[i], self.raw_open[i] / f, self.raw_high[i] / f, self.raw_low[i] / f, close,
                        round(self.raw_volume[i] * f), close * adj.div_factor[i], i)
        if self.open_ts[i] > now:
            return None
        minutes = self._minute_bars(i, now, adj)
        if not minutes:
            return None
        return _Bar(self.open_ts[i], minutes[0].open, max(b.high for b in minutes), min(b.low for b in minutes),
                    minutes[-1].close, sum(b.volume for b in minutes), minutes[-1].close * adj.div_factor[i], i)

    def sessions_overlapping(self, p1: int, p2: int) -> range:
        """Indices of the sessions whose local calendar day overlaps [p1, p2)."""
        return range(bisect.bisect_right(self.day_end, p1), bisect.bisect_left(self.day_start, p2))

    def daily_bars(self, p1: int, p2: int, now: int, adj: _Adjust) -> list[_Bar]:
        out = []
        for i in self.sessions_overlapping(p1, p2):
            bar = self.daily_bar(i, now, adj)
            if bar is not None:
                out.append(bar)
        return out

    def intraday_bars(self, minutes: int, p1: int, p2: int, now: int, adj: _Adjust) -> list[_Bar]:
        out: list[_Bar] = []
        for i in self.sessions_overlapping(p1, p2):
            ones = self._minute_bars(i, now, adj, p1, p2)
            if minutes == 1:
                out.extend(ones)
                continue
            buckets: dict[int, list[_Bar]] = {}
            for b in ones:
                start = self.open_ts[i] + (b.ts - self.open_ts[i]) // (60 * minutes) * 60 * minutes
                buckets.setdefault(start, []).append(b)
            for start, bs in buckets.items():
                out.append(_Bar(start, bs[0].open, max(b.high for b in bs), min(b.low for b in bs), bs[-1].close,
                                sum(b.volume for b in bs), None, i))
        return out

    @staticmethod
    def group(bars: list[_Bar], interval: str, dates: list[date]) -> list[_Bar]:
        """Aggregate daily bars into 5d/1wk/1mo/3mo bars, stamped at the first session's open in each group."""
        if interval == "1d":
            return bars
        groups: list[list[_Bar]] = []
        last_key: object = None
        for k, bar in enumerate(bars):
            d = dates[bar.day]
            key = {"5d": k // 5, "1wk": d.isocalendar()[:2], "1mo": (d.year, d.month),
                   "3mo": (d.year, (d.month - 1) // 3)}[interval]
            if key != last_key:
                groups.append([])
                last_key = key
            groups[-1].append(bar)
        return [_Bar(g[0].ts, g[0].open, max(b.high for b in g), min(b.low for b in g), g[-1].close,
                     sum(b.volume for b in g), g[-1].adjclose, g[-1].day) for g in groups]

    # ------------------------------------------------------------------------------------------ state at now
    def last_known(self, now: int, adj: _Adjust) -> tuple[_Bar, int] | None:
        """The latest daily bar known at now and the time of its last trade."""
        n = self.sessions_started(now)
        for i in range(n - 1, max(n - 3, 0) - 1, -1):
            bar = self.daily_bar(i, now, adj)
            if bar is not None:
                if self.close_ts[i] <= now:
                    return bar, self.close_ts[i]
                last_minute = self._minute_bars(i, now, adj)[-1]
                return bar, last_minute.ts + 60
        return None

    def current_session(self, now: int) -> int:
        """Index of today's session (exchange-local), else the latest one before now, else the first."""
        local_day = datetime.fromtimestamp(now, tz=self.tz).date()
        return max(bisect.bisect_right(self.dates, local_day) - 1, 0)


@functools.lru_cache(maxsize=None)
def _load_symbol(path: str, mtime_ns: int) -> _Symbol:
    with open(path, encoding="utf-8") as fh:
        return _Symbol(json.load(fh))


def load_fixtures(fixtures_dir: Path | str = FIXTURES_DIR) -> dict[str, _Symbol]:
    out = {}
    for path in sorted(Path(fixtures_dir).glob("*.json")):
        sym = _load_symbol(str(path), path.stat().st_mtime_ns)
        out[sym.symbol] = sym
    return out


# ============================================================================================ the server
class YahooStandin:
    """A Yahoo Finance look-alike on 127.0.0.1:<ephemeral port>, in a daemon thread.

    Routing is on the ``X-Original-Host`` header (set by :class:`LoopbackCurlSession`) plus the path:

    * ``fc.yahoo.com``, ``guce.yahoo.com``, ``consent.yahoo.com``: 404 (the cookie/consent dance fails softly);
    * ``/v1/test/getcrumb``: 200 ``text/plain`` crumb (``self.crumb``);
    * ``/v8/finance/chart/{SYMBOL}``: chart JSON from the fixtures (``period1``/``period2`` or ``range``,
      ``interval``, ``events``, ``includePrePost``); unknown symbol: 404 with Yahoo's error body;
    * ``/v10/finance/quoteSummary/{SYMBOL}``, ``/v7/finance/quote``, ``/ws/fundamentals-timeseries/...``: minimal
      JSON (the ``.info`` fallback yfinance uses when a timezone lookup fails);
    * anything else: 404 JSON.

    Faults (:meth:`rate_limit`, :meth:`fail_with`, :meth:`answer_with`) apply to chart requests only;
    :meth:`down`/:meth:`up` close and reopen the listening socket on the same port.
    """

    def __init__(self, fixtures_dir: Path | str = FIXTURES_DIR, *, now: datetime | None = None,
                 crumb: str = DEFAULT_CRUMB, enforce_intraday_limits: bool = True) -> None:
        self._fixtures_dir = Path(fixtures_dir)
        self._symbols = load_fixtures(fixtures_dir)
        self._now = 0
        self.now = now or DEFAULT_NOW
        self.crumb = crumb
        #: Answer intraday period1/period2 requests outside Yahoo's limits (1m: 8 days per request, within the
        #: last 30 days; 2m-90m: last 60 days; 1h/60m/4h: last 730 days) with Yahoo's 422 error.
        self.enforce_intraday_limits = enforce_intraday_limits
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._statuses: dict[int, int] = {}
        self._fault: _Fault | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> YahooStandin:
        if self._port is not None:
            raise RuntimeError("YahooStandin already started")
        self._serve(0)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        self._shutdown()
        self._port = None

    def down(self) -> None:
        """Close the listening socket: clients now get "connection refused" on the same port."""
        if self._port is None:
            raise RuntimeError("YahooStandin not started")
        self._shutdown()

    def up(self) -> None:
        """Reopen the listening socket on the same port after :meth:`down`."""
        if self._port is None:
            raise RuntimeError("YahooStandin not started")
        if self._server is None:
            self._serve(self._port)

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def __enter__(self) -> YahooStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("YahooStandin not started")
        return self._port

    @property
    def target(self) -> str:
        """``"127.0.0.1:PORT"``, what :class:`LoopbackCurlSession` needs."""
        return f"127.0.0.1:{self.port}"

    def _serve(self, port: int) -> None:
        handler = type("_BoundHandler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"yahoo-standin-{self._port}", daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def _shutdown(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # ------------------------------------------------------------------------------------------ clock and data
    @property
    def now(self) -> datetime:
        """The stand-in's "now" (UTC). Naive datetimes are taken as UTC. Default 2026-11-20 21:00 UTC."""
        return datetime.fromtimestamp(self._now, tz=UTC)

    @now.setter
    def now(self, value: datetime) -> None:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        self._now = int(value.timestamp())

    @property
    def symbols(self) -> list[str]:
        return sorted(self._symbols)

    def fixture(self, symbol: str) -> dict[str, Any]:
        """The raw fixture document of a symbol (as traded, unadjusted), e.g. for expected values in tests."""
        path = self._fixtures_dir / f"{self._symbols[symbol.upper()].symbol}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def expected_daily(self, symbol: str) -> list[dict[str, Any]]:
        """Every daily bar Yahoo would show at ``now``, as dicts (date, open, high, low, close, adjclose, volume,
        dividend, split): the values a ``history(interval="1d", auto_adjust=False)`` over that date should give."""
        sym = self._symbols[symbol.upper()]
        adj = sym.adjust(self._now)
        rows = []
        for bar in sym.daily_bars(0, self._now + 1, self._now, adj):
            split = adj.splits.get(bar.day)
            rows.append({"date": sym.dates[bar.day], "open": bar.open, "high": bar.high, "low": bar.low,
                         "close": bar.close, "adjclose": bar.adjclose, "volume": bar.volume,
                         "dividend": adj.dividends.get(bar.day, 0.0),
                         "split": split[0] / split[1] if split else 0.0})
        return rows

    # ------------------------------------------------------------------------------------------ faults
    def rate_limit(self, n: int | None = None, *, symbol: str | None = None) -> None:
        """The next ``n`` chart requests (for ``symbol``, or any) get HTTP 429 "Too Many Requests"; None = forever."""
        self._set_fault(429, b"Too Many Requests", "text/plain;charset=utf-8", n, symbol)

    def fail_with(self, status: int = 500, n: int | None = None, *, symbol: str | None = None) -> None:
        """The next ``n`` chart requests (for ``symbol``, or any) get HTTP ``status``; None = forever."""
        reply = _chart_error(status, "Internal Server Error" if status >= 500 else "Error",
                             f"Injected HTTP {status} from the Yahoo stand-in")
        self._set_fault(status, reply.body, reply.content_type, n, symbol)

    def answer_with(self, body: bytes | str, status: int = 200, content_type: str = "text/html;charset=utf-8",
                    n: int | None = None, *, symbol: str | None = None) -> None:
        """The next ``n`` chart requests (for ``symbol``, or any) get this raw answer: an error page, a consent
        page, a truncated or foreign JSON body (what Yahoo sends when things go wrong); None = forever."""
        self._set_fault(status, body.encode() if isinstance(body, str) else body, content_type, n, symbol)

    def clear_faults(self) -> None:
        with self._lock:
            self._fault = None

    def _set_fault(self, status: int, body: bytes, content_type: str, n: int | None, symbol: str | None) -> None:
        if n is not None and n < 0:
            raise ValueError("n must be >= 0 or None")
        with self._lock:
            self._fault = None if n == 0 else _Fault(status, body, content_type, n,
                                                     symbol.upper() if symbol else None)

    def _take_fault(self, symbol: str) -> _Reply | None:
        with self._lock:
            fault = self._fault
            if fault is None or (fault.symbol is not None and fault.symbol != symbol):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return _Reply(fault.status, fault.body, fault.content_type)

    # ------------------------------------------------------------------------------------------ request log
    @property
    def requests(self) -> list[Request]:
        """Every request received so far, oldest first: (host, path, params)."""
        with self._lock:
            return list(self._requests)

    def chart_requests(self, symbol: str | None = None) -> list[ChartRequest]:
        """The chart requests received so far (optionally for one symbol), oldest first."""
        out = []
        with self._lock:
            items = [(r, self._statuses.get(k)) for k, r in enumerate(self._requests)]
        for req, status in items:
            if not req.path.startswith("/v8/finance/chart/"):
                continue
            sym = unquote(req.path[len("/v8/finance/chart/"):]).upper()
            if symbol is not None and sym != symbol.upper():
                continue
            p = req.params

            def num(key: str) -> int | None:
                try:
                    return int(float(p[key])) if key in p else None
                except ValueError:
                    return None

            out.append(ChartRequest(sym, num("period1"), num("period2"), p.get("interval"), p.get("range"),
                                    dict(p), status))
        return out

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._statuses.clear()

    def _log(self, req: Request) -> int:
        with self._lock:
            self._requests.append(req)
            return len(self._requests) - 1

    def _log_status(self, k: int, status: int) -> None:
        with self._lock:
            self._statuses[k] = status

    # ------------------------------------------------------------------------------------------ routing
    def handle(self, host: str, path: str, params: dict[str, str]) -> _Reply:
        host = host.lower()
        if host == "fc.yahoo.com":
            return _Reply(404, b"<html><body>Not Found</body></html>", "text/html;charset=utf-8")
        if host.endswith("guce.yahoo.com") or host.endswith("consent.yahoo.com"):
            return _Reply(404, b"<html><body>Not Found</body></html>", "text/html;charset=utf-8")
        if path == "/v1/test/getcrumb":
            return _Reply(200, self.crumb.encode(), "text/plain;charset=utf-8")
        if path.startswith("/v8/finance/chart/"):
            symbol = unquote(path[len("/v8/finance/chart/"):]).strip("/").upper()
            return self._take_fault(symbol) or self._chart(symbol, params)
        if path.startswith("/v10/finance/quoteSummary/"):
            return self._quote_summary(unquote(path.rsplit("/", 1)[-1]).upper())
        if path.rstrip("/") == "/v7/finance/quote":
            return self._quote(params.get("symbols", ""))
        if path.startswith("/ws/fundamentals-timeseries/"):
            return _json_reply(200, {"timeseries": {"result": [], "error": None}})
        return _json_reply(404, {"finance": {"result": None, "error": {"code": "Not Found",
                                                                        "description": "HTTP 404 Not Found"}}})

    def _quote_summary(self, symbol: str) -> _Reply:
        sym = self._symbols.get(symbol)
        if sym is None:
            return _json_reply(404, {"quoteSummary": {"result": None, "error": {
                "code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}}})
        m = sym.meta
        return _json_reply(200, {"quoteSummary": {"result": [{
            "quoteType": {"symbol": sym.symbol, "quoteType": m["instrumentType"], "exchange": m["exchangeName"],
                          "shortName": m.get("shortName"), "longName": m.get("longName"),
                          "timeZoneFullName": sym.tz_name, "timeZoneShortName": sym.offset_and_abbrev(self._now)[1]},
            "summaryDetail": {"currency": m["currency"]},
        }], "error": None}})

    def _quote(self, symbols: str) -> _Reply:
        result = []
        for s in filter(None, (x.strip().upper() for x in symbols.split(","))):
            sym = self._symbols.get(s)
            if sym is None:
                continue
            m = sym.meta
            item = {"symbol": sym.symbol, "quoteType": m["instrumentType"], "currency": m["currency"],
                    "exchange": m["exchangeName"], "fullExchangeName": m["fullExchangeName"],
                    "exchangeTimezoneName": sym.tz_name, "shortName": m.get("shortName"),
                    "longName": m.get("longName")}
            known = sym.last_known(self._now, sym.adjust(self._now))
            if known is not None:
                item["regularMarketPrice"], item["regularMarketTime"] = known[0].close, known[1]
            result.append(item)
        return _json_reply(200, {"quoteResponse": {"result": result, "error": None}})

    # ------------------------------------------------------------------------------------------ chart
    def _chart(self, symbol: str, params: dict[str, str]) -> _Reply:
        now = self._now
        sym = self._symbols.get(symbol)
        if sym is None:
            return _chart_error(404, "Not Found", "No data found, symbol may be delisted")
        interval = params.get("interval", "1d")
        if interval not in VALID_INTERVALS:
            return _chart_error(400, "Bad Request", f"Invalid input - interval={interval} is not supported. "
                                                    f"Valid intervals: [{', '.join(VALID_INTERVALS)}]")
        range_ = None
        try:
            if "period1" in params or "period2" in params:
                p1 = int(float(params.get("period1", "0")))
                p2 = int(float(params["period2"])) if "period2" in params else now + 1
            else:
                range_ = params.get("range", "1d")
                bounds = self._range_bounds(sym, range_, now)
                if bounds is None:
                    return _chart_error(400, "Bad Request", f"Invalid input - range={range_} is not supported. "
                                                            f"Valid ranges: [{', '.join(VALID_RANGES)}]")
                p1, p2 = bounds
        except ValueError as exc:
            return _chart_error(400, "Bad Request", f"Invalid input - {exc}")
        intraday = interval in INTRADAY_MINUTES
        if intraday and range_ is None and self.enforce_intraday_limits:
            problem = self._intraday_limit_problem(interval, p1, p2, now)
            if problem:
                return _chart_error(422, "Unprocessable Entity",
                                    f"{interval} data not available for startTime={p1} and endTime={p2}. {problem}")
        events = {e.strip() for e in re.split(r"[,|]", params.get("events", "")) if e.strip()}
        prepost = _parse_bool(params.get("includePrePost"))

        adj = sym.adjust(now)
        if intraday:
            bars = sym.intraday_bars(INTRADAY_MINUTES[interval], p1, p2, now, adj)
            served_days = {b.day for b in bars}
        else:
            daily = sym.daily_bars(p1, p2, now, adj)
            # An event is listed from its session's open, before that session has a bar (an ex-date morning
            # without minute data here); yfinance then adds a row of NaN prices for it.
            opened = {i for i in sym.sessions_overlapping(p1, p2) if sym.open_ts[i] <= now}
            served_days = {b.day for b in daily} | opened
            bars = sym.group(daily, interval, sym.dates)
        meta = self._meta(sym, now, adj, interval, range_ or "")
        if bars:
            first_day = bars[0].day
            prev = sym.daily_bar(first_day - 1, now, adj) if first_day > 0 else None
            if prev is not None:
                meta["chartPreviousClose"] = prev.close
        days = [i for i in sym.sessions_overlapping(p1, p2) if sym.open_ts[i] <= now]
        if intraday and days:
            regular = [[sym.period_entry(sym.open_ts[i], sym.close_ts[i])] for i in days]
            if prepost:
                meta["tradingPeriods"] = {"pre": [[sym.period_entry(*sym.pre[i])] for i in days],
                                          "regular": regular,
                                          "post": [[sym.period_entry(*sym.post[i])] for i in days]}
            else:
                meta["tradingPeriods"] = regular

        result: dict[str, Any] = {"meta": meta}
        if not bars:
            result["indicators"] = {"quote": [{}]}
            return _json_reply(200, {"chart": {"result": [result], "error": None}})
        result["timestamp"] = [b.ts for b in bars]
        ev: dict[str, dict[str, Any]] = {}
        if events & {"div", "dividends"}:
            divs = {str(sym.open_ts[i]): {"amount": a, "date": sym.open_ts[i]}
                    for i, a in adj.dividends.items() if i in served_days}
            if divs:
                ev["dividends"] = divs
        if events & {"split", "splits"}:
            splits = {str(sym.open_ts[i]): {"date": sym.open_ts[i], "numerator": n, "denominator": d,
                                            "splitRatio": f"{n:g}:{d:g}"}
                      for i, (n, d) in adj.splits.items() if i in served_days}
            if splits:
                ev["splits"] = splits
        if events & {"capitalGain", "capitalGains"}:
            gains = {str(sym.open_ts[i]): {"amount": a, "date": sym.open_ts[i]}
                     for i, a in adj.capital_gains.items() if i in served_days}
            if gains:
                ev["capitalGains"] = gains
        if ev:
            result["events"] = ev
        quote = {"open": [b.open for b in bars], "high": [b.high for b in bars], "low": [b.low for b in bars],
                 "close": [b.close for b in bars], "volume": [b.volume for b in bars]}
        result["indicators"] = {"quote": [quote]}
        if not intraday:
            result["indicators"]["adjclose"] = [{"adjclose": [b.adjclose for b in bars]}]
        return _json_reply(200, {"chart": {"result": [result], "error": None}})

    @staticmethod
    def _range_bounds(sym: _Symbol, range_: str, now: int) -> tuple[int, int] | None:
        if range_ == "max":
            return 0, now + 1
        local_now = datetime.fromtimestamp(now, tz=sym.tz)
        if range_ == "ytd":
            return sym.local_midnight(date(local_now.year, 1, 1)), now + 1
        m = re.fullmatch(r"(\d+)(d|wk|mo|y)", range_)
        if not m:
            return None
        n, unit = int(m.group(1)), m.group(2)
        if unit == "d":  # N trading sessions, counting the current one
            started = sym.sessions_started(now)
            first = max(started - n, 0)
            return (sym.day_start[first] if started else now + 1), now + 1
        delta = {"wk": relativedelta(weeks=n), "mo": relativedelta(months=n), "y": relativedelta(years=n)}[unit]
        return int((local_now - delta).timestamp()), now + 1

    @staticmethod
    def _intraday_limit_problem(interval: str, p1: int, p2: int, now: int) -> str | None:
        day = 86400
        if interval == "1m":
            if p2 - p1 > 8 * day:
                return "Only 8 days worth of 1m granularity data are allowed to be fetched per request."
            if p1 < now - 30 * day:
                return "The requested range must be within the last 30 days."
        elif interval in ("60m", "1h", "4h"):
            if p1 < now - 730 * day:
                return "The requested range must be within the last 730 days."
        elif p1 < now - 60 * day:
            return "The requested range must be within the last 60 days."
        return None

    def _meta(self, sym: _Symbol, now: int, adj: _Adjust, interval: str, range_: str) -> dict[str, Any]:
        gmtoffset, abbrev = sym.offset_and_abbrev(now)
        m = sym.meta
        meta: dict[str, Any] = {
            "currency": m["currency"], "symbol": sym.symbol, "exchangeName": m.get("exchangeName"),
            "fullExchangeName": m.get("fullExchangeName"), "instrumentType": m["instrumentType"],
            "firstTradeDate": sym.open_ts[0], "hasPrePostMarketData": bool(m.get("hasPrePostMarketData", False)),
            "gmtoffset": gmtoffset, "timezone": abbrev, "exchangeTimezoneName": sym.tz_name,
        }
        known = sym.last_known(now, adj)
        if known is not None:
            bar, when = known
            meta.update({"regularMarketPrice": bar.close, "regularMarketTime": when,
                         "regularMarketDayHigh": bar.high, "regularMarketDayLow": bar.low,
                         "regularMarketVolume": bar.volume})
            year = sym.daily_bars(now - 365 * 86400, now + 1, now, adj)
            meta["fiftyTwoWeekHigh"] = max(b.high for b in year)
            meta["fiftyTwoWeekLow"] = min(b.low for b in year)
        for key in ("longName", "shortName"):
            if m.get(key):
                meta[key] = m[key]
        meta["priceHint"] = m.get("priceHint", 2)
        i = sym.current_session(now)
        meta["currentTradingPeriod"] = {"pre": sym.period_entry(*sym.pre[i]),
                                        "regular": sym.period_entry(sym.open_ts[i], sym.close_ts[i]),
                                        "post": sym.period_entry(*sym.post[i])}
        meta["dataGranularity"] = interval
        meta["range"] = range_
        meta["validRanges"] = list(VALID_RANGES)
        return meta


class _Handler(BaseHTTPRequestHandler):
    standin: YahooStandin  # set on the per-server subclass
    protocol_version = "HTTP/1.0"  # one request per connection: down() takes effect at once
    server_version = "YahooStandin/1.0"

    def _serve(self, with_body: bool = True) -> None:
        split = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        host = (self.headers.get("X-Original-Host") or "").strip()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        k = self.standin._log(Request(host, split.path, params))
        try:
            reply = self.standin.handle(host, split.path, params)
        except Exception as exc:  # a bug in the stand-in: make it loud but keep the server alive
            reply = _json_reply(500, {"chart": {"result": None, "error": {
                "code": "Internal Server Error", "description": f"stand-in bug: {type(exc).__name__}: {exc}"}}})
        self.standin._log_status(k, reply.status)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(reply.body)

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(with_body=False)

    def log_message(self, format: str, *args: Iterable[object]) -> None:  # noqa: A002
        pass
