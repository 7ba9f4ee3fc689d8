"""The yfinance provider: yfinance's real code over loopback to the Yahoo stand-in, no internet."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.core.frames import HISTORY_COLUMNS
from workbench.marketdata.yahoo import YFinanceProvider
from workbench.marketdata.yahoo_client import RateLimiter as _RateLimiter
from tests.yahoo.fixtures import make_provider, yahoo, yf_session  # noqa: F401
from tests.yahoo.standin import YahooStandin

DAY = pd.Timedelta(days=1)


@pytest.fixture
def make(make_provider):  # noqa: F811
    """Providers over the stand-in; their clock is the stand-in's ``now``."""
    return make_provider


def _expected(yahoo: YahooStandin, symbol: str) -> pd.DataFrame:
    rows = pd.DataFrame(yahoo.expected_daily(symbol))
    rows.index = pd.DatetimeIndex(pd.to_datetime(rows.pop("date")), name="ts").tz_localize("UTC")
    return rows


def _charts(yahoo: YahooStandin, symbol: str, since: int = 0) -> list:
    """Chart calls other than yfinance's own 1-day timezone lookups."""
    return [c for c in yahoo.chart_requests(symbol)[since:] if c.range != "1d"]


def test_daily_bars_have_the_schema_and_yahoos_values(make, yahoo: YahooStandin) -> None:
    df = make().get_history("AAPL", start="2026-10-01", end="2026-11-01", adjusted=False)
    assert list(df.columns) == list(HISTORY_COLUMNS) and all(df[c].dtype == "float64" for c in df)
    assert str(df.index.tz) == "UTC" and df.index.name == "ts" and (df.index == df.index.normalize()).all()
    expected = _expected(yahoo, "AAPL").loc["2026-10-01":"2026-10-31"]
    assert list(df.index) == list(expected.index)
    assert df["close"].tolist() == pytest.approx(expected["close"].tolist())
    assert df["volume"].tolist() == pytest.approx(expected["volume"].tolist())
    assert df.attrs | {"cached_as_of": None} == {
        "source": "yfinance", "simulated": False, "symbol": "AAPL", "interval": "1d", "adjusted": False,
        "cached": False, "stale": False, "cached_as_of": None}


def test_adjusted_and_as_traded_across_a_split(make, yahoo: YahooStandin) -> None:
    provider = make()
    raw = provider.get_history("AAPL", start="2020-08-24", end="2020-09-05", adjusted=False)
    adj = provider.get_history("AAPL", start="2020-08-24", end="2020-09-05", adjusted=True)
    traded = yahoo.fixture("AAPL")["daily"]
    as_traded = dict(zip(traded["date"], traded["close"], strict=True))
    assert raw.loc["2020-08-28", "close"].item() == pytest.approx(as_traded["2020-08-28"])  # pre-split price
    assert raw.loc["2020-08-31", "close"].item() == pytest.approx(as_traded["2020-08-31"])
    jump = raw.loc["2020-08-28", "close"].item() / raw.loc["2020-08-31", "close"].item()
    assert 3 < jump < 5  # as traded, the 4:1 split shows
    smooth = adj.loc["2020-08-28", "close"].item() / adj.loc["2020-08-31", "close"].item()
    assert 0.75 < smooth < 1.33  # adjusted, it does not
    assert raw.loc["2020-08-28", "volume"].item() < adj.loc["2020-08-28", "volume"].item()  # volume scaled too


def test_adjusted_prices_include_dividends(make) -> None:
    provider = make()
    adj = provider.get_history("AAPL", start="2026-11-10", end="2026-11-18", adjusted=True)
    raw = provider.get_history("AAPL", start="2026-11-10", end="2026-11-18", adjusted=False)
    before, after = "2026-11-12", "2026-11-13"  # ex-dividend 2026-11-13
    assert adj.loc[before, "close"].item() < raw.loc[before, "close"].item()
    assert adj.loc[after, "close"].item() == pytest.approx(raw.loc[after, "close"].item())


def test_intraday_bars_in_utc(make) -> None:
    provider = make()
    minutes = provider.get_history("AAPL", start="2026-11-19", end="2026-11-20", interval="1m")
    assert len(minutes) == 390 and minutes.index[0] == pd.Timestamp("2026-11-19 14:30", tz="UTC")
    fives = provider.get_history("AAPL", start="2026-11-19", end="2026-11-20", interval="5m")
    assert len(fives) == 78 and fives["volume"].sum() == pytest.approx(minutes["volume"].sum())
    assert fives["high"].max() == pytest.approx(minutes["high"].max())


def test_exchange_timezone_becomes_utc_dates(make, yahoo: YahooStandin) -> None:
    df = make().get_history("VOD.L", start="2026-03-20", end="2026-04-10")  # across the UK clock change
    expected = _expected(yahoo, "VOD.L").loc["2026-03-20":"2026-04-09"]
    assert list(df.index) == list(expected.index) and str(df.index.tz) == "UTC"


def test_unknown_symbol_is_an_error_not_an_empty_frame(make) -> None:
    provider = make()
    with pytest.raises(workbench.SymbolNotFound):
        provider.get_history("NOPEX", days=10)
    with pytest.raises(workbench.SymbolNotFound):
        provider.get_history(["AAPL", "NOPEX"], days=10)
    both = provider.get_history(["AAPL", "NOPEX"], days=10, errors="skip")
    assert set(both.attrs["failed"]) == {"NOPEX"} and list(both.index.get_level_values(0).unique()) == ["AAPL"]


def test_rate_limit_then_success(make, yahoo: YahooStandin) -> None:
    provider = make()
    provider.get_history("MSFT", days=5)  # warm yfinance's timezone cache
    yahoo.rate_limit(1, symbol="MSFT")
    seen = len(yahoo.chart_requests("MSFT"))
    df = provider.get_history("MSFT", start="2026-01-05", end="2026-02-01")
    statuses = [c.status for c in yahoo.chart_requests("MSFT")[seen:]]
    assert statuses[0] == 429 and statuses[-1] == 200 and len(df) > 10


def test_rate_limited_forever_gives_up_after_bounded_retries(make, yahoo: YahooStandin) -> None:
    provider = make(retries=2)
    provider.get_history("MSFT", days=5)
    yahoo.rate_limit(None, symbol="MSFT")
    seen = len(yahoo.chart_requests("MSFT"))
    with pytest.raises(workbench.RateLimited) as info:
        provider.get_history("MSFT", start="2025-01-01", end="2025-03-01")
    assert info.value.retryable and info.value.code == 429
    attempts = yahoo.chart_requests("MSFT")[seen:]
    assert 3 <= len(attempts) <= 6 and all(c.status == 429 for c in attempts)  # 3 tries (yfinance may retry once)


def test_network_down_without_cache_is_broker_unavailable(make, yahoo: YahooStandin) -> None:
    yahoo.down()
    with pytest.raises(workbench.BrokerUnavailable):
        make().get_history("AAPL", days=10)


def test_network_down_with_cache_serves_it_labelled(make, yahoo: YahooStandin, caplog) -> None:
    provider = make(ttl_seconds=0)
    fresh = provider.get_history("SPY", start="2026-06-01", end="2026-11-20")
    yahoo.down()
    with caplog.at_level(logging.WARNING, logger="workbench"):
        stale = provider.get_history("SPY", start="2026-06-01", end="2026-11-21")  # wants one more day
    pd.testing.assert_frame_equal(stale.loc[:"2026-11-19"], fresh.loc[:"2026-11-19"], check_freq=False)
    assert stale.attrs["stale"] is True and stale.attrs["cached"] is True and stale.attrs["cached_as_of"]
    assert "serving SPY" in caplog.text and "cache" in caplog.text


def test_incremental_refresh_fetches_only_the_missing_range(make, yahoo: YahooStandin) -> None:
    provider = make()
    first = provider.get_history("AAPL", start="2026-01-01", end="2026-06-01")
    n = len(yahoo.chart_requests("AAPL"))
    wider = provider.get_history("AAPL", start="2026-01-01", end="2026-09-01")
    new = _charts(yahoo, "AAPL", n)
    # from the exchange's midnight of those dates, as yfinance asks for dates
    assert len(new) == 1 and new[0].period1 == int(pd.Timestamp("2026-06-01", tz="America/New_York").timestamp())
    assert new[0].period2 == int(pd.Timestamp("2026-09-01", tz="America/New_York").timestamp())
    pd.testing.assert_frame_equal(wider.loc[:"2026-05-31"], first, check_freq=False, check_like=True)
    n = len(yahoo.chart_requests("AAPL"))
    again = provider.get_history("AAPL", start="2026-02-01", end="2026-08-01")
    assert _charts(yahoo, "AAPL", n) == [] and again.attrs["cached"] is True


def test_the_last_bar_is_refreshed_after_the_ttl(make, yahoo: YahooStandin) -> None:
    yahoo.now = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # the session is open: today's bar is partial
    provider = make(ttl_seconds=900)
    first = provider.get_history("AAPL", days=10)
    n = len(yahoo.chart_requests("AAPL"))
    yahoo.now += timedelta(minutes=5)
    assert provider.get_history("AAPL", days=10).attrs["cached"] is True and _charts(yahoo, "AAPL", n) == []
    yahoo.now += timedelta(minutes=20)
    later = provider.get_history("AAPL", days=10)
    new = _charts(yahoo, "AAPL", n)
    assert len(new) == 1 and new[0].period1 >= int(pd.Timestamp("2026-11-20", tz="UTC").timestamp())
    assert later.index[-1] == first.index[-1] == pd.Timestamp("2026-11-20", tz="UTC")
    assert later["volume"].iloc[-1] > first["volume"].iloc[-1]  # the partial bar grew


def test_a_new_dividend_refetches_the_adjusted_series(make, yahoo: YahooStandin) -> None:
    yahoo.now = datetime(2026, 11, 12, 21, 30, tzinfo=UTC)  # before the 2026-11-13 ex-date
    provider = make(ttl_seconds=0)
    before = provider.get_history("AAPL", start="2026-10-01")
    yahoo.now = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    n = len(yahoo.chart_requests("AAPL"))
    after = provider.get_history("AAPL", start="2026-10-01")
    whole = [c for c in _charts(yahoo, "AAPL", n)
             if c.period1 == int(pd.Timestamp("2026-10-01", tz="America/New_York").timestamp())]
    assert whole, "the adjusted series was not refetched from the start"
    assert after.loc["2026-10-01", "close"].item() < before.loc["2026-10-01", "close"].item()
    reference = make(cache_dir=Path(provider.cache.root).parent / "fresh").get_history("AAPL", start="2026-10-01")
    pd.testing.assert_frame_equal(after, reference, check_freq=False, check_like=True)


def test_many_symbols_long_frame_and_progress(make, capsys) -> None:
    provider = make(progress=True)
    df = provider.get_history(["SPY", "AAPL", "MSFT"], start="2026-11-02", end="2026-11-07")
    assert list(df.index.names) == ["symbol", "ts"] and sorted(df.index.get_level_values(0).unique()) == [
        "AAPL", "MSFT", "SPY"]
    assert len(df.loc["AAPL"]) == 5 and str(df.loc["MSFT"].index.tz) == "UTC"
    assert set(df["close"].unstack("symbol").columns) == {"AAPL", "MSFT", "SPY"}
    assert "yfinance history" in capsys.readouterr().err
    cached = provider.get_history(["SPY", "AAPL", "MSFT"], start="2026-11-02", end="2026-11-07")
    assert cached.attrs["cached"] is True
    pd.testing.assert_frame_equal(cached, df, check_like=True)


def test_rate_limiter_spaces_calls() -> None:
    limiter = _RateLimiter(50.0)
    start = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - start >= 5 / 50 - 0.005


def test_quote_and_quotes_frame(make, yahoo: YahooStandin) -> None:
    provider = make()
    quote = provider.get_quote("AAPL")
    assert float(quote.last) == pytest.approx(_expected(yahoo, "AAPL")["close"].iloc[-1]) and not quote.simulated
    frame = provider.get_quotes(["AAPL", "MSFT"])
    assert list(frame.index) == ["AAPL", "MSFT"] and frame["last"].dtype == "float64"
    assert frame.attrs["source"] == "yfinance" and frame.attrs["simulated"] is False
    with pytest.raises(workbench.SymbolNotFound):
        provider.get_quote("NOPEX")


def test_cache_helpers(make) -> None:
    provider = make()
    provider.get_history("AAPL", days=30)
    provider.get_history("MSFT", days=30, adjusted=False)
    listing = provider.cached()
    assert sorted(zip(listing["symbol"], listing["adjusted"])) == [("AAPL", True), ("MSFT", False)]
    all_cached = pd.read_parquet(provider.cache.root)  # the whole store in one read
    assert set(all_cached["symbol"].astype(str)) == {"AAPL", "MSFT"}
    assert provider.clear_cache("aapl") == 1 and list(provider.cached()["symbol"]) == ["MSFT"]


def test_paper_broker_prices_fills_from_yfinance(yahoo: YahooStandin, yf_session, settings_dict: dict,  # noqa: F811
                                                 tmp_path: Path) -> None:
    settings_dict["market_data"] = {"provider": "yfinance",
                                    "yfinance": {"cache_dir": str(tmp_path / "yc"), "backoff_seconds": 0,
                                                 "progress": False, "quote_ttl_seconds": 0}}
    last_close = _expected(yahoo, "AAPL")["close"].iloc[-1]
    with workbench.connect(settings=settings_dict) as broker:
        order = broker.place_market_order("AAPL", 2, "buy")
        assert order.status is workbench.OrderStatus.FILLED
        assert float(order.avg_fill_price) == pytest.approx(last_close)
        history = broker.get_history("AAPL", days=20)
        assert history.attrs["source"] == "yfinance" and history.attrs["simulated"] is False
        assert history["close"].iloc[-1] == pytest.approx(last_close)
        with pytest.raises(workbench.SymbolNotFound):  # never replaced by simulated data
            broker.place_market_order("NOPEX", 1, "buy")


def _ts(day: str) -> int:
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def test_as_traded_refreshes_keep_the_split_history_and_check_it_once_a_day(make, yahoo: YahooStandin) -> None:
    """adjusted=False needs the split history: it is kept in the cache and re-checked at most once a day."""
    yahoo.now = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)  # Tuesday, the session is open
    provider = make(ttl_seconds=60)
    provider.get_history("AAPL", start="2026-10-01", adjusted=False)
    for _ in range(3):  # incremental refreshes of the partial last bar, later the same day
        yahoo.now += timedelta(minutes=5)
        provider.get_history("AAPL", start="2026-10-01", adjusted=False)
    provider.get_history("AAPL", start="2026-11-16", interval="5m", adjusted=False)  # another dataset, same symbol
    same_day = _charts(yahoo, "AAPL")
    assert all(c.period1 >= _ts("2026-10-01") for c in same_day), "the whole daily history was downloaded"
    assert [c.interval for c in same_day].count("1d") == 4  # the first fetch, then one tail per refresh
    assert all(c.period1 >= _ts("2026-11-17") for c in same_day[1:] if c.interval == "1d")

    yahoo.now = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # the next day: one small check, no full download
    provider = make(ttl_seconds=60)  # a new kernel: the split history comes from the cache on disk
    n = len(yahoo.chart_requests("AAPL"))
    minutes = provider.get_history("AAPL", start="2026-11-16", interval="5m", adjusted=False)
    daily_checks = [c for c in _charts(yahoo, "AAPL", n) if c.interval == "1d"]
    assert len(daily_checks) <= 1 and all(c.period1 >= _ts("2026-11-17") for c in daily_checks)
    n = len(yahoo.chart_requests("AAPL"))
    daily = provider.get_history("AAPL", start="2026-10-01", adjusted=False)
    assert all(c.period1 >= _ts("2026-11-17") for c in _charts(yahoo, "AAPL", n))

    fresh = make(cache_dir=Path(provider.cache.root).parent / "fresh")
    pd.testing.assert_frame_equal(daily, fresh.get_history("AAPL", start="2026-10-01", adjusted=False),
                                  check_freq=False, check_like=True)
    pd.testing.assert_frame_equal(minutes, fresh.get_history("AAPL", start="2026-11-16", interval="5m",
                                                             adjusted=False), check_freq=False, check_like=True)
    events = pd.read_parquet(Path(provider.cache.root) / "_events")  # Parquet, next to the bars
    assert pd.Timestamp("2026-11-13", tz="UTC") in set(events.loc[events["dividend"] > 0, "ts"])


def test_as_traded_history_stays_right_when_a_split_happens_after_caching(make, yahoo: YahooStandin) -> None:
    yahoo.now = datetime(2020, 8, 21, 21, 30, tzinfo=UTC)  # before AAPL's 4:1 split of 2020-08-31
    provider = make(ttl_seconds=0)
    provider.get_history("AAPL", start="2020-08-01", adjusted=False)
    yahoo.now = datetime(2020, 9, 10, 21, 30, tzinfo=UTC)
    after = provider.get_history("AAPL", start="2020-08-01", adjusted=False)
    older = provider.get_history("AAPL", start="2020-06-01", end="2020-08-01", adjusted=False)  # fetched now
    traded = yahoo.fixture("AAPL")["daily"]
    as_traded = pd.Series(traded["close"], index=pd.DatetimeIndex(traded["date"]).tz_localize("UTC"))
    for frame in (after, older):
        assert frame["close"].tolist() == pytest.approx(as_traded.reindex(frame.index).tolist())
    assert 3 < after.loc["2020-08-28", "close"].item() / after.loc["2020-08-31", "close"].item() < 5
    events = pd.read_parquet(provider.cache.events_path("AAPL")).set_index("ts")
    assert events.loc["2020-08-31", "split"].item() == 4.0
    paid = {pd.Timestamp(d["date"], tz="UTC"): d["amount"] for d in yahoo.fixture("AAPL")["dividends"]}
    dividends = events.loc[events["dividend"] > 0, "dividend"]
    assert len(dividends) and dividends.to_dict() == pytest.approx({ts: paid[ts] for ts in dividends.index})


def test_many_symbols_apply_the_daily_dividend_check_too(make, yahoo: YahooStandin) -> None:
    """The multi-symbol fast path follows the single-symbol rule: a ten-day-old adjusted cache is re-checked."""
    yahoo.now = datetime(2026, 11, 10, 21, 30, tzinfo=UTC)  # before AAPL's 2026-11-13 ex-dividend date
    provider = make(ttl_seconds=0)
    symbols, window = ["AAPL", "MSFT"], {"start": "2026-10-01", "end": "2026-11-06"}  # final bars only
    before = provider.get_history(symbols, **window)
    yahoo.now = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    after = provider.get_history(symbols, **window)
    reference = make(cache_dir=Path(provider.cache.root).parent / "fresh").get_history(symbols, **window)
    pd.testing.assert_frame_equal(after, reference, check_like=True)
    assert after.loc[("AAPL", "2026-10-01"), "close"] < before.loc[("AAPL", "2026-10-01"), "close"]
    pd.testing.assert_frame_equal(after.loc["AAPL"], provider.get_history("AAPL", **window), check_freq=False)
    n = len(yahoo.chart_requests())
    again = provider.get_history(symbols, **window)  # checked today: answered from the cache alone
    assert _charts(yahoo, None, n) == [] and again.attrs["cached"] is True


def test_the_daily_check_is_one_small_request_and_the_answer_is_still_from_the_cache(make, yahoo: YahooStandin
                                                                                    ) -> None:
    yahoo.now = datetime(2026, 11, 16, 21, 30, tzinfo=UTC)
    provider = make()
    daily = provider.get_history("MSFT", start="2026-10-01", end="2026-11-01")
    minutes = provider.get_history("AAPL", start="2026-11-16", end="2026-11-17", interval="5m")
    yahoo.now = datetime(2026, 11, 17, 21, 30, tzinfo=UTC)  # the next day: dividends and splits are looked at again
    for symbol, frame, kw in (("MSFT", daily, {}), ("AAPL", minutes, {"interval": "5m"})):
        n = len(yahoo.chart_requests(symbol))
        again = provider.get_history(symbol, start=frame.index[0], end=frame.index[-1] + pd.Timedelta(minutes=5), **kw)
        checks = _charts(yahoo, symbol, n)
        assert [c.interval for c in checks] == ["1d"] and checks[0].period1 >= _ts("2026-11-16"), symbol
        pd.testing.assert_frame_equal(again, frame, check_freq=False)
        assert again.attrs["cached"] is True, symbol
    assert again.attrs["cached_as_of"] == minutes.attrs["cached_as_of"]  # nothing new: the dataset is as it was
    n = len(yahoo.chart_requests())
    window = {"start": minutes.index[0], "end": minutes.index[-1] + pd.Timedelta(minutes=5), "interval": "5m"}
    assert provider.get_history(["AAPL"], **window).attrs["cached"] and _charts(yahoo, None, n) == []  # checked today


def test_a_list_through_the_broker_keeps_the_cache_labels(yahoo: YahooStandin, yf_session, settings_dict: dict,  # noqa: F811
                                                          tmp_path: Path) -> None:
    """Yahoo down for one symbol: the Broker's list frame says which symbol was served stale from the cache,
    as a single symbol's frame (and the provider's own list frame) does."""
    settings_dict["market_data"] = {"provider": "yfinance",
                                    "yfinance": {"cache_dir": str(tmp_path / "yc"), "backoff_seconds": 0,
                                                 "progress": False, "ttl_seconds": 0}}
    with workbench.connect(settings=settings_dict) as broker:
        fresh = broker.get_history(["SPY", "MSFT"], days=30)
        assert fresh.attrs["stale"] is False and fresh.attrs["stale_symbols"] == []
        yahoo.answer_with("<html><body>Will be right back</body></html>", status=503, symbol="SPY")
        many = broker.get_history(["SPY", "MSFT"], days=30)
        one = broker.get_history("SPY", days=30)
    assert one.attrs["stale"] is True and many.attrs["stale"] is True and many.attrs["stale_symbols"] == ["SPY"]
    assert many.attrs["cached_as_of"]["SPY"] == one.attrs["cached_as_of"] and set(many.attrs["cached_as_of"]) == {
        "SPY", "MSFT"}
    assert many.attrs["broker"] == "paper" and many.attrs["source"] == "yfinance"
