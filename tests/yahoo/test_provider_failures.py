"""The yfinance provider when things go wrong: Yahoo's bad answers, a damaged or unwritable cache, bad arguments.

Each failure is one typed workbench error, or an answer labelled for what it is; never a raw library exception,
never an empty frame standing in for data, never a bad answer kept in the cache. Real yfinance code, loopback only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench
from tests.yahoo.fixtures import make_provider, yahoo, yf_session  # noqa: F401
from tests.yahoo.standin import YahooStandin

PAST = {"start": "2025-01-01", "end": "2025-02-01"}  # ended long ago: yfinance would memoise its answer

BAD_ANSWERS = {
    "consent page": {"body": "<html><body>Before you continue to Yahoo</body></html>"},
    "truncated json": {"body": '{"chart": {"result": [{"meta"', "content_type": "application/json"},
    "foreign json": {"body": "[1, 2, 3]", "content_type": "application/json"},
    "invalid crumb": {"body": '{"finance":{"result":null,"error":{"code":"Unauthorized",'
                              '"description":"Invalid Crumb"}}}', "status": 401, "content_type": "application/json"},
    "server error": {"body": '{"chart":{"result":null,"error":{"code":"Internal Server Error",'
                             '"description":"Internal error"}}}', "status": 500, "content_type": "application/json"},
    "bad gateway page": {"body": "<html><body>502 Bad Gateway</body></html>", "status": 502},
}


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=list(BAD_ANSWERS))
def test_a_bad_answer_is_broker_unavailable_and_is_not_kept(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                            answer: dict) -> None:
    provider = make_provider()
    provider.get_history("AAPL", days=5)  # warm yfinance's timezone cache
    yahoo.answer_with(**answer, symbol="AAPL")
    with pytest.raises(workbench.BrokerUnavailable) as info:
        provider.get_history("AAPL", **PAST)
    assert info.value.retryable
    yahoo.clear_faults()
    n = len(yahoo.chart_requests("AAPL"))
    df = provider.get_history("AAPL", **PAST)  # neither our cache nor yfinance's memo kept the bad answer
    assert len(df) > 15 and df.attrs["cached"] is False and yahoo.chart_requests("AAPL")[n:]


def test_a_bad_answer_with_a_cache_serves_it_labelled_stale(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                            caplog) -> None:
    provider = make_provider(ttl_seconds=0)
    fresh = provider.get_history("SPY", start="2026-06-01", end="2026-11-20")
    yahoo.answer_with("<html><body>Will be right back</body></html>", status=503, symbol="SPY")
    with caplog.at_level(logging.WARNING, logger="workbench"):
        stale = provider.get_history("SPY", start="2026-06-01", end="2026-11-21")
    pd.testing.assert_frame_equal(stale, fresh, check_freq=False)
    assert stale.attrs["stale"] is True and stale.attrs["cached_as_of"] and "serving SPY" in caplog.text
    many = provider.get_history(["SPY", "MSFT"], start="2026-06-01", end="2026-11-21", errors="skip")
    assert many.attrs["stale_symbols"] == ["SPY"] and many.attrs["stale"] is True
    assert many.attrs["cached_as_of"]["SPY"] == stale.attrs["cached_as_of"] and many.attrs["cached_as_of"]["MSFT"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _scramble(path: Path) -> None:  # the footer (schema, metadata) survives; the data pages do not
    data = bytearray(path.read_bytes())
    data[64:512] = b"\x55" * len(data[64:512])
    path.write_bytes(bytes(data))


def _foreign_metadata(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"workbench": b"{not json"}), path)


def _wrong_columns(path: Path) -> None:
    pq.write_table(pa.table({"ts": pa.array([1, 2], pa.timestamp("ns", tz="UTC")), "price": [1.0, 2.0]}), path)


@pytest.mark.parametrize("damage", [_truncate, _scramble, _foreign_metadata, _wrong_columns],
                         ids=["truncated", "scrambled", "foreign metadata", "wrong columns"])
def test_a_damaged_cache_file_is_fetched_again(make_provider, yahoo: YahooStandin, damage) -> None:  # noqa: F811
    window = {"start": "2026-10-01", "end": "2026-11-01"}
    provider = make_provider()
    good = provider.get_history("AAPL", **window)
    provider.get_history("MSFT", **window)
    path = provider.cache.path("AAPL", "1d", True)
    for ask in (lambda: provider.get_history("AAPL", **window),
                lambda: provider.get_history(["AAPL", "MSFT"], **window).loc["AAPL"]):
        damage(path)
        n = len(yahoo.chart_requests("AAPL"))
        again = ask()
        pd.testing.assert_frame_equal(again, good, check_freq=False, check_like=True)
        assert yahoo.chart_requests("AAPL")[n:], "the damaged file was not fetched again"
    assert provider.cached()["symbol"].tolist() == ["AAPL", "MSFT"]  # and replaced


def test_a_damaged_events_record_is_fetched_again(make_provider, yahoo: YahooStandin) -> None:  # noqa: F811
    window = {"start": "2020-08-01", "end": "2020-10-01", "adjusted": False}  # across the 2020 split
    provider = make_provider()
    good = provider.get_history("AAPL", **window)
    _truncate(provider.cache.events_path("AAPL"))
    restarted = make_provider()  # nothing remembered in memory
    again = restarted.get_history("AAPL", start="2020-07-01", end="2020-10-01", adjusted=False)
    pd.testing.assert_frame_equal(again.loc["2020-08-01":], good, check_freq=False, check_like=True)
    assert pq.read_table(restarted.cache.events_path("AAPL")).num_rows > 0


def test_an_unwritable_cache_costs_the_caching_not_the_answer(make_provider, yahoo: YahooStandin,  # noqa: F811
                                                              tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    provider = make_provider(cache_dir=blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="workbench"):
        adjusted = provider.get_history("AAPL", start="2026-10-01", end="2026-11-01")
        traded = provider.get_history("AAPL", start="2026-10-01", end="2026-11-01", adjusted=False)
        many = provider.get_history(["AAPL", "MSFT"], start="2026-10-01", end="2026-11-01")
    assert len(adjusted) == len(traded) == len(many.loc["MSFT"]) == 22
    assert adjusted.attrs["cached"] is False and "not cached" in caplog.text


BAD_ARGUMENTS = [
    (lambda p: p.get_history(None, days=5), "symbol"),
    (lambda p: p.get_history(123, days=5), "symbol"),
    (lambda p: p.get_history(["AAPL", 7], days=5), "symbol"),
    (lambda p: p.get_quote(None), "symbol"),
    (lambda p: p.get_history("AAPL", days=5, adjusted="no"), "adjusted"),
    (lambda p: p.get_history("AAPL", days=5, errors="ignore"), "errors"),
    (lambda p: p.get_history("AAPL", days=2, interval="10m"), "interval"),
    (lambda p: p.get_history("AAPL", days=2, interval="4h"), "interval"),
    (lambda p: p.get_history("AAPL", days=60, interval="2wk"), "interval"),
    (lambda p: p.get_history("AAPL", days=10**6), "days"),
    (lambda p: p.get_history("AAPL", start=5, end="2026-01-01"), "start"),
    (lambda p: p.get_history("AAPL", start="1500-01-01"), "start"),
    (lambda p: p.get_history("AAPL", days=40, interval="1m"), "start"),
    (lambda p: p.get_history("AAPL", days=800, interval="1h"), "start"),
]


@pytest.mark.parametrize("call, field", BAD_ARGUMENTS)
def test_a_bad_argument_is_one_typed_error_naming_it_and_nothing_is_sent(  # noqa: F811
        make_provider, yahoo: YahooStandin, call, field: str) -> None:
    provider = make_provider()
    n = len(yahoo.requests)
    with pytest.raises(workbench.InvalidInput) as info:
        call(provider)
    assert info.value.field == field
    assert yahoo.requests[n:] == [] and provider.cached().empty
