"""The yfinance provider's bars: which ones are final, Yahoo's intraday limits, exchanges east of UTC.

Real yfinance code over loopback to the Yahoo stand-in (its ``now`` is the providers' clock).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

import workbench
from tests.yahoo.fixtures import make_provider, reset_yfinance_state, yahoo, yf_session  # noqa: F401
from tests.yahoo.standin import LoopbackCurlSession, YahooStandin
from workbench.marketdata.yahoo import YFinanceProvider


def _fresh(make_provider, provider: YFinanceProvider, name: str = "fresh") -> YFinanceProvider:  # noqa: F811
    return make_provider(cache_dir=Path(provider.cache.root).parent / name)


def test_long_1m_ranges_are_split_into_requests_yahoo_accepts(make_provider, yahoo: YahooStandin) -> None:  # noqa: F811
    df = make_provider().get_history("AAPL", days=20, interval="1m")  # Yahoo: at most 8 days of 1m per request
    assert len(df) == 5 * 390 and df.index.is_unique and str(df.index.tz) == "UTC"
    minutes = [c for c in yahoo.chart_requests("AAPL") if c.interval == "1m"]
    assert len(minutes) >= 3 and all(c.status == 200 and c.period2 - c.period1 <= 8 * 86400 for c in minutes)


def test_intraday_bars_yahoo_no_longer_serves_come_from_the_cache(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                                 caplog) -> None:
    provider = make_provider()
    week = {"start": "2026-11-16", "end": "2026-11-21", "interval": "1m"}
    first = provider.get_history("AAPL", **week)
    yahoo.now = datetime(2026, 12, 28, 15, 0, tzinfo=UTC)  # 38 days on: Yahoo keeps 30 days of 1m bars
    n = len(yahoo.requests)
    later = provider.get_history("AAPL", **week)
    pd.testing.assert_frame_equal(later, first, check_freq=False)
    assert later.attrs["stale"] is True and later.attrs["cached_as_of"] and yahoo.requests[n:] == []
    assert "last 30 days" in caplog.text
    with pytest.raises(workbench.InvalidInput, match="last 30 days") as info:  # older than anything cached
        provider.get_history("AAPL", start="2026-11-10", end="2026-11-21", interval="1m")
    assert info.value.field == "start" and yahoo.requests[n:] == []


@pytest.mark.parametrize("interval, bar", [("60m", "2026-11-19 14:30"), ("90m", "2026-11-19 14:30")])
def test_the_intraday_bar_in_progress_is_fetched_again(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                      interval: str, bar: str) -> None:
    """Hourly bars start at 09:30 New York (14:30 UTC), not on the hour: the one in progress is not final."""
    yahoo.now = datetime(2026, 11, 19, 15, 10, tzinfo=UTC)
    provider = make_provider(ttl_seconds=60)
    first = provider.get_history("AAPL", start="2026-11-19", interval=interval)
    yahoo.now = datetime(2026, 11, 19, 16, 5, tzinfo=UTC)
    later = provider.get_history("AAPL", start="2026-11-19", interval=interval)
    pd.testing.assert_frame_equal(later, _fresh(make_provider, provider).get_history(
        "AAPL", start="2026-11-19", interval=interval), check_freq=False)
    assert later.loc[bar, "volume"] > first.loc[bar, "volume"]


def test_the_quarter_in_progress_is_fetched_again(make_provider, yahoo: YahooStandin) -> None:  # noqa: F811
    yahoo.now = datetime(2026, 8, 14, 21, 0, tzinfo=UTC)  # the third quarter's bar is six weeks old
    provider = make_provider(ttl_seconds=60)
    first = provider.get_history("MSFT", start="2026-01-01", interval="3mo")
    yahoo.now = datetime(2026, 9, 30, 21, 0, tzinfo=UTC)
    later = provider.get_history("MSFT", start="2026-01-01", interval="3mo")
    pd.testing.assert_frame_equal(later, _fresh(make_provider, provider).get_history(
        "MSFT", start="2026-01-01", interval="3mo"), check_freq=False)
    assert later.loc["2026-07-01", "volume"].item() > first.loc["2026-07-01", "volume"].item()


@pytest.mark.parametrize("interval, later_start, earlier_start", [("1mo", "2026-03-15", "2026-01-01"),
                                                                   ("1wk", "2026-03-04", "2026-03-02")])
def test_weekly_and_monthly_bars_are_fetched_and_cached_whole(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                             interval: str, later_start: str, earlier_start: str
                                                             ) -> None:
    """A bar is labelled by its first session: a start inside it leaves it out, and it is never cached in halves."""
    provider = make_provider()
    window = {"end": "2026-07-01", "interval": interval}
    first = provider.get_history("MSFT", start=later_start, **window)
    assert first.index[0] > pd.Timestamp(later_start, tz="UTC")
    both = provider.get_history("MSFT", start=earlier_start, **window)
    pd.testing.assert_frame_equal(both, _fresh(make_provider, provider).get_history(
        "MSFT", start=earlier_start, **window), check_freq=False)
    periods = both.index.tz_localize(None).to_period("M" if interval == "1mo" else "W")
    assert periods.is_unique and len(both) == len(first) + (3 if interval == "1mo" else 1)


def test_empty_answers_have_the_schema_and_the_same_labels(make_provider, yahoo: YahooStandin) -> None:  # noqa: F811
    provider = make_provider()
    full = provider.get_history("AAPL", days=10)
    for kw in ({"start": "2026-11-14", "end": "2026-11-16"}, {"start": "2027-01-01", "end": "2027-02-01"},
               {"start": "2026-11-14", "end": "2026-11-16", "interval": "5m"}):  # a weekend, the future
        empty = provider.get_history("AAPL", **kw)
        assert empty.empty and list(empty.columns) == list(full.columns) and str(empty.index.tz) == "UTC"
        assert set(empty.attrs) == set(full.attrs) and empty.attrs["simulated"] is False, kw
    many = provider.get_history(["AAPL", "MSFT"], start="2027-01-01", end="2027-02-01")
    assert many.empty and list(many.index.names) == ["symbol", "ts"] and list(many.columns) == list(full.columns)


def test_an_ex_date_before_its_first_bar_adds_no_empty_bar(make_provider, yahoo: YahooStandin) -> None:  # noqa: F811
    yahoo.now = datetime(2026, 9, 18, 15, 0, tzinfo=UTC)  # SPY is ex-dividend today, and has no bar for today yet
    provider = make_provider()
    for adjusted in (True, False):
        df = provider.get_history("SPY", start="2026-09-01", adjusted=adjusted)
        assert not df.isna().any().any() and df.index[-1] == pd.Timestamp("2026-09-17", tz="UTC"), adjusted
    events = pd.read_parquet(provider.cache.events_path("SPY"))
    assert events.loc[events["ts"] == pd.Timestamp("2026-09-18", tz="UTC"), "dividend"].item() > 0


# -- an exchange east of UTC, whose session starts the previous UTC day ---------------------------------------

NZ = ZoneInfo("Pacific/Auckland")
NZ_DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]  # a 2:1 split on the 18th


def _nz_fixture(folder: Path) -> None:
    """A tiny synthetic NZX stock: 10:00-16:45 Auckland (21:00-03:45 UTC the day before), 2:1 split on day 3."""
    minute: dict[str, list] = {"t": [], "open": [], "high": [], "low": [], "close": [], "volume": []}
    daily: dict[str, list] = {"date": [], "open": [], "high": [], "low": [], "close": [], "volume": []}
    for k, day in enumerate(NZ_DAYS):
        price = 50.0 if day < NZ_DAYS[2] else 25.0  # as traded: halved by the split
        opened = int(datetime.combine(day, time(10, 0), tzinfo=NZ).timestamp())
        rows = [(opened + 60 * i, price + 0.01 * math.sin(i + k), 1000 + i) for i in range(405)]
        for t, p, v in rows:
            for key, value in zip(minute, (t, p, p + 0.02, p - 0.02, p, v), strict=True):
                minute[key].append(round(value, 2) if isinstance(value, float) else value)
        daily["date"].append(day.isoformat())
        for key, value in (("open", minute["open"][-405]), ("high", max(minute["high"][-405:])),
                           ("low", min(minute["low"][-405:])), ("close", minute["close"][-1]),
                           ("volume", sum(minute["volume"][-405:]))):
            daily[key].append(value)
    doc = {"symbol": "SYN.NZ", "synthetic": True,
           "meta": {"currency": "NZD", "instrumentType": "EQUITY", "exchangeName": "NZE", "fullExchangeName": "NZX",
                    "exchangeTimezoneName": "Pacific/Auckland", "priceHint": 2, "hasPrePostMarketData": False},
           "sessions": {"pre": ["09:00", "10:00"], "regular": ["10:00", "16:45"], "post": ["16:45", "17:00"]},
           "daily": daily, "dividends": [], "splits": [{"date": "2026-11-18", "numerator": 2, "denominator": 1}],
           "minute": minute}
    (folder / "SYN.NZ.json").write_text(json.dumps(doc))


@pytest.fixture
def nzx(tmp_path: Path) -> Iterator[tuple[YahooStandin, LoopbackCurlSession]]:
    folder = tmp_path / "fixtures"
    folder.mkdir()
    _nz_fixture(folder)
    with YahooStandin(folder, now=datetime(2026, 11, 18, 4, 0, tzinfo=UTC)) as standin:  # after the 3rd session
        session = LoopbackCurlSession(standin.target)
        reset_yfinance_state(session, tmp_path / "yf-state")
        yield standin, session
        session.close()


def test_as_traded_intraday_bars_east_of_utc_use_the_exchange_date(nzx, tmp_path: Path) -> None:
    standin, session = nzx
    provider = YFinanceProvider(session=session, cache_dir=tmp_path / "cache", clock=lambda: standin.now,
                                progress=False, requests_per_second=1000, backoff_seconds=0)
    bars = provider.get_history("SYN.NZ", start="2026-11-15", interval="5m", adjusted=False)
    assert len(bars) == 3 * 81
    local_day = bars.index.tz_convert(NZ).date
    for day in NZ_DAYS:  # the split day's session starts at 21:00 UTC the day before: it is post-split
        closes = bars.loc[local_day == day, "close"]
        assert closes.between(24, 26).all() if day == NZ_DAYS[2] else closes.between(49, 51).all(), day
    daily = provider.get_history("SYN.NZ", start="2026-11-15", adjusted=False)
    assert list(daily.index.date) == NZ_DAYS and daily["close"].round().tolist() == [50, 50, 25]


def test_a_new_split_rescales_cached_adjusted_intraday_bars(nzx, tmp_path: Path) -> None:
    """Intraday bars are split-adjusted only: a new split rescales what is cached (Yahoo may no longer serve it)."""
    standin, session = nzx

    def provider(cache: str) -> YFinanceProvider:
        return YFinanceProvider(session=session, cache_dir=tmp_path / cache, clock=lambda: standin.now,
                                progress=False, requests_per_second=1000, backoff_seconds=0, ttl_seconds=0)

    standin.now = datetime(2026, 11, 17, 4, 0, tzinfo=UTC)  # after the second session, before the split
    cached = provider("cache")
    before = cached.get_history("SYN.NZ", start="2026-11-15", interval="5m")
    assert before["close"].between(49, 51).all() and len(before) == 2 * 81
    standin.now = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # the split session is over
    n = len(standin.chart_requests("SYN.NZ"))
    after = cached.get_history("SYN.NZ", start="2026-11-15", interval="5m")
    assert all(c.period1 >= int(datetime(2026, 11, 16, 10, 0, tzinfo=UTC).timestamp())
               for c in standin.chart_requests("SYN.NZ")[n:])  # the old bars were not fetched again
    assert after["close"].between(24, 26).all() and len(after) == 3 * 81
    pd.testing.assert_frame_equal(after, provider("fresh").get_history("SYN.NZ", start="2026-11-15", interval="5m"),
                                  check_freq=False)
