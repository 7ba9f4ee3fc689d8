"""The stock recipes of ib_async's notebooks (bar data, contract details, tick data, ordering) against the
emulator with the real ib_async 2.1.0, at server versions 157 and 178.

The clock is a Wednesday, 10:00 New York (2026-11-18 15:00 UTC); Thanksgiving is 2026-11-26.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from workbench.core.calendar import get_calendar
from workbench.emulators.tws.instruments import con_id_for

from .conftest import ACCOUNT, ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import (  # noqa: E402
    Contract,
    ExecutionFilter,
    Forex,
    Future,
    Index,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    Stock,
)

pytestmark = pytest.mark.timeout(90)


def qualified(ib: Any, symbol: str = "TSLA") -> Any:
    (contract,) = ib.qualifyContracts(Stock(symbol, "SMART", "USD"))
    return contract


# -- bar data -------------------------------------------------------------------------------


def test_head_timestamp_is_the_first_bar_of_the_sim(ib: Any) -> None:
    tsla = Stock("TSLA", "SMART", "USD")
    assert ib.reqHeadTimeStamp(tsla, whatToShow="TRADES", useRTH=True) == datetime(2000, 1, 3, 14, 30, tzinfo=UTC)
    assert ib.reqHeadTimeStamp(tsla, whatToShow="TRADES", useRTH=True, formatDate=2) == \
        datetime(2000, 1, 3, 14, 30, tzinfo=UTC)


def test_hourly_bars_align_as_ib_aligns_them(ib: Any, clock: Any) -> None:
    bars = ib.reqHistoricalData(qualified(ib), endDateTime="", durationStr="60 D", barSizeSetting="1 hour",
                                whatToShow="TRADES", useRTH=True, formatDate=1)
    days = sorted({b.date.date() for b in bars})
    assert len(days) == 60 and date(2026, 11, 26) not in days  # 60 sessions, Thanksgiving excluded
    first_bars = [b for b in bars if b.date.date() == days[-2]]
    opens = [b.date for b in first_bars]
    session = get_calendar().sessions(days[-2], days[-2])[0]
    assert opens[0] == session.open and opens[1] == session.open + timedelta(minutes=30)  # 09:30, then 10:00
    assert all(t.minute == 0 for t in opens[1:]) and len(opens) == 7
    assert bars[-1].date == datetime(2026, 11, 18, 14, 30, tzinfo=UTC)  # the current bar: 09:30-10:00, partial
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) and b.volume > 0 for b in bars)


def test_one_day_is_the_current_session_or_the_last_one(ib: Any, clock: Any) -> None:
    contract = qualified(ib)
    today = ib.reqHistoricalData(contract, "", "1 D", "5 mins", "TRADES", True, 2)
    assert today[0].date == datetime(2026, 11, 18, 14, 30, tzinfo=UTC) and today[-1].date <= clock()
    assert len(today) == 6  # 09:30 .. 09:55 New York: not the last 24 hours
    clock.set(datetime(2026, 11, 18, 12, 0, tzinfo=UTC))  # 07:00 New York, before the open
    before_open = ib.reqHistoricalData(contract, "", "1 D", "30 mins", "TRADES", True, 2)
    assert {b.date.date() for b in before_open} == {date(2026, 11, 17)} and len(before_open) == 13
    daily = ib.reqHistoricalData(contract, "", "10 D", "1 day", "TRADES", True, 1)
    assert len(daily) == 10 and daily[-1].date == date(2026, 11, 17)


def test_bid_ask_and_midpoint_bars(ib: Any) -> None:
    contract = qualified(ib, "AAPL")
    trades = ib.reqHistoricalData(contract, "", "1 D", "30 mins", "TRADES", True, 2)
    bid_ask = ib.reqHistoricalData(contract, "", "1 D", "30 mins", "BID_ASK", True, 2)
    bid = ib.reqHistoricalData(contract, "", "1 D", "30 mins", "BID", True, 2)
    ask = ib.reqHistoricalData(contract, "", "1 D", "30 mins", "ASK", True, 2)
    assert [b.date for b in bid_ask] == [b.date for b in trades]
    for t, ba, b, a in zip(trades, bid_ask, bid, ask):
        assert ba.open < ba.close  # time-average bid < time-average ask
        assert ba.low < t.low and ba.high > t.high  # min bid, max ask
        assert b.close < t.close < a.close and ba.volume == b.volume == -1
        assert t.volume > 0 and t.barCount > 0 and t.low <= t.average <= t.high


def test_keep_up_to_date_updates_the_last_bar_and_appends_new_ones(ib: Any, emulator: Any, clock: Any) -> None:
    bars = ib.reqHistoricalData(qualified(ib), "", "1 D", "1 min", "TRADES", True, 1, keepUpToDate=True)
    first = len(bars)
    updates: list[bool] = []
    bars.updateEvent += lambda b, has_new_bar: updates.append(has_new_bar)
    for _ in range(6):
        clock.advance(seconds=30)
        emulator.tick()
        ib.sleep(0.02)
    ib_eventually(ib, lambda: len(bars) == first + 3 and True in updates and False in updates)
    assert bars[-1].date == datetime(2026, 11, 18, 15, 2, tzinfo=UTC)  # 15:03:00 is now: that bar has no trade yet
    ib.cancelHistoricalData(bars)
    ib_eventually(ib, lambda: not emulator.call(lambda: any(s.subs.history for s in emulator.sessions)))


def test_keep_up_to_date_finishes_the_last_bar_after_a_jump_of_the_clock(ib: Any, emulator: Any, clock: Any) -> None:
    contract = qualified(ib)
    bars = ib.reqHistoricalData(contract, "", "1 M", "1 day", "TRADES", True, 1, keepUpToDate=True)
    assert bars[-1].date == date(2026, 11, 18)  # today's bar, partial
    ib_eventually(ib, lambda: emulator.call(lambda: any(s.subs.history for s in emulator.sessions)))
    clock.advance(days=1)
    emulator.tick()
    ib_eventually(ib, lambda: bars[-1].date == date(2026, 11, 19))
    fresh = ib.reqHistoricalData(contract, "", "5 D", "1 day", "TRADES", True, 1)
    assert bars[-2] == next(b for b in fresh if b.date == date(2026, 11, 18))  # the whole session now


def test_keep_up_to_date_needs_an_empty_end(ib: Any) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert list(ib.reqHistoricalData(qualified(ib), "20261117 20:00:00 UTC", "1 D", "1 min", "TRADES", True, 1,
                                     keepUpToDate=True)) == []
    assert 162 in errors


def test_historical_schedule_comes_from_exchange_calendars(ib: Any, clock: Any) -> None:
    clock.set(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    schedule = ib.reqHistoricalSchedule(qualified(ib), 5)
    assert schedule.timeZone == "US/Eastern"
    assert [s.refDate for s in schedule.sessions] == ["20261124", "20261125", "20261127", "20261130", "20261201"]
    assert schedule.sessions[2].endDateTime == "20261127-13:00:00"  # the early close after Thanksgiving
    assert schedule.sessions[0].startDateTime == "20261124-09:30:00"


def test_real_time_bars_every_five_seconds(ib: Any, emulator: Any, clock: Any) -> None:
    bars = ib.reqRealTimeBars(qualified(ib), 5, "TRADES", True)
    ib_eventually(ib, lambda: emulator.call(lambda: any(s.subs.realtime for s in emulator.sessions)))
    clock.advance(seconds=30)
    emulator.tick()
    ib_eventually(ib, lambda: len(bars) == 6)
    assert [b.time for b in bars] == [clock() - timedelta(seconds=30 - 5 * i) for i in range(6)]
    assert all(b.low <= min(b.open_, b.close) <= max(b.open_, b.close) <= b.high and b.volume > 0 for b in bars)
    ib.cancelRealTimeBars(bars)  # (ib_async drops bars of a cancelled request itself: ask the emulator)
    ib_eventually(ib, lambda: emulator.call(lambda: not any(s.subs.realtime for s in emulator.sessions)))


# -- contract details ---------------------------------------------------------------------


def test_the_notebook_symbols_are_in_the_universe(ib: Any) -> None:
    amd, intc = ib.qualifyContracts(Stock("AMD", "SMART", "USD"), Stock("INTC", "SMART", "USD",
                                                                        primaryExchange="NASDAQ"))
    assert amd.conId == con_id_for("AMD") and intc.primaryExchange == "NASDAQ"
    (jpm,) = ib.qualifyContracts(Stock("JPM", "SMART", "USD"))
    assert jpm.primaryExchange == "NYSE" and jpm.tradingClass == "JPM"


def test_contract_details_like_a_gateway(ib: Any) -> None:
    (cd,) = ib.reqContractDetails(Stock("AMD", "SMART", "USD"))
    assert cd.longName == "ADVANCED MICRO DEVICES" and cd.industry == "Technology"
    assert cd.category == "Semiconductors" and cd.stockType == "COMMON" and cd.minTick == 0.01
    assert cd.timeZoneId == "US/Eastern" and cd.contract.primaryExchange == "NASDAQ"
    assert cd.liquidHours.startswith("20261118:0930-20261118:1600;")
    assert "20261121:CLOSED" in cd.liquidHours and "20261118:0400-20261118:2000" in cd.tradingHours
    rules = {int(r) for r in cd.marketRuleIds.split(",")}
    assert len(cd.marketRuleIds.split(",")) == len(cd.validExchanges.split(","))
    for rule in rules:
        increments = ib.reqMarketRule(rule)
        assert [(i.lowEdge, i.increment) for i in increments] == [(0.0, 0.0001), (1.0, 0.01)]
    (spy,) = ib.reqContractDetails(Stock("SPY", "SMART", "USD"))
    assert spy.stockType == "ETF" and spy.contract.primaryExchange == "ARCA"


def test_ambiguous_query_returns_several_rows(ib: Any) -> None:
    cds = ib.reqContractDetails(Stock("TSLA"))
    exchanges = [cd.contract.exchange for cd in cds]
    assert len(cds) > 10 and "SMART" in exchanges and len(set(exchanges)) == len(exchanges)
    assert {cd.contract.conId for cd in cds} == {con_id_for("TSLA")}
    assert ib.qualifyContracts(Stock("TSLA")) == [None]  # ambiguous, as with a real gateway
    assert len(ib.reqContractDetails(Contract(conId=con_id_for("TSLA")))) == 1


def test_matching_symbols_by_prefix_and_name(ib: Any, server_version: int) -> None:
    first = ib.reqMatchingSymbols("intc")[0]
    assert first.contract.symbol == "INTC" and first.contract.primaryExchange == "NASDAQ"
    if server_version >= 176:
        assert first.contract.description == "INTEL CORP"
    assert [d.contract.symbol for d in ib.reqMatchingSymbols("AA")][:2] == ["AAL", "AAPL"]
    assert {"AMD", "MSFT", "MU"} <= {d.contract.symbol for d in ib.reqMatchingSymbols("micro")}
    assert ib.reqMatchingSymbols("zzzzq") == []


def test_other_security_types_get_a_clear_200(ib: Any) -> None:
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((code, msg))
    contracts = [Forex("EURUSD"), Option("SPY", "20261218", 600, "C", "SMART"), Future("ES", "202612", "CME"),
                 Index("SPX", "CBOE")]
    assert ib.qualifyContracts(*contracts) == [None, None, None, None]
    texts = [msg for code, msg in errors if code == 200]
    for kind in ("forex", "options", "futures", "indexes"):
        assert any(f"{kind} are not emulated" in t for t in texts), kind
    assert list(ib.reqHistoricalData(Forex("EURUSD"), "", "900 S", "10 secs", "MIDPOINT", True, 1)) == []


# -- tick data ------------------------------------------------------------------------------


def test_streaming_quotes_move_on_every_tick(ib: Any, emulator: Any, clock: Any) -> None:
    ticker = ib.reqMktData(qualified(ib, "AMD"), "233,236", False, False)
    ib_eventually(ib, lambda: ticker.last > 0 and ticker.volume > 0 and ticker.shortable == 3.0)
    seen = []
    for _ in range(10):
        clock.advance(seconds=1)
        emulator.tick()
        previous = (ticker.bidSize, ticker.askSize, ticker.lastSize, ticker.volume)
        ib_eventually(ib, lambda: (ticker.bidSize, ticker.askSize, ticker.lastSize, ticker.volume) != previous)
        seen.append((ticker.bidSize, ticker.askSize, ticker.lastSize, ticker.volume))
    volumes = [v for *_, v in seen]
    assert volumes == sorted(volumes) and len(set(volumes)) == 10  # the session volume grows every second
    assert len({s[:3] for s in seen}) > 5
    assert ticker.rtVolume == ticker.volume and ticker.shortableShares > 0


def test_generic_ticks_165_221_and_unknown_ones(ib: Any) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    ticker = ib.reqMktData(qualified(ib, "MSFT"), "165,221,100", False, False)
    ib_eventually(ib, lambda: ticker.high52week > 0 and ticker.markPrice > 0 and ticker.avVolume > 0)
    assert ticker.low52week <= ticker.low26week and ticker.high52week >= ticker.high13week
    ib_eventually(ib, lambda: 321 in errors)  # generic tick 100 (option volume) is not available


# -- account, P&L and ordering ------------------------------------------------------------


def test_account_values_and_summary_with_base_rows(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(commission=1)
    ib = client(emu)
    trade = ib.placeOrder(qualified(ib, "AAPL"), MarketOrder("BUY", 10))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled")
    values = lambda: {(v.tag, v.currency): v.value for v in ib.accountValues()}  # noqa: E731
    ib_eventually(ib, lambda: float(values()[("GrossPositionValue", "USD")]) > 0)
    v = values()
    cash, position = engine.cash, engine.position("AAPL")
    assert float(v[("TotalCashValue", "USD")]) == pytest.approx(float(cash))
    for cur in ("BASE", "USD"):
        assert float(v[("NetLiquidationByCurrency", cur)]) == pytest.approx(float(cash + position.market_value))
        assert float(v[("CashBalance", cur)]) == pytest.approx(float(cash))
        assert float(v[("UnrealizedPnL", cur)]) == pytest.approx(float(position.unrealized_pnl))
        assert float(v[("RealizedPnL", cur)]) == 0
    assert float(v[("BuyingPower", "USD")]) == pytest.approx(float(engine.account().buying_power))
    assert float(v[("AvailableFunds", "USD")]) == pytest.approx(float(cash))  # a cash account: 100% margin
    summary = {(s.tag, s.currency): s.value for s in ib.accountSummary()}
    assert {("NetLiquidation", "USD"), ("BuyingPower", "USD"), ("AccountType", ""),
            ("NetLiquidationByCurrency", "BASE"), ("NetLiquidationByCurrency", "USD")} <= set(summary)


def test_pnl_and_pnl_single_follow_the_price(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(commission=1)
    ib = client(emu)
    contract = qualified(ib, "AAPL")
    buy = ib.placeOrder(contract, MarketOrder("BUY", 10))
    ib_eventually(ib, lambda: buy.orderStatus.status == "Filled")
    pnl = ib.reqPnL(ACCOUNT)
    single = ib.reqPnLSingle(ACCOUNT, "", contract.conId)
    ib_eventually(ib, lambda: single.position == 10 and pnl.unrealizedPnL == pnl.unrealizedPnL)
    updates: list[Any] = []
    ib.pnlEvent += updates.append

    def price_moved() -> bool:
        clock.advance(minutes=1)
        emu.tick()
        return bool(updates)

    ib_eventually(ib, price_moved, interval=0.05)
    position = engine.position("AAPL")
    ib_eventually(ib, lambda: single.unrealizedPnL == pytest.approx(float(position.unrealized_pnl), abs=0.01))
    assert single.value == pytest.approx(float(position.market_value), abs=0.01)
    assert pnl.unrealizedPnL == pytest.approx(single.unrealizedPnL, abs=0.01)
    assert pnl.dailyPnL == pytest.approx(single.unrealizedPnL - 1, abs=0.01)  # bought today: less commission
    sell = ib.placeOrder(contract, MarketOrder("SELL", 10))
    ib_eventually(ib, lambda: sell.orderStatus.status == "Filled")
    gain = (sell.orderStatus.avgFillPrice - buy.orderStatus.avgFillPrice) * 10
    ib_eventually(ib, lambda: pnl.realizedPnL == pytest.approx(gain - 1, abs=0.01) and single.position == 0)


def test_what_if_estimates_margin_and_commission_without_placing(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(commission={"per_share": "0.005", "minimum": 1}, allow_short=True, slippage_bps=0)
    ib = client(emu)
    contract = qualified(ib, "AAPL")
    price = float(engine.prices.get_market_price("AAPL"))
    state = ib.whatIfOrder(contract, MarketOrder("SELL", 400))
    assert state.commission == pytest.approx(2.0) and state.commissionCurrency == "USD"  # 400 x 0.005
    assert float(state.initMarginChange) == pytest.approx(0.5 * 400 * price, abs=0.01)  # Reg T, short
    assert float(state.maintMarginChange) == pytest.approx(0.3 * 400 * price, abs=0.01)
    assert float(state.equityWithLoanAfter) == pytest.approx(float(state.equityWithLoanBefore) - 2.0, abs=0.01)
    assert engine.orders() == [] and ib.openTrades() == []
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert ib.whatIfOrder(contract, MarketOrder("BUY", 10_000)) == []  # beyond the buying power: 201
    assert 201 in errors and engine.orders() == []


def test_commission_on_every_fill_from_the_paper_rules(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway(commission={"per_share": "0.005", "minimum": 1}, partial_fill_fraction="0.5")
    ib = client(emu)
    trade = ib.placeOrder(qualified(ib, "AAPL"), MarketOrder("BUY", 600))
    ib_eventually(ib, lambda: len(trade.fills) == 1 and trade.fills[0].commissionReport.execId)
    clock.advance(minutes=1)
    emu.tick()
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 2
                  and all(f.commissionReport.execId for f in trade.fills))
    assert [f.commissionReport.commission for f in trade.fills] == \
        [float(f.commission) for f in engine.fills()] == [1.5, 1.5]
    assert sum(f.commissionReport.commission for f in ib.fills()) == 3.0


def test_executions_filter_by_time(gateway: Any, client: Any, clock: Any) -> None:
    emu, engine = gateway()
    ib = client(emu)
    contract = qualified(ib, "AAPL")
    for _ in range(2):
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        ib_eventually(ib, lambda: trade.orderStatus.status == "Filled")
        clock.advance(minutes=10)
    assert len(ib.reqExecutions()) == 2
    assert len(ib.reqExecutions(ExecutionFilter(time="20261118 15:05:00"))) == 1  # UTC, the gateway's zone
    assert len(ib.reqExecutions(ExecutionFilter(time="20261118-15:11:00"))) == 0
    assert len(ib.reqExecutions(ExecutionFilter(time="20261118 10:05:00 US/Eastern"))) == 1
    assert len(ib.reqExecutions(ExecutionFilter(side="SELL"))) == 0


def test_margin_account_sells_short(gateway: Any, client: Any) -> None:
    margin_emu, margin_engine = gateway(db=None, allow_short=True)
    assert margin_emu.margin
    ib = client(margin_emu)
    short = ib.placeOrder(qualified(ib, "AAPL"), LimitOrder("SELL", 20, 1.0))  # the ordering notebook's first order
    ib_eventually(ib, lambda: short.orderStatus.status == "Filled")
    assert margin_engine.position("AAPL").qty == -20
    usd = lambda tag: next(float(v.value) for v in ib.accountValues() if (v.tag, v.currency) == (tag, "USD"))  # noqa
    ib_eventually(ib, lambda: usd("GrossPositionValue") > 0)
    assert usd("MaintMarginReq") == pytest.approx(0.3 * usd("GrossPositionValue"), abs=0.05)  # Reg T, short
    assert usd("InitMarginReq") == pytest.approx(0.5 * usd("GrossPositionValue"), abs=0.05)


def test_cash_account_refuses_a_short_sale(ib: Any, emulator: Any) -> None:
    assert not emulator.margin
    errors: list[str] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(msg) if code == 201 else None
    trade = ib.placeOrder(qualified(ib, "AAPL"), MarketOrder("SELL", 5))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert any("short" in m for m in errors)


# -- refusals -------------------------------------------------------------------------------


def test_brackets_oca_and_trail_limit_are_refused_with_201(ib: Any, engine: Any) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code, msg))
    contract = qualified(ib, "AAPL")
    price = float(engine.prices.get_market_price("AAPL"))
    bracket = ib.bracketOrder("BUY", 10, round(price, 2), round(price * 1.1, 2), round(price * 0.9, 2))
    trades = [ib.placeOrder(contract, o) for o in bracket]
    oca = ib.oneCancelsAll([LimitOrder("BUY", 1, 50.0), LimitOrder("BUY", 1, 60.0)], "wb-oca-1", 1)
    trades += [ib.placeOrder(contract, o) for o in oca]
    trail = Order(action="SELL", orderType="TRAIL LIMIT", totalQuantity=1, auxPrice=1.0, lmtPriceOffset=0.1)
    trades.append(ib.placeOrder(contract, trail))
    ib_eventually(ib, lambda: all(t.orderStatus.status == "Cancelled" for t in trades))
    by_id = {r: msg for r, code, msg in errors if code == 201}
    assert all(t.order.orderId in by_id for t in trades)
    assert "bracket" in by_id[bracket[0].orderId] and "OCA" in by_id[oca[0].orderId]
    assert "TRAIL LIMIT orders are not supported" in by_id[trail.orderId]
    assert engine.orders() == []  # nothing accepted, so no OCA sibling can be left working
    assert Decimal(0) == sum((f.qty for f in engine.fills()), Decimal(0))


def test_other_managed_accounts_are_empty(engine: Any, client: Any, server_version: int) -> None:
    from workbench.emulators.tws import TwsEmulator

    emu = TwsEmulator(engine, port=0, server_version=server_version, accounts=("DU1111111", "DU2222222"),
                      tick_interval=None).start_in_thread()
    try:
        ib = client(emu, account="DU2222222")
        values = {(v.account, v.tag, v.currency): v.value for v in ib.accountValues()}
        assert float(values[("DU2222222", "NetLiquidation", "USD")]) == 0
        assert float(values[("DU2222222", "NetLiquidationByCurrency", "BASE")]) == 0
        summary = {(s.account, s.tag): float(s.value) for s in ib.accountSummary() if s.tag == "NetLiquidation"}
        assert summary == {("DU1111111", "NetLiquidation"): 100_000, ("DU2222222", "NetLiquidation"): 0}
    finally:
        emu.stop_thread()
