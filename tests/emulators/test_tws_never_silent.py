"""Never silence: every request ib_async 2.1.0 can send gets data or an IB error for its reqId within a second.

The message ids are read from ib_async's own ``Client`` source, so a request this table does not cover
fails the test. Each probe goes through ib_async's public API (the async twin of what a notebook calls)
and passes when the *client* has its answer: the future completed (with data, or a ``RequestError``
for an IB error), the ticker / bars / P&L object was filled, or an error event for the reqId arrived.
Requests a client cannot observe an answer to (no ib_async callback: verify, display groups, FA
replace, family codes, ids...) are checked at the wire: the emulator sent the protocol's answer.
Cancels and settings have no answer in the protocol: the emulator must consume them and keep serving.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from .conftest import ACCOUNT

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, LimitOrder, MarketOrder, RequestError, ScannerSubscription, Stock, util  # noqa: E402
from ib_async.objects import WshEventData  # noqa: E402

pytestmark = pytest.mark.timeout(120)
DEADLINE = 1.0


def outgoing_message_ids() -> set[int]:
    """Every message id ib_async 2.1.0's Client can send."""
    source = inspect.getsource(ib_async.client.Client)
    return {int(x) for x in re.findall(r"(?:self\.send\(|fields = \[)\s*(\d+)\s*[,)]", source)}


@dataclass
class Ctx:
    ib: Any
    emu: Any
    contract: Any
    clock: Any
    errors: list[tuple[int, int, str]]  # (reqId, code, text) of every error event


async def until(predicate: Callable[[], object]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def answered(awaitable: Awaitable[Any]) -> None:
    """Data, or the IB error the gateway answered with (RaiseRequestErrors is on)."""
    try:
        result = await awaitable
    except RequestError:
        return
    assert result is not None


async def error_for(ctx: Ctx, send: Callable[[], int]) -> None:
    req_id = send()
    await until(lambda: any(r == req_id for r, _, _ in ctx.errors))


async def on_wire(ctx: Ctx, send: Callable[[], None], *answer_ids: int) -> None:
    client_id = ctx.ib.client.clientId
    before = len(ctx.emu.responses(client_id))
    send()
    await until(lambda: set(answer_ids) <= set(ctx.emu.responses(client_id)[before:]))


async def silent(ctx: Ctx, send: Callable[[], None], msg_id: int) -> None:
    """No answer exists: the emulator read the message and still answers the next request."""
    client_id = ctx.ib.client.clientId
    before = len(ctx.emu.requests(client_id))
    send()
    assert await ctx.ib.reqCurrentTimeAsync()
    assert msg_id in [int(f[0]) for f in ctx.emu.requests(client_id)[before:]]


async def resting(ctx: Ctx) -> Any:
    trade = ctx.ib.placeOrder(ctx.contract, LimitOrder("BUY", 1, 50.0))
    await until(lambda: trade.orderStatus.status == "Submitted")
    return trade


async def cancel_order(ctx: Ctx) -> None:
    trade = await resting(ctx)
    ctx.ib.cancelOrder(trade.order)
    await until(lambda: trade.orderStatus.status == "Cancelled")


async def global_cancel(ctx: Ctx) -> None:
    trade = await resting(ctx)
    ctx.ib.reqGlobalCancel()
    await until(lambda: trade.orderStatus.status == "Cancelled")


async def market_order(ctx: Ctx) -> None:
    trade = ctx.ib.placeOrder(ctx.contract, MarketOrder("BUY", 1))
    await until(lambda: trade.orderStatus.status == "Filled" and trade.fills)


async def streaming(ctx: Ctx) -> None:
    ticker = ctx.ib.reqMktData(ctx.contract, "233,236", False, False)
    await until(lambda: ticker.last > 0 and ticker.volume > 0)
    ctx.ib.cancelMktData(ctx.contract)


async def realtime_bars(ctx: Ctx) -> None:
    bars = ctx.ib.reqRealTimeBars(ctx.contract, 5, "TRADES", False)

    def ticked() -> bool:  # the emulator may not have read the request yet: move its clock until a bar comes
        ctx.clock.advance(seconds=5)
        ctx.emu.tick()
        return len(bars) > 0

    await until(ticked)
    ctx.ib.cancelRealTimeBars(bars)


async def pnl(ctx: Ctx, single: bool) -> None:
    value = ctx.ib.reqPnLSingle(ACCOUNT, "", ctx.contract.conId) if single else ctx.ib.reqPnL(ACCOUNT)
    await until(lambda: value.unrealizedPnL == value.unrealizedPnL)  # not nan: the first figures arrived
    (ctx.ib.cancelPnLSingle(ACCOUNT, "", ctx.contract.conId) if single else ctx.ib.cancelPnL(ACCOUNT))


def req_id_of(ctx: Ctx, call: Callable[[int], None]) -> int:
    req_id = ctx.ib.client.getReqId()
    call(req_id)
    return req_id


c = lambda ctx: ctx.contract  # noqa: E731
cl = lambda ctx: ctx.ib.client  # noqa: E731
PROBES: dict[int, Callable[[Ctx], Awaitable[None]]] = {
    1: streaming,
    2: lambda x: silent(x, lambda: cl(x).cancelMktData(9_999), 2),
    3: market_order,
    4: cancel_order,
    5: lambda x: answered(x.ib.reqOpenOrdersAsync()),
    6: lambda x: answered(x.ib.reqAccountUpdatesAsync(ACCOUNT)),
    7: lambda x: answered(x.ib.reqExecutionsAsync()),
    8: lambda x: on_wire(x, lambda: cl(x).reqIds(1), 9),
    9: lambda x: answered(x.ib.reqContractDetailsAsync(c(x))),
    10: lambda x: error_for(x, lambda: req_id_of(x, lambda r: cl(x).reqMktDepth(r, c(x), 5, False, []))),
    11: lambda x: silent(x, lambda: cl(x).cancelMktDepth(9_999, False), 11),
    12: lambda x: silent(x, lambda: x.ib.reqNewsBulletins(True), 12),
    13: lambda x: silent(x, lambda: x.ib.cancelNewsBulletins(), 13),
    14: lambda x: silent(x, lambda: cl(x).setServerLogLevel(3), 14),
    15: lambda x: silent(x, lambda: cl(x).reqAutoOpenOrders(True), 15),
    16: lambda x: answered(x.ib.reqAllOpenOrdersAsync()),
    17: lambda x: on_wire(x, lambda: cl(x).reqManagedAccts(), 15),
    18: lambda x: answered(x.ib.requestFAAsync(1)),
    19: lambda x: on_wire(x, lambda: x.ib.replaceFA(1, "<xml/>"), 103),
    20: lambda x: answered(x.ib.reqHistoricalDataAsync(c(x), "", "2 D", "1 hour", "TRADES", True)),
    21: lambda x: error_for(x, lambda: req_id_of(x, lambda r: cl(x).exerciseOptions(r, c(x), 1, 1, ACCOUNT, 0))),
    22: lambda x: answered(x.ib.reqScannerDataAsync(ScannerSubscription("STK", "STK.US.MAJOR", "TOP_PERC_GAIN"))),
    23: lambda x: silent(x, lambda: cl(x).cancelScannerSubscription(9_999), 23),
    24: lambda x: answered(x.ib.reqScannerParametersAsync()),
    25: lambda x: silent(x, lambda: cl(x).cancelHistoricalData(9_999), 25),
    49: lambda x: answered(x.ib.reqCurrentTimeAsync()),
    50: realtime_bars,
    51: lambda x: silent(x, lambda: cl(x).cancelRealTimeBars(9_999), 51),
    52: lambda x: answered(x.ib.reqFundamentalDataAsync(c(x), "ReportSnapshot")),
    53: lambda x: silent(x, lambda: cl(x).cancelFundamentalData(9_999), 53),
    54: lambda x: answered(x.ib.calculateImpliedVolatilityAsync(c(x), 1.0, 100.0)),
    55: lambda x: answered(x.ib.calculateOptionPriceAsync(c(x), 0.3, 100.0)),
    56: lambda x: silent(x, lambda: cl(x).cancelCalculateImpliedVolatility(9_999), 56),
    57: lambda x: silent(x, lambda: cl(x).cancelCalculateOptionPrice(9_999), 57),
    58: global_cancel,
    59: lambda x: silent(x, lambda: x.ib.reqMarketDataType(1), 59),
    61: lambda x: answered(x.ib.reqPositionsAsync()),
    62: lambda x: answered(x.ib.reqAccountSummaryAsync()),
    63: lambda x: silent(x, lambda: cl(x).cancelAccountSummary(9_999), 63),
    64: lambda x: silent(x, lambda: cl(x).cancelPositions(), 64),
    65: lambda x: on_wire(x, lambda: cl(x).verifyRequest("workbench", "1"), 66),
    66: lambda x: on_wire(x, lambda: cl(x).verifyMessage("data"), 66),
    67: lambda x: on_wire(x, lambda: cl(x).queryDisplayGroups(9_001), 67),
    68: lambda x: on_wire(x, lambda: cl(x).subscribeToGroupEvents(9_002, 1), 68),
    69: lambda x: on_wire(x, lambda: cl(x).updateDisplayGroup(9_002, "8314@SMART"), 68),
    70: lambda x: silent(x, lambda: cl(x).unsubscribeFromGroupEvents(9_002), 70),
    71: lambda x: silent(x, lambda: cl(x).startApi(), 71),  # connecting sent the first; a repeat is ignored
    72: lambda x: on_wire(x, lambda: cl(x).verifyAndAuthRequest("workbench", "1", "key"), 70),
    73: lambda x: on_wire(x, lambda: cl(x).verifyAndAuthMessage("data", "response"), 70),
    74: lambda x: on_wire(x, lambda: cl(x).reqPositionsMulti(9_003, ACCOUNT, ""), 72),
    75: lambda x: silent(x, lambda: cl(x).cancelPositionsMulti(9_003), 75),
    76: lambda x: answered(x.ib.reqAccountUpdatesMultiAsync(ACCOUNT)),
    77: lambda x: silent(x, lambda: cl(x).cancelAccountUpdatesMulti(9_999), 77),
    78: lambda x: answered(x.ib.reqSecDefOptParamsAsync("AAPL", "", "STK", c(x).conId)),
    79: lambda x: on_wire(x, lambda: cl(x).reqSoftDollarTiers(9_004), 77),
    80: lambda x: on_wire(x, lambda: cl(x).reqFamilyCodes(), 78),
    81: lambda x: answered(x.ib.reqMatchingSymbolsAsync("AA")),
    82: lambda x: answered(x.ib.reqMktDepthExchangesAsync()),
    83: lambda x: answered(x.ib.reqSmartComponentsAsync("a6")),
    84: lambda x: answered(x.ib.reqNewsArticleAsync("BRFG", "BRFG$0123")),
    85: lambda x: answered(x.ib.reqNewsProvidersAsync()),
    86: lambda x: answered(x.ib.reqHistoricalNewsAsync(c(x).conId, "BRFG", "", "", 10)),
    87: lambda x: answered(x.ib.reqHeadTimeStampAsync(c(x), "TRADES", True, 1)),
    88: lambda x: answered(x.ib.reqHistogramDataAsync(c(x), True, "1 week")),
    89: lambda x: silent(x, lambda: cl(x).cancelHistogramData(9_999), 89),
    90: lambda x: silent(x, lambda: cl(x).cancelHeadTimeStamp(9_999), 90),
    91: lambda x: answered(x.ib.reqMarketRuleAsync(26)),
    92: lambda x: pnl(x, single=False),
    93: lambda x: silent(x, lambda: cl(x).cancelPnL(9_999), 93),
    94: lambda x: pnl(x, single=True),
    95: lambda x: silent(x, lambda: cl(x).cancelPnLSingle(9_999), 95),
    96: lambda x: answered(x.ib.reqHistoricalTicksAsync(c(x), x.clock() - timedelta(hours=1), "", 100, "TRADES",
                                                         True)),
    97: lambda x: error_for(x, lambda: req_id_of(x, lambda r: cl(x).reqTickByTickData(r, c(x), "Last", 0, False))),
    98: lambda x: silent(x, lambda: cl(x).cancelTickByTickData(9_999), 98),
    99: lambda x: answered(x.ib.reqCompletedOrdersAsync(False)),
    100: lambda x: answered(x.ib.getWshMetaDataAsync()),
    101: lambda x: silent(x, lambda: cl(x).cancelWshMetaData(9_999), 101),
    102: lambda x: answered(x.ib.getWshEventDataAsync(WshEventData(conId=c(x).conId))),
    103: lambda x: silent(x, lambda: cl(x).cancelWshEventData(9_999), 103),
    104: lambda x: answered(x.ib.reqUserInfoAsync()),
}


def test_the_table_covers_every_message_ib_async_sends() -> None:
    assert outgoing_message_ids() == set(PROBES)


def _probing(ib: IB, emulator: Any, clock: Any) -> Ctx:
    """A probe context on a connected client that records every error event (request errors raise)."""
    ib.RaiseRequestErrors = True
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code, msg))
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    return Ctx(ib, emulator, contract, clock, errors)


def test_every_request_gets_data_or_an_error_within_a_second(connect: Any, emulator: Any, clock: Any,
                                                             server_version: int) -> None:
    ctx = _probing(connect(41), emulator, clock)
    ib = ctx.ib
    silent_ids = []
    for msg_id, probe in sorted(PROBES.items()):
        try:
            util.run(asyncio.wait_for(probe(ctx), DEADLINE))
        except (TimeoutError, asyncio.TimeoutError):
            silent_ids.append(msg_id)
    assert silent_ids == [], f"no answer within {DEADLINE} s to message ids {silent_ids}"
    assert ib.isConnected()


def test_each_refusal_is_the_ib_code_with_a_text_naming_the_request(connect: Any, emulator: Any, clock: Any) -> None:
    """reqMktDepth -> 10092 "... reqMktDepth is not supported by the workbench emulator ...", and so on for every
    request the emulator refuses: the user reads which call it was, not only a code."""
    from workbench.emulators.tws.unsupported import UNSUPPORTED

    ctx = _probing(connect(42), emulator, clock)
    errors = ctx.errors
    assert UNSUPPORTED[10].code == 10092
    for msg_id, refusal in sorted(UNSUPPORTED.items()):
        assert callable(getattr(ib_async.client.Client, refusal.name, None)), f"{refusal.name}: not a TWS API request"
        before = len(errors)
        util.run(asyncio.wait_for(PROBES[msg_id](ctx), DEADLINE))
        util.run(asyncio.wait_for(until(lambda: len(errors) > before), DEADLINE))
        (_, code, text), = errors[before:]
        assert code == refusal.code and f"{refusal.name} is not supported by the workbench emulator" in text, \
            (msg_id, code, text)
