"""Every call into yfinance, in one place: rate limit, HTTP 429 back-off, and errors mapped onto workbench's tree.

Nothing raised by yfinance, curl_cffi, requests or json reaches the caller raw:

==========================================================  ==============================================
what happened                                               raised
==========================================================  ==============================================
HTTP 429 (also after ``retries`` retries)                   retry with backoff, then ``RateLimited``
unknown symbol (no timezone, 404, "may be delisted")        ``SymbolNotFound``
Yahoo refused the parameters (interval, range limits)       ``InvalidInput`` naming ``interval``/``start``
network down, timeouts, HTTP errors, error pages,           ``BrokerUnavailable`` (retryable; the provider
answers yfinance cannot parse, any other yfinance failure   then serves its cache, labelled stale)
==========================================================  ==============================================

An answer with no bars for the range (a weekend, a holiday) is not an error: ``history`` returns None.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from workbench.core.errors import BrokerUnavailable, InvalidInput, RateLimited, SymbolNotFound, WorkbenchError
from workbench.core.log import get_logger

__all__ = ["YahooClient", "RateLimiter"]

log = get_logger(__name__)


class RateLimiter:
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


def _forget_yfinance_answers() -> None:
    """Drop yfinance's in-process memo of chart answers.

    yfinance keeps answers for ranges that ended more than 30 minutes ago in an LRU without expiry, error
    pages included: a refetch after a new dividend, or a retry after a failure, would get the old answer
    back. The Parquet cache is our cache, so every call goes to Yahoo.
    """
    from yfinance.data import YfData

    with contextlib.suppress(AttributeError):
        YfData.cache_get.cache_clear()


def _answered(ticker: Any) -> bool:
    """After a "prices missing" error without a reason: did Yahoo answer with the instrument (an empty range)?

    A real answer carries the instrument's metadata; an error page, a 401 "Invalid Crumb" body or a
    malformed answer leaves it empty.
    """
    try:
        return bool(ticker.get_history_metadata().get("exchangeTimezoneName"))
    except Exception:
        return False


class YahooClient:
    """yfinance calls with rate limiting, bounded 429 retries and typed errors."""

    def __init__(self, session: Any = None, *, requests_per_second: float = 2.0, retries: int = 3,
                 backoff_seconds: float = 1.0, timeout: float = 10.0) -> None:
        self.session = session
        self.retries = retries
        self.backoff = backoff_seconds
        self.timeout = timeout
        self._limiter = RateLimiter(requests_per_second)

    def history(self, sym: str, *, start: int, end: int, interval: str, adjusted: bool,
                intraday: bool) -> pd.DataFrame | None:
        """yfinance's frame for ``[start, end)`` (epoch ns) with dividends and splits; None when Yahoo has no bars.

        Intraday bounds are instants. Daily and longer ones are bar labels (the exchange-local date at
        00:00 UTC), so they go to yfinance as dates, which it asks Yahoo for from the exchange's midnight:
        the request then holds exactly the sessions of those dates, wherever the exchange is.
        """
        first, last = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
        if intraday:
            bounds = {"start": first.to_pydatetime(), "end": last.to_pydatetime()}
        else:
            end_day = last.normalize() if last == last.normalize() else last.normalize() + pd.Timedelta(days=1)
            bounds = {"start": first.normalize().date(), "end": end_day.date()}

        def fetch() -> pd.DataFrame | None:
            import yfinance as yf
            from yfinance.exceptions import YFPricesMissingError

            ticker = yf.Ticker(sym, session=self.session)
            try:
                return ticker.history(**bounds, interval=interval, auto_adjust=adjusted, actions=True,
                                      timeout=self.timeout)
            except YFPricesMissingError as exc:
                if not getattr(exc, "yahoo_reason", None) and _answered(ticker):
                    return None
                raise

        return self._call(sym, fetch)

    def quote(self, sym: str) -> tuple[float | None, Any]:
        """The last price and its time as Yahoo reports them (``regularMarketPrice``/``Time``)."""

        def fetch() -> tuple[float | None, Any]:
            import yfinance as yf
            from yfinance.exceptions import YFPricesMissingError

            ticker = yf.Ticker(sym, session=self.session)
            try:
                df = ticker.history(period="5d", interval="1d", auto_adjust=False, actions=False,
                                    timeout=self.timeout)
            except YFPricesMissingError as exc:
                if getattr(exc, "yahoo_reason", None) or not _answered(ticker):
                    raise
                df = None
            meta = ticker.get_history_metadata()
            last = meta.get("regularMarketPrice")
            if last is None and df is not None and not df.empty:
                last = float(df["Close"].iloc[-1])
            return (None if last is None else float(last)), meta.get("regularMarketTime")

        return self._call(sym, fetch)

    # -- the one place yfinance's exceptions are handled --------------------------------------

    def _back_off(self, sym: str, attempt: int, exc: Exception) -> int:
        """Sleep before retry ``attempt + 1`` (exponential, with jitter), or raise RateLimited when out of tries."""
        if attempt >= self.retries:
            raise RateLimited(f"Yahoo rate limit for {sym} after {attempt + 1} attempts", code=429, raw=str(exc),
                              retry_after=self.backoff * 2 ** attempt) from exc
        delay = self.backoff * 2 ** attempt * (1 + random.random() / 4)
        log.info("Yahoo rate limit for %s, retry %d in %.2f s", sym, attempt + 1, delay)
        time.sleep(delay)
        return attempt + 1

    def _call(self, sym: str, fn: Callable[[], Any]) -> Any:
        from yfinance.exceptions import (
            YFInvalidPeriodError,
            YFPricesMissingError,
            YFRateLimitError,
            YFTzMissingError,
        )

        attempt = 0
        while True:
            self._limiter.wait()
            _forget_yfinance_answers()
            try:
                with _yfinance_raises():
                    return fn()
            except YFRateLimitError as exc:
                attempt = self._back_off(sym, attempt, exc)
            except YFTzMissingError as exc:
                raise SymbolNotFound(f"unknown symbol {sym!r} (Yahoo has no such ticker)", code="yfinance.no_tz",
                                     raw=str(exc)) from exc
            except YFPricesMissingError as exc:
                raise _missing_prices_error(sym, exc) from exc
            except YFInvalidPeriodError as exc:
                raise InvalidInput(str(exc), field="days", raw=str(exc)) from exc
            except WorkbenchError:
                raise
            except Exception as exc:  # noqa: BLE001  (yfinance, curl_cffi, requests, json: nothing escapes raw)
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
                raise BrokerUnavailable(f"Yahoo sent an answer for {sym} that yfinance could not read "
                                        f"({type(exc).__name__}: {exc})", code="yfinance.bad_answer",
                                        raw=str(exc)) from exc


def _missing_prices_error(sym: str, exc: Exception) -> WorkbenchError:
    reason = str(getattr(exc, "yahoo_reason", None) or "")
    low = reason.lower()
    if not reason:  # an error page or a malformed answer (an empty range was handled by the caller)
        return BrokerUnavailable(f"Yahoo sent no usable data for {sym}", code="yfinance.bad_answer", raw=str(exc))
    if "delisted" in low or "not found" in low:
        return SymbolNotFound(f"unknown symbol {sym!r}: {reason}", code="yfinance.not_found", raw=reason)
    if "interval=" in low and "not supported" in low:
        return InvalidInput(f"Yahoo refused the interval for {sym}: {reason}", field="interval", raw=reason)
    if low.startswith("invalid input") or "not available for starttime" in low or "must be within" in low:
        return InvalidInput(f"Yahoo refused the request for {sym}: {reason}", field="start", raw=reason)
    return BrokerUnavailable(f"Yahoo could not answer for {sym}: {reason}", code="yfinance.error", raw=reason)


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
