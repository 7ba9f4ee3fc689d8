"""pytest fixtures for running yfinance's real code against the loopback Yahoo stand-in.

Import them into a test module (there is deliberately no conftest.py for this)::

    from tests.yahoo.fixtures import yahoo, yf_session  # noqa: F401

    def test_something(yahoo, yf_session):
        df = yf.Ticker("AAPL", session=yf_session).history(start="2024-04-01", end="2024-04-10")
        assert yahoo.chart_requests("AAPL")[-1].period1 == 1711944000

* ``make_provider``: builds :class:`~workbench.marketdata.yahoo.YFinanceProvider` objects over ``yahoo``, their
  clock the stand-in's ``now``, their cache in the test's temp dir (keyword arguments override the defaults).
* ``yahoo``: a started :class:`~tests.yahoo.standin.YahooStandin` (function scope; stopped afterwards).
* ``yf_session``: a :class:`~tests.yahoo.standin.LoopbackCurlSession` aimed at ``yahoo``, installed in yfinance's
  process-wide ``YfData`` singleton, with yfinance's global state reset first (fresh on-disk caches in the test's
  temp dir, ``YfData.cache_get`` LRU cleared, the tz->info fallback counter zeroed, cookie/crumb state and
  ``yf.config`` network/debug options back to defaults). At teardown it asserts that the singleton still holds a
  ``LoopbackCurlSession`` (so nothing in the test could have swapped in a real session that talks to Yahoo, e.g.
  ``yf.download(session=None)``) and restores ``yf.config``.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yfinance as yf
import yfinance.base as yf_base
import yfinance.cache as yf_cache
from yfinance.data import YfData

from tests.yahoo.standin import LoopbackCurlSession, YahooStandin

__all__ = ["yahoo", "yf_session", "make_provider", "reset_yfinance_state"]

# Point yfinance's sqlite caches (tz, cookie, ISIN) away from ~/.cache before anything uses them; each test then
# gets its own directory from ``yf_session``.
_PROCESS_CACHE_DIR = tempfile.mkdtemp(prefix="workbench-yf-cache-")
yf.set_tz_cache_location(_PROCESS_CACHE_DIR)
atexit.register(shutil.rmtree, _PROCESS_CACHE_DIR, True)


def _use_fresh_caches(cache_dir: Path) -> None:
    """Move yfinance's persistent caches to ``cache_dir`` and forget the already-opened ones."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    yf.set_tz_cache_location(str(cache_dir))  # closes the open databases, sets the new folder
    # The cache objects keep a handle on their old database; drop them so the next lookup opens the new folder.
    for manager, attr in ((yf_cache._TzCacheManager, "_tz_cache"), (yf_cache._CookieCacheManager, "_Cookie_cache"),
                          (yf_cache._ISINCacheManager, "_isin_cache")):
        if hasattr(manager, attr):
            setattr(manager, attr, None)


def _close_caches() -> None:
    for manager in (yf_cache._TzDBManager, yf_cache._CookieDBManager, yf_cache._ISINDBManager):
        manager.close_db()


def reset_yfinance_state(session: LoopbackCurlSession, cache_dir: Path) -> None:
    """Reset yfinance's process-global state and install ``session`` in the ``YfData`` singleton."""
    yf.config.network.proxy = None
    yf.config.network.retries = 0
    _use_fresh_caches(cache_dir)
    YfData.cache_get.cache_clear()  # in-process lru_cache (tz lookups, past-range charts)
    yf_base._tz_info_fetch_ctr = 0  # the tz -> .info fallback runs only twice per process
    data = YfData(session=session)  # creates the singleton or swaps its session
    with data._cookie_lock:  # back to a cold cookie/crumb state, 'basic' strategy first
        data._cookie = None
        data._crumb = None
        data._cookie_strategy = "basic"
        data._logged_in = False


@pytest.fixture
def yahoo() -> Iterator[YahooStandin]:
    """A started Yahoo stand-in on 127.0.0.1; stopped after the test."""
    with YahooStandin() as standin:
        yield standin


@pytest.fixture
def yf_session(yahoo: YahooStandin, tmp_path: Path) -> Iterator[LoopbackCurlSession]:
    """A LoopbackCurlSession to ``yahoo``, installed as yfinance's session, with yfinance's global state reset."""
    saved = {"hide_exceptions": yf.config.debug.hide_exceptions, "logging": yf.config.debug.logging}
    session = LoopbackCurlSession(yahoo.target)
    reset_yfinance_state(session, tmp_path / "yfinance-cache")
    try:
        yield session
        current = YfData()._session
        assert isinstance(current, LoopbackCurlSession), (
            f"yfinance's YfData singleton now holds {type(current).__name__}, not a LoopbackCurlSession: something "
            "in this test (e.g. yf.download(session=None)) replaced it, and could have reached the real Yahoo")
    finally:
        if not isinstance(YfData()._session, LoopbackCurlSession):
            YfData(session=session)  # contain the damage: later tests must not inherit a real session
        yf.config.debug.hide_exceptions = saved["hide_exceptions"]
        yf.config.debug.logging = saved["logging"]
        yf.config.network.proxy = None
        yf.config.network.retries = 0
        YfData.cache_get.cache_clear()
        _close_caches()
        session.close()


@pytest.fixture
def make_provider(yahoo: YahooStandin, yf_session: LoopbackCurlSession, tmp_path: Path) -> Callable[..., object]:
    """A factory of yfinance providers over the stand-in (no back-off sleeps, no progress bar, no rate limit)."""
    from workbench.marketdata.yahoo import YFinanceProvider

    def build(**kw: object) -> YFinanceProvider:
        kw.setdefault("cache_dir", tmp_path / "cache")
        kw.setdefault("backoff_seconds", 0)
        kw.setdefault("progress", False)
        kw.setdefault("requests_per_second", 1000)
        return YFinanceProvider(session=yf_session, clock=lambda: yahoo.now, **kw)  # type: ignore[arg-type]

    return build
