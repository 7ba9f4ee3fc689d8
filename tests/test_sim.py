"""The sim provider: seeded, consistent, labelled, honest about unknown symbols."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import workbench
from workbench.marketdata.sim import SimProvider

NOW = datetime(2026, 11, 18, 18, 7, 30, tzinfo=UTC)  # Wednesday, 13:07:30 New York


def _sim(seed: int = 7, **kw: object) -> SimProvider:
    return SimProvider(seed=seed, clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = _sim(1).get_history("SPY", days=60), _sim(1).get_history("SPY", days=60), _sim(2).get_history("SPY", days=60)
    pd.testing.assert_frame_equal(a, b)
    assert not a["close"].equals(c["close"])


def test_ranges_do_not_depend_on_what_was_asked_before() -> None:
    fresh = _sim().get_history("MSFT", start="2026-03-01", end="2026-04-01")
    warm = _sim()
    warm.get_history("MSFT", days=400)
    pd.testing.assert_frame_equal(fresh, warm.get_history("MSFT", start="2026-03-01", end="2026-04-01"))


def test_history_agrees_with_the_live_price() -> None:
    sim = _sim()
    live = float(sim.get_market_price("AAPL"))
    assert sim.get_history("AAPL", days=5)["close"].iloc[-1] == pytest.approx(live, abs=0.011)
    assert sim.get_history("AAPL", days=2, interval="1m")["close"].iloc[-1] == pytest.approx(live, abs=0.011)


def test_nothing_after_now_and_partial_last_bar() -> None:
    bars = _sim().get_history("AAPL", days=2, interval="5m")
    assert bars.index[-1] <= pd.Timestamp(NOW) and bars.index[-1] == pd.Timestamp("2026-11-18 18:05", tz="UTC")


def test_price_moves_over_time() -> None:
    sim = _sim()
    prices = {sim.get_market_price("TSLA", NOW + timedelta(minutes=m)) for m in range(0, 120, 7)}
    assert len(prices) > 5


def test_intraday_bars_follow_the_new_york_session_across_dst() -> None:
    summer = _sim().get_history("SPY", start="2026-07-06", end="2026-07-07", interval="30m")
    winter = _sim().get_history("SPY", start="2026-11-16", end="2026-11-17", interval="30m")
    assert summer.index[0] == pd.Timestamp("2026-07-06 13:30", tz="UTC")  # 09:30 EDT
    assert winter.index[0] == pd.Timestamp("2026-11-16 14:30", tz="UTC")  # 09:30 EST
    assert len(winter) == 13 and winter.index[-1] == pd.Timestamp("2026-11-16 20:30", tz="UTC")


def test_daily_weekly_monthly_are_consistent() -> None:
    sim = _sim()
    daily = sim.get_history("QQQ", start="2026-09-01", end="2026-10-01")
    assert set(daily.index.day_of_week) <= {0, 1, 2, 3, 4} and (daily.index == daily.index.normalize()).all()
    monthly = sim.get_history("QQQ", start="2026-09-01", end="2026-10-01", interval="1mo")
    assert len(monthly) == 1
    assert monthly["high"].iloc[0] == daily["high"].max() and monthly["volume"].iloc[0] == daily["volume"].sum()
    assert monthly["open"].iloc[0] == daily["open"].iloc[0] and monthly["close"].iloc[0] == daily["close"].iloc[-1]
    weekly = sim.get_history("QQQ", start="2026-09-07", end="2026-09-21", interval="1wk")
    assert list(weekly.index) == [pd.Timestamp("2026-09-07", tz="UTC"), pd.Timestamp("2026-09-14", tz="UTC")]


def test_everything_is_labelled_simulated() -> None:
    sim = _sim()
    frame = sim.get_history("AAPL", days=3)
    assert frame.attrs["simulated"] is True and frame.attrs["source"] == "sim"
    assert sim.get_quote("AAPL").simulated is True


def test_unknown_symbol_and_extending_the_universe(settings_dict: dict) -> None:
    with pytest.raises(workbench.SymbolNotFound):
        _sim().get_history("ZZZZ", days=3)
    extended = _sim(symbols={"xyz": {"price": 50, "vol": 0.2}})
    assert extended.get_history("XYZ", days=10)["close"].between(20, 120).all()
    settings_dict["market_data"] = {"sim": {"symbols": {"ACME": {"price": 12.5}}}}
    with workbench.connect(settings=settings_dict) as broker:
        assert broker.get_market_price("ACME") > 0


def test_builtin_universe() -> None:
    assert {"AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "SPY", "QQQ", "IWM"} <= set(_sim().symbols())


def test_empty_range_is_an_empty_frame_with_schema() -> None:
    empty = _sim().get_history("AAPL", start="2026-11-21", end="2026-11-22")  # a weekend
    assert empty.empty and list(empty.columns) == ["open", "high", "low", "close", "volume"]
    assert str(empty.index.tz) == "UTC" and empty.attrs["simulated"] is True


def test_the_builtin_universe_has_the_most_traded_us_stocks_and_etfs() -> None:
    from workbench.marketdata.sim import DEFAULT_UNIVERSE

    sim = _sim()
    assert len(sim.symbols()) >= 100
    kinds = {spec.kind for spec in DEFAULT_UNIVERSE.values()}
    assert kinds == {"STK", "ETF"} and sum(spec.kind == "ETF" for spec in DEFAULT_UNIVERSE.values()) >= 20
    assert {"AMD", "INTC", "JPM", "XOM", "KO", "DIA", "TLT", "GLD", "XLF"} <= set(sim.symbols())
    amd = sim.info("amd")
    assert (amd.name, amd.exchange, amd.industry, amd.category) == ("ADVANCED MICRO DEVICES", "NASDAQ", "Technology",
                                                                    "Semiconductors")
    assert sim.info("SPY").kind == "ETF" and sim.info("SPY").exchange == "ARCA"
    with pytest.raises(workbench.SymbolNotFound):
        sim.info("ZZZZ")


def test_every_builtin_symbol_is_anchored_deterministic_and_labelled() -> None:
    from workbench.marketdata.sim import DEFAULT_UNIVERSE

    anchor = datetime(2025, 1, 1, tzinfo=UTC)
    a, b = _sim(), _sim()
    for symbol, spec in DEFAULT_UNIVERSE.items():
        assert float(a.get_market_price(symbol, anchor)) == pytest.approx(spec.price, rel=0.01, abs=0.02), symbol
        assert a.get_market_price(symbol) == b.get_market_price(symbol)
    frame = a.get_history("INTC", days=5, interval="5m")
    assert frame.attrs["simulated"] is True and not frame.empty


def test_unknown_symbols_name_the_universe_size() -> None:
    with pytest.raises(workbench.SymbolNotFound, match=r"sim universe \(\d{3} symbols"):
        _sim().get_quote("NOPE")


def test_prices_are_the_same_in_another_process() -> None:
    """Seeds come from (seed, crc32(symbol)), never from hash(): another interpreter (another hash seed)
    gives the same path, so a notebook rerun tomorrow shows the same simulated history."""
    import os
    import subprocess
    import sys

    code = ("from datetime import datetime, UTC; from workbench.marketdata.sim import SimProvider; "
            "t = datetime(2026, 11, 18, 15, 0, tzinfo=UTC); s = SimProvider(clock=lambda: t); "
            "print([str(s.get_market_price(x, t)) for x in ('AAPL', 'MSTR', 'SPY')], "
            "float(s.get_history('TSLA', days=3, interval='1m')['volume'].sum()))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    t = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    here = SimProvider(clock=lambda: t)
    assert outputs == {f"{[str(here.get_market_price(x, t)) for x in ('AAPL', 'MSTR', 'SPY')]} "
                       f"{float(here.get_history('TSLA', days=3, interval='1m')['volume'].sum())}\n"}
