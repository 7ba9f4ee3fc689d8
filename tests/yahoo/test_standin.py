"""The Yahoo stand-in drives yfinance 1.7.0's real code end to end over loopback (no internet, no mocks)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yfinance as yf
import yfinance.base as yf_base
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import HTTPError as CurlHTTPError
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

from tests.yahoo.fixtures import yahoo, yf_session  # noqa: F401
from tests.yahoo.standin import DEFAULT_NOW, FIXTURES_DIR, LoopbackCurlSession, YahooStandin

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # yfinance's inplace=True under pandas 3.1

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
EMPTY_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


@contextmanager
def exceptions_raised() -> Iterator[None]:
    """yf.config.debug.hide_exceptions = False for the block, restored afterwards."""
    saved = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = False
    try:
        yield
    finally:
        yf.config.debug.hide_exceptions = saved


class Raw:
    """The fixture file, read independently of the stand-in, with Yahoo's adjustments recomputed from scratch."""

    def __init__(self, symbol: str) -> None:
        self.doc = json.loads((FIXTURES_DIR / f"{symbol}.json").read_text(encoding="utf-8"))
        daily = self.doc["daily"]
        self.dates = [date.fromisoformat(d) for d in daily["date"]]
        self.row = {d: i for i, d in enumerate(self.dates)}
        self.daily = daily
        self.splits = [(date.fromisoformat(s["date"]), s["numerator"] / s["denominator"]) for s in self.doc["splits"]]
        self.divs = [(date.fromisoformat(d["date"]), d["amount"]) for d in self.doc["dividends"]]

    def split_after(self, d: date) -> float:
        return math.prod(r for s, r in self.splits if s > d)

    def close(self, d: date) -> float:  # Yahoo's "close": split-adjusted, not dividend-adjusted
        return self.daily["close"][self.row[d]] / self.split_after(d)

    def value(self, key: str, d: date) -> float:
        return self.daily[key][self.row[d]] / self.split_after(d)

    def volume(self, d: date) -> int:
        return round(self.daily["volume"][self.row[d]] * self.split_after(d))

    def dividend(self, d: date) -> float:  # Yahoo shows dividends split-adjusted
        return dict(self.divs)[d] / self.split_after(d)

    def adjclose(self, d: date) -> float:
        factor = 1.0
        for ex, _amount in self.divs:
            if ex > d:
                factor *= 1 - self.dividend(ex) / self.close(self.dates[self.row[ex] - 1])
        return self.close(d) * factor


def dates_of(df: pd.DataFrame) -> list[date]:
    return [ts.date() for ts in df.index]


# ============================================================================================ daily history
def test_daily_history_unadjusted_matches_fixture_with_split_and_dividend(yahoo, yf_session):
    raw = Raw("AAPL")
    df = yf.Ticker("AAPL", session=yf_session).history(start="2020-08-01", end="2020-09-10", interval="1d",
                                                        auto_adjust=False)

    assert list(df.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits"]
    expected_days = [d for d in raw.dates if date(2020, 8, 1) <= d < date(2020, 9, 10)]
    assert dates_of(df) == expected_days  # end is exclusive
    assert df.index.name == "Date"
    assert str(df.index.tz) == "America/New_York"
    assert all(ts.hour == 0 and ts.minute == 0 for ts in df.index)  # daily rows normalised to local midnight

    for d in expected_days:
        row = df.loc[pd.Timestamp(d, tz=NY)]
        assert row["Close"] == pytest.approx(raw.close(d), rel=1e-12)
        assert row["Open"] == pytest.approx(raw.value("open", d), rel=1e-12)
        assert row["Adj Close"] == pytest.approx(raw.adjclose(d), rel=1e-9)
        assert row["Volume"] == raw.volume(d)
    # the 4:1 split: pre-split closes are shown divided by 4 (so the fixture's as-traded prices differ by ~4x)
    assert raw.daily["close"][raw.row[date(2020, 8, 28)]] / df.loc[pd.Timestamp("2020-08-28", tz=NY), "Close"] == pytest.approx(4)
    assert df["Stock Splits"][df["Stock Splits"] != 0].to_dict() == {pd.Timestamp("2020-08-31", tz=NY): 4.0}
    dividends = df["Dividends"][df["Dividends"] != 0]
    assert dates_of(dividends) == [date(2020, 8, 14)]
    assert dividends.iloc[0] == pytest.approx(dict(raw.divs)[date(2020, 8, 14)] / 4)
    assert (df["Adj Close"] < df["Close"]).all()  # later dividends adjust every earlier close

    # the request log shows what yfinance asked for: midnight New York (EDT) epoch seconds, end exclusive
    chart = yahoo.chart_requests("AAPL")[-1]
    assert (chart.period1, chart.period2, chart.interval) == (1596254400, 1599710400, "1d")
    assert chart.period1 == int(datetime(2020, 8, 1, tzinfo=NY).timestamp())
    assert chart.params["events"] == "div,splits,capitalGains" and chart.status == 200


def test_auto_adjust_true_gives_split_and_dividend_adjusted_ohlc(yf_session):
    raw = Raw("AAPL")
    df = yf.Ticker("AAPL", session=yf_session).history(start="2020-08-10", end="2020-08-20")  # auto_adjust default

    assert "Adj Close" not in df.columns
    for d in dates_of(df):
        ratio = raw.adjclose(d) / raw.close(d)
        row = df.loc[pd.Timestamp(d, tz=NY)]
        assert row["Close"] == pytest.approx(raw.adjclose(d), rel=1e-9)
        assert row["Open"] == pytest.approx(raw.value("open", d) * ratio, rel=1e-9)
        assert row["Low"] == pytest.approx(raw.value("low", d) * ratio, rel=1e-9)
        assert row["Close"] < raw.close(d)


def test_msft_without_events_has_adj_close_equal_to_close(yf_session):
    df = yf.Ticker("MSFT", session=yf_session).history(period="1mo", auto_adjust=False)
    assert len(df) >= 19
    assert (df["Adj Close"] == df["Close"]).all()
    assert (df["Dividends"] == 0).all() and (df["Stock Splits"] == 0).all()
    assert df.index[-1].date() == date(2026, 11, 20)


def test_spy_is_an_etf_with_dividends_and_capital_gains_column(yf_session):
    raw = Raw("SPY")
    df = yf.Ticker("SPY", session=yf_session).history(start="2026-01-01", end="2026-11-21", auto_adjust=False)
    assert "Capital Gains" in df.columns and (df["Capital Gains"] == 0).all()
    dividends = df["Dividends"][df["Dividends"] != 0]
    assert dates_of(dividends) == [d for d, _ in raw.divs if d.year == 2026]
    assert list(dividends) == pytest.approx([a for d, a in raw.divs if d.year == 2026])
    assert yf.Ticker("SPY", session=yf_session).get_history_metadata()["instrumentType"] == "ETF"


# ============================================================================================ intraday
def test_one_minute_history_for_a_fixture_day(yahoo, yf_session):
    raw = Raw("AAPL")
    df = yf.Ticker("AAPL", session=yf_session).history(start="2026-11-18", end="2026-11-19", interval="1m")

    assert len(df) == 390
    assert df.index.name == "Datetime"
    assert str(df.index.tz) == "America/New_York"
    assert df.index[0] == pd.Timestamp("2026-11-18 09:30", tz=NY)
    assert df.index[-1] == pd.Timestamp("2026-11-18 15:59", tz=NY)
    minute = raw.doc["minute"]
    start = minute["t"].index(int(datetime(2026, 11, 18, 9, 30, tzinfo=NY).timestamp()))
    assert list(df["Close"]) == minute["close"][start:start + 390]
    assert list(df["Volume"]) == minute["volume"][start:start + 390]
    # the daily bar of that session is the aggregate of its minutes
    d = date(2026, 11, 18)
    assert df["Open"].iloc[0] == raw.value("open", d) and df["Close"].iloc[-1] == raw.close(d)
    assert df["High"].max() == raw.value("high", d) and df["Volume"].sum() == raw.volume(d)
    assert yahoo.chart_requests("AAPL")[-1].interval == "1m"


def test_hourly_and_30m_bars_are_built_from_minutes(yahoo, yf_session):
    ticker = yf.Ticker("AAPL", session=yf_session)
    hourly = ticker.history(start="2026-11-18", end="2026-11-19", interval="1h")
    assert [ts.strftime("%H:%M") for ts in hourly.index] == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30",
                                                             "15:30"]
    minutes = ticker.history(start="2026-11-18", end="2026-11-19", interval="1m")
    assert hourly["Volume"].sum() == minutes["Volume"].sum()
    assert hourly["Open"].iloc[0] == minutes["Open"].iloc[0] and hourly["Close"].iloc[-1] == minutes["Close"].iloc[-1]

    half_hourly = ticker.history(start="2026-11-18", end="2026-11-19", interval="30m")
    assert len(half_hourly) == 13
    assert yahoo.chart_requests("AAPL")[-1].interval == "15m"  # yfinance fetches 30m as 15m and resamples


def test_intraday_outside_yahoos_limits_gets_422(yahoo, yf_session):
    with exceptions_raised(), pytest.raises(YFPricesMissingError, match="within the last 30 days"):
        yf.Ticker("AAPL", session=yf_session).history(start="2026-09-01", end="2026-09-05", interval="1m")
    assert yahoo.chart_requests("AAPL")[-1].status == 422


# ============================================================================================ exchange timezones
def test_vod_l_index_is_london_time_and_converts_to_utc(yahoo, yf_session):
    raw = Raw("VOD.L")
    ticker = yf.Ticker("VOD.L", session=yf_session)
    df = ticker.history(start="2026-03-25", end="2026-04-02", auto_adjust=False)  # across the BST switch (29 Mar)

    assert str(df.index.tz) == "Europe/London"
    assert ticker.get_history_metadata()["currency"] == "GBp"
    assert dates_of(df) == [d for d in raw.dates if date(2026, 3, 25) <= d < date(2026, 4, 2)]
    assert list(df["Close"]) == [raw.close(d) for d in dates_of(df)]
    utc = df.index.tz_convert("UTC")
    assert utc[0] == pd.Timestamp("2026-03-25 00:00", tz="UTC")  # GMT = UTC
    assert utc[-1] == pd.Timestamp("2026-03-31 23:00", tz="UTC")  # BST midnight = 23:00 UTC the day before
    assert yahoo.chart_requests("VOD.L")[-1].period1 == int(datetime(2026, 3, 25, tzinfo=LONDON).timestamp())

    # on the wire, daily bars are stamped at the 08:00 London open, as Yahoo does
    body = yf_session.get("https://query2.finance.yahoo.com/v8/finance/chart/VOD.L",  # rewritten to loopback
                          params={"period1": 1774396800, "period2": 1775088000, "interval": "1d"}).json()
    stamps = [datetime.fromtimestamp(t, tz=LONDON) for t in body["chart"]["result"][0]["timestamp"]]
    assert {(t.hour, t.minute) for t in stamps} == {(8, 0)}
    assert {t.astimezone(UTC).hour for t in stamps} == {7, 8}


def test_download_of_several_tickers_over_loopback(yf_session):
    # threads=False: yfinance's threaded download shares state between its threads and can mix tickers up
    # (seen here once in ~10 runs); workbench never uses download(), it fetches per symbol.
    df = yf.download(["AAPL", "MSFT"], start="2024-04-01", end="2024-04-10", session=yf_session, progress=False,
                     auto_adjust=False, threads=False)
    raw = Raw("MSFT")
    assert df.index.tz is None  # download() strips the timezone for daily data
    assert list(df[("Close", "MSFT")]) == pytest.approx([raw.close(d) for d in dates_of(df)])
    assert len(df) == 7


# ============================================================================================ errors and faults
def test_unknown_symbol_gives_yfinances_empty_frame(yahoo, yf_session):
    df = yf.Ticker("NOPE", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    assert df.empty and list(df.columns) == EMPTY_COLUMNS
    assert {r.status for r in yahoo.chart_requests("NOPE")} == {404}
    # the tz lookup failed, so yfinance fell back to .info: quoteSummary, v7 quote and fundamentals were answered
    paths = [r.path for r in yahoo.requests]
    assert "/v10/finance/quoteSummary/NOPE" in paths and "/v7/finance/quote" in paths
    assert any(p.startswith("/ws/fundamentals-timeseries/") for p in paths)


def test_unknown_symbol_raises_when_exceptions_are_not_hidden(yahoo, yf_session):
    ticker = yf.Ticker("NOPE", session=yf_session)
    # While yfinance still has its tz->.info fallback budget (2 per process), the .info call's 404 escapes first.
    with exceptions_raised(), pytest.raises(CurlHTTPError) as info_error:
        ticker.history(start="2024-04-01", end="2024-04-10")
    assert "quoteSummary" in info_error.value.response.url

    yf_base._tz_info_fetch_ctr = 2  # fallback budget spent: yfinance's own exceptions
    with exceptions_raised(), pytest.raises(YFTzMissingError):
        yf.Ticker("NOPE", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    with exceptions_raised(), pytest.raises(YFPricesMissingError, match="symbol may be delisted"):
        yf.Ticker("NOPE", session=yf_session).history(period="1mo")
    assert yf.config.debug.hide_exceptions is True


def test_rate_limited_forever_raises_yf_rate_limit_error(yahoo, yf_session):
    yahoo.rate_limit(None)
    with pytest.raises(YFRateLimitError):
        yf.Ticker("AAPL", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    assert [r.status for r in yahoo.chart_requests()] == [429, 429]  # yfinance retried once, other cookie strategy


def test_rate_limited_once_then_success(yahoo, yf_session):
    yahoo.rate_limit(1)
    df = yf.Ticker("AAPL", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    assert len(df) == 7
    assert [r.status for r in yahoo.chart_requests()] == [429, 200, 200]  # tz lookup, its retry, the history


def test_server_errors(yahoo, yf_session):
    yahoo.fail_with(500, n=1)
    assert len(yf.Ticker("MSFT", session=yf_session).history(start="2024-04-01", end="2024-04-10")) == 7
    yahoo.fail_with(503, symbol="SPY")  # forever, for SPY only
    assert yf.Ticker("SPY", session=yf_session).history(start="2024-04-01", end="2024-04-10").empty
    assert {r.status for r in yahoo.chart_requests("SPY")} == {503}
    yahoo.clear_faults()
    assert len(yf.Ticker("SPY", session=yf_session).history(start="2024-04-01", end="2024-04-11")) == 8


def test_network_down_surfaces_a_curl_connection_error_then_recovers(yahoo, yf_session):
    port = yahoo.port
    yahoo.down()
    assert not yahoo.is_up
    with exceptions_raised(), pytest.raises(CurlConnectionError):
        yf.Ticker("AAPL", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    # Observed: even with hide_exceptions=True the error escapes while the tz->.info fallback budget lasts
    # (the .info call only catches HTTPError); once it is spent, history() logs and returns an empty frame.
    with pytest.raises(CurlConnectionError):
        yf.Ticker("MSFT", session=yf_session).history(start="2024-04-01", end="2024-04-10")
    yf_base._tz_info_fetch_ctr = 2
    assert yf.Ticker("SPY", session=yf_session).history(start="2024-04-01", end="2024-04-10").empty

    yahoo.up()
    assert yahoo.port == port
    assert len(yf.Ticker("AAPL", session=yf_session).history(start="2024-04-01", end="2024-04-10")) == 7


# ============================================================================================ the stand-in's clock
def test_now_is_settable_and_nothing_after_it_is_served(yahoo, yf_session):
    raw = Raw("AAPL")
    yahoo.now = datetime(2020, 8, 20, 21, 0, tzinfo=UTC)  # before the 4:1 split of 2020-08-31
    df = yf.Ticker("AAPL", session=yf_session).history(start="2020-08-01", end="2020-09-10", auto_adjust=False)
    assert dates_of(df)[-1] == date(2020, 8, 20)
    assert list(df["Close"]) == [raw.daily["close"][raw.row[d]] for d in dates_of(df)]  # not split-adjusted yet
    assert (df["Stock Splits"] == 0).all()
    assert df.loc[pd.Timestamp("2020-08-14", tz=NY), "Dividends"] == dict(raw.divs)[date(2020, 8, 14)]  # the as-paid amount
    assert df["Adj Close"].iloc[-1] == df["Close"].iloc[-1]  # no later dividend known yet


def test_expected_daily_helper_agrees_with_yfinance(yahoo, yf_session):
    yahoo.now = datetime(2024, 6, 3, 19, 0, tzinfo=UTC)  # Monday 15:00 New York, session still open
    rows = {r["date"]: r for r in yahoo.expected_daily("SPY")}
    assert max(rows) == date(2024, 5, 31)  # no minute bars for SPY, so no partial bar for Monday
    df = yf.Ticker("SPY", session=yf_session).history(start="2024-03-01", end="2024-06-04", auto_adjust=False)
    assert dates_of(df)[-1] == date(2024, 5, 31)
    for ts, row in df.iterrows():
        expected = rows[ts.date()]
        assert (row["Close"], row["Adj Close"], row["Volume"], row["Dividends"]) == pytest.approx(
            (expected["close"], expected["adjclose"], expected["volume"], expected["dividend"]))


def test_mid_session_daily_bar_is_built_from_the_minutes_so_far(yahoo, yf_session):
    yahoo.now = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # 10:00 New York
    ticker = yf.Ticker("AAPL", session=yf_session)
    minutes = ticker.history(start="2026-11-18", end="2026-11-19", interval="1m")
    assert len(minutes) == 30 and minutes.index[-1] == pd.Timestamp("2026-11-18 09:59", tz=NY)
    daily = ticker.history(start="2026-11-16", end="2026-11-19", auto_adjust=False)
    assert dates_of(daily) == [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]
    assert daily["Close"].iloc[-1] == minutes["Close"].iloc[-1]
    assert daily["Volume"].iloc[-1] == minutes["Volume"].sum()
    meta = ticker.get_history_metadata()
    assert meta["regularMarketPrice"] == minutes["Close"].iloc[-1]
    assert meta["regularMarketTime"] == pd.Timestamp("2026-11-18 10:00", tz=NY)


def test_default_now_and_fast_info(yahoo, yf_session):
    assert yahoo.now == DEFAULT_NOW
    info = yf.Ticker("AAPL", session=yf_session).fast_info
    assert info.currency == "USD" and info.timezone == "America/New_York"
    assert info.last_price == Raw("AAPL").close(date(2026, 11, 20))


# ============================================================================================ the wire format
@pytest.fixture
def wire(yahoo) -> Iterator[LoopbackCurlSession]:
    """A loopback session without yfinance, to look at raw responses."""
    with LoopbackCurlSession(yahoo.target) as s:
        yield s


CHART = "https://query2.finance.yahoo.com/v8/finance/chart/"  # rewritten to loopback


def test_handshake_hosts_and_info_endpoints(yahoo, wire):
    assert wire.get("https://fc.yahoo.com").status_code == 404
    assert wire.get("https://guce.yahoo.com/consent").status_code == 404
    assert wire.post("https://consent.yahoo.com/v2/collectConsent?sessionId=x", data={"a": "b"}).status_code == 404
    crumb = wire.get("https://query1.finance.yahoo.com/v1/test/getcrumb")  # rewritten to loopback
    assert (crumb.status_code, crumb.text) == (200, "FakeCrumb123")
    assert crumb.headers["content-type"].startswith("text/plain")

    r = wire.get("https://query2.finance.yahoo.com/v10/finance/quoteSummary/NOPE", params={"modules": "price"})  # rewritten to loopback
    assert r.status_code == 404
    assert r.json() == {"quoteSummary": {"result": None, "error": {
        "code": "Not Found", "description": "Quote not found for symbol: NOPE"}}}
    r = wire.get("https://query1.finance.yahoo.com/v7/finance/quote", params={"symbols": "NOPE"})  # rewritten to loopback
    assert r.json() == {"quoteResponse": {"result": [], "error": None}}
    r = wire.get("https://query2.finance.yahoo.com/ws/fundamentals-timeseries/v1/finance/timeseries/NOPE")  # rewritten to loopback
    assert r.json() == {"timeseries": {"result": [], "error": None}}
    assert [(q.host, q.path) for q in yahoo.requests][:4] == [
        ("fc.yahoo.com", "/"), ("guce.yahoo.com", "/consent"), ("consent.yahoo.com", "/v2/collectConsent"),
        ("query1.finance.yahoo.com", "/v1/test/getcrumb")]


def test_unknown_symbol_and_empty_range_bodies(wire):
    r = wire.get(CHART + "NOPE", params={"range": "1d", "interval": "1d"})
    assert r.status_code == 404
    assert r.json() == {"chart": {"result": None, "error": {
        "code": "Not Found", "description": "No data found, symbol may be delisted"}}}

    saturday = int(datetime(2026, 11, 14, tzinfo=NY).timestamp())
    r = wire.get(CHART + "AAPL", params={"period1": saturday, "period2": saturday + 86400, "interval": "1d"})
    assert r.status_code == 200
    result = r.json()["chart"]["result"][0]
    assert "timestamp" not in result and result["indicators"] == {"quote": [{}]}
    assert result["meta"]["exchangeTimezoneName"] == "America/New_York"

    assert wire.get(CHART + "AAPL", params={"range": "1d", "interval": "7m"}).status_code == 400


def test_chart_meta_events_and_case_insensitive_bools(wire):
    r = wire.get(CHART + "AAPL", params={"period1": int(datetime(2020, 8, 1, tzinfo=NY).timestamp()),
                                         "period2": int(datetime(2020, 9, 1, tzinfo=NY).timestamp()),
                                         "interval": "1d", "events": "div,splits"}).json()["chart"]
    assert r["error"] is None
    result = r["result"][0]
    meta = result["meta"]
    for key in ("currency", "instrumentType", "exchangeTimezoneName", "gmtoffset", "timezone", "validRanges",
                "regularMarketPrice", "regularMarketTime", "dataGranularity", "range"):
        assert key in meta, key
    assert (meta["currency"], meta["instrumentType"], meta["range"], meta["dataGranularity"]) == (
        "USD", "EQUITY", "", "1d")
    for entry in meta["currentTradingPeriod"].values():
        assert set(entry) == {"timezone", "start", "end", "gmtoffset"}
    split_day = str(int(datetime(2020, 8, 31, 9, 30, tzinfo=NY).timestamp()))
    assert result["events"]["splits"] == {split_day: {"date": int(split_day), "numerator": 4.0, "denominator": 1.0,
                                                      "splitRatio": "4:1"}}
    assert len(result["events"]["dividends"]) == 1
    assert all(datetime.fromtimestamp(t, tz=NY).strftime("%H:%M") == "09:30" for t in result["timestamp"])
    assert len(result["indicators"]["adjclose"][0]["adjclose"]) == len(result["timestamp"])

    day = {"period1": int(datetime(2026, 11, 18, tzinfo=NY).timestamp()),
           "period2": int(datetime(2026, 11, 19, tzinfo=NY).timestamp()), "interval": "5m"}
    for flag, shape in (("false", list), ("False", list), ("true", dict), ("TRUE", dict), ("True", dict)):
        result = wire.get(CHART + "AAPL", params={**day, "includePrePost": flag}).json()["chart"]["result"][0]
        assert isinstance(result["meta"]["tradingPeriods"], shape), flag
        assert "adjclose" not in result["indicators"] and len(result["timestamp"]) == 78


def test_range_requests_are_relative_to_now(yahoo, wire):
    def stamps(range_: str, interval: str = "1d") -> list[date]:
        body = wire.get(CHART + "AAPL", params={"range": range_, "interval": interval}).json()
        return [datetime.fromtimestamp(t, tz=NY).date() for t in body["chart"]["result"][0].get("timestamp", [])]

    assert stamps("1d") == [date(2026, 11, 20)]
    assert stamps("5d") == [date(2026, 11, d) for d in (16, 17, 18, 19, 20)]
    assert stamps("ytd")[0] == date(2026, 1, 2)
    assert stamps("max")[0] == date(2015, 1, 2)
    assert stamps("1mo", "1mo")[-1] == date(2026, 11, 2)  # a monthly bar is stamped at its first session
    assert len(stamps("1d", "1m")) == 390
    yahoo.now = datetime(2026, 11, 22, 12, tzinfo=UTC)  # Sunday: the latest session is still Friday's
    assert stamps("1d") == [date(2026, 11, 20)]
    yahoo.now = DEFAULT_NOW - timedelta(days=3650)
    assert stamps("5d")[-1] == date(2016, 11, 22)


def test_chart_request_bookkeeping(yahoo, wire):
    wire.get(CHART + "aapl", params={"period1": 100, "period2": 200, "interval": "1wk"})
    wire.get(CHART + "MSFT", params={"range": "5d", "interval": "1d"})
    assert [(c.symbol, c.period1, c.period2, c.interval, c.range) for c in yahoo.chart_requests()] == [
        ("AAPL", 100, 200, "1wk", None), ("MSFT", None, None, "1d", "5d")]
    assert len(yahoo.chart_requests("msft")) == 1
    yahoo.clear_requests()
    assert yahoo.requests == []


# ============================================================================================ fixtures
def test_fixture_files_are_the_generators_output_and_small():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES_DIR / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = sorted(FIXTURES_DIR.glob("*.json"))
    assert [f.stem for f in files] == ["AAPL", "MSFT", "SPY", "VOD.L"]
    assert sum(f.stat().st_size for f in files) < 3_000_000
    for f in files:
        assert f.read_text(encoding="utf-8") == module.render(module.generate(f.stem)), f"{f.name} is stale"


def test_standin_without_fixture_dir_symbols_and_lifecycle(tmp_path: Path):
    standin = YahooStandin(tmp_path)
    assert standin.symbols == []
    with pytest.raises(RuntimeError):
        _ = standin.target
    with standin:
        assert standin.target.startswith("127.0.0.1:")
        with LoopbackCurlSession(standin.target) as s:
            assert s.get(CHART + "AAPL", params={"range": "1d"}).status_code == 404
    assert not standin.is_up
    assert YahooStandin().symbols == ["AAPL", "MSFT", "SPY", "VOD.L"]
