"""Several symbols through the Broker facade: the provider's own long (symbol, ts) frame, on every provider."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.core import frames
from workbench.marketdata.yahoo import YFinanceProvider
from tests.yahoo.fixtures import yahoo, yf_session  # noqa: F401
from tests.yahoo.standin import YahooStandin

SYMBOLS = ["AAPL", "MSFT", "SPY"]


def test_paper_on_yfinance_returns_what_the_provider_returns(yahoo: YahooStandin, yf_session,  # noqa: F811
                                                             tmp_path: Path, settings_dict: dict) -> None:
    def provider(cache: str) -> YFinanceProvider:
        return YFinanceProvider(session=yf_session, clock=lambda: yahoo.now, cache_dir=tmp_path / cache,
                                backoff_seconds=0, progress=False, requests_per_second=1000)

    direct = provider("direct").get_history(SYMBOLS, days=10)
    with workbench.connect("paper", settings=settings_dict, provider=provider("broker"),
                           clock=lambda: yahoo.now) as broker:
        through = broker.get_history(SYMBOLS, days=10)
    assert list(through.index.names) == ["symbol", "ts"] == list(direct.index.names)
    pd.testing.assert_frame_equal(through, direct, check_freq=False)
    assert through.attrs["symbols"] == direct.attrs["symbols"] == SYMBOLS
    assert through.attrs["source"] == "yfinance" and through.attrs["broker"] == "paper"
    assert through.attrs["simulated"] is False


def test_sim_long_frame_is_the_single_symbol_frames_stacked(settings_dict: dict, clock) -> None:
    with workbench.connect(settings=settings_dict, clock=clock) as broker:  # a still clock: a still last bar
        long = broker.get_history(tuple(SYMBOLS), days=10, interval="1h")
        for symbol in SYMBOLS:
            pd.testing.assert_frame_equal(long.loc[symbol], broker.get_history(symbol, days=10, interval="1h"),
                                          check_freq=False)
    assert long.attrs["simulated"] is True and long.attrs["source"] == "sim" and long.attrs["interval"] == "60m"
    assert list(long.columns) == list(frames.HISTORY_COLUMNS)


@pytest.mark.parametrize(("symbols", "field"), [([], "symbol"), (["AAPL", None], "symbol"), ({"AAPL": 1}, "symbol"),
                                                (["$$$"], "symbol"), (b"AAPL", "symbol")])
def test_bad_symbol_lists_are_invalid_input(settings_dict: dict, symbols, field: str) -> None:
    with workbench.connect(settings=settings_dict) as broker:
        with pytest.raises(workbench.InvalidInput) as info:
            broker.get_history(symbols, days=5)
    assert info.value.field == field
