"""Request handlers for contracts, market data, history, real-time bars and P&L (registered in HANDLERS).

:func:`push_market_data` runs on every emulator tick: streaming quotes, keepUpToDate bars, 5-second
real-time bars, scanner subscriptions and P&L updates for one connection.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workbench.core.calendar import Session as MarketSession

from . import history as hist
from . import messages_data as md
from .codec import to_int
from .handlers import HANDLERS, NO_SECDEF, handles
from .instruments import MARKET_RULES, OTHER_SEC_TYPES
from .messages import pnl, pnl_single
from .quotes import GENERIC_TICKS, Stream
from .scanner import push_scanners
from .subscriptions import HistorySub, PnlSub, RealTimeSub

if TYPE_CHECKING:
    from .messages import Instrument
    from .server import Session

log = logging.getLogger(__name__)

MAX_REALTIME_BACKLOG = 120  # 10 minutes of 5-second bars after a jump of the clock
KEEP_UP_MAX_DAYS = 10  # keepUpToDate catches up at most this far after a jump of the clock
__all__ = ["push_market_data", "push_pnl", "HANDLERS"]


def _now(s: Session) -> datetime:
    return s.server.engine.clock()


def _resolve(s: Session, req_id: int, con_id: str, symbol: str, sec_type: str, currency: str,
             primary: str = "") -> Instrument | None:
    """The instrument of a request's contract, or None after error 200 (naming what is not emulated)."""
    inst = s.server.catalog.resolve(to_int(con_id), symbol, sec_type, currency, primary,
                                    extra=s.server.bridge.traded_symbols())
    if inst is None:
        other = OTHER_SEC_TYPES.get((sec_type or "").upper())
        s.error(req_id, 200, f"{NO_SECDEF}: {other} are not emulated (US stocks and ETFs are)" if other else NO_SECDEF)
    return inst


# -- contracts ------------------------------------------------------------------------------

@handles(9)
def req_contract_details(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    inst = _resolve(s, req_id, f[3], f[4] or f[13], f[5], f[12], f[11])
    if inst is None:
        return
    rows = s.server.catalog.details(inst, f[10], _now(s), by_con_id=to_int(f[3]) != 0)
    if not rows:
        s.error(req_id, 200, f"{NO_SECDEF}: {inst.symbol} does not trade on {f[10]}")
        return
    for row in rows:
        s.send(md.contract_data(s.sv, req_id, row))
    s.send(md.contract_data_end(req_id))


@handles(81)
def req_matching_symbols(s: Session, f: list[str]) -> None:
    s.send(md.symbol_samples(s.sv, to_int(f[1]), s.server.catalog.search(f[2] if len(f) > 2 else "")))


@handles(91)
def req_market_rule(s: Session, f: list[str]) -> None:
    rule_id = to_int(f[1])
    s.send(md.market_rule(rule_id, MARKET_RULES.get(rule_id, ())))


# -- market data ----------------------------------------------------------------------------

@handles(1)
def req_mkt_data(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    inst = _resolve(s, req_id, f[3], f[4] or f[13], f[5], f[12])  # combos (BAG) too: 200, which ends a snapshot
    if inst is None:
        return
    idx = 15 + (3 if f[15] == "1" else 0)
    generic, snapshot = f[idx + 1], f[idx + 2] == "1" or (len(f) > idx + 3 and f[idx + 3] == "1")
    delayed = s.market_data_type in (3, 4)
    if not s.server.live_data and not delayed:  # no subscription: IB answers 354, which ends the request
        s.error(req_id, 354, "Requested market data is not subscribed. Delayed market data is available.")
        return
    feed = s.server.feed
    s.send(md.market_data_type(req_id, s.market_data_type if delayed else 1))
    s.send(md.tick_req_params(req_id, inst.min_tick, "9c0001", 3))
    quote = feed.quote(inst.symbol, _now(s))
    if snapshot:
        for message in feed.snapshot_messages(req_id, quote, delayed):
            s.send(message)
        s.send(md.tick_snapshot_end(req_id))
        return
    ticks = frozenset(t.strip() for t in generic.split(",") if t.strip())
    unknown = sorted(ticks - GENERIC_TICKS)
    if unknown:
        s.error(req_id, 321, f"Error validating request:-'bW' : cause - generic ticks {','.join(unknown)} are not "
                             f"available from the workbench emulator (it answers {','.join(sorted(GENERIC_TICKS))})")
    stream = Stream(inst.symbol, ticks & GENERIC_TICKS, delayed)
    s.subs.market[req_id] = stream
    for message in feed.stream_messages(req_id, stream, quote):
        s.send(message)


@handles(2)
def cancel_mkt_data(s: Session, f: list[str]) -> None:
    s.subs.market.pop(to_int(f[2]), None)


# -- history --------------------------------------------------------------------------------

@handles(20)
def req_historical_data(s: Session, f: list[str]) -> None:
    req_id = to_int(f[1])
    inst = _resolve(s, req_id, f[2], f[3] or f[12], f[4], f[11])
    if inst is None:
        return
    end_text, bar_size, duration, use_rth, what = f[15], f[16], f[17], f[18] == "1", f[19]
    format_date = to_int(f[20], 1)
    keep_up = (f[21] if len(f) > 21 else "0") == "1"
    engine = s.server.engine
    try:
        end = hist.parse_end(end_text, _now(s))
        start, end, sessions = hist.request_range(engine.calendar, duration, end, _now(s))
        if what.upper() == "SCHEDULE":
            first, last, tz, rows = hist.schedule(engine.calendar, sessions, use_rth)
            s.send(md.historical_schedule(req_id, first, last, tz, rows))
            return
        if keep_up and end_text.strip():
            raise hist.HistoryError("End date not supported with live updates (keepUpToDate needs endDateTime='')")
        head = getattr(engine.prices, "first_timestamp", None)
        if head is not None and start < head:  # the data begins inside the range: the bars there are, as IB does
            start, sessions = head, [x for x in sessions if x.close > head]
        spec = hist.parse_bar_spec(inst.symbol, bar_size, what, format_date)
        bars = hist.build_bars(engine.prices, spec, start, end, sessions)
    except hist.HistoryError as exc:
        s.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
        return
    except Exception as exc:  # the provider failed (e.g. out of its range)
        s.error(req_id, 162, f"Historical Market Data Service error message:{getattr(exc, 'message', exc)}")
        return
    if not bars and not keep_up:
        s.error(req_id, 162, f"Historical Market Data Service error message:HMDS query returned no data: "
                             f"{inst.symbol}@SMART {what.title()}")
        return
    s.send(md.historical_data(req_id, hist.range_stamp(start, format_date), hist.range_stamp(end, format_date), bars))
    if keep_up:
        s.subs.history[req_id] = HistorySub(spec, bars[-1] if bars else None)


@handles(25)
def cancel_historical_data(s: Session, f: list[str]) -> None:
    s.subs.history.pop(to_int(f[2]), None)


@handles(87)
def req_head_timestamp(s: Session, f: list[str]) -> None:
    req_id = to_int(f[1])
    inst = _resolve(s, req_id, f[2], f[3] or f[12], f[4], f[11])
    if inst is None:
        return
    first = getattr(s.server.engine.prices, "first_timestamp", None)
    if first is None:
        s.error(req_id, 162, f"Historical Market Data Service error message:the head timestamp of {inst.symbol} is "
                             f"not known to the {getattr(s.server.engine.prices, 'name', 'price')} provider")
        return
    s.send(md.head_timestamp(req_id, hist.head_timestamp(first, to_int(f[17], 1) if len(f) > 17 else 1)))


@handles(90)
def cancel_head_timestamp(s: Session, f: list[str]) -> None:
    """The head timestamp is answered at once: nothing to cancel."""


@handles(50)
def req_real_time_bars(s: Session, f: list[str]) -> None:
    req_id = to_int(f[2])
    inst = _resolve(s, req_id, f[3], f[4] or f[13], f[5], f[12])
    if inst is None:
        return
    bar_size, what = to_int(f[15], 5), (f[16] or "TRADES").upper()
    if bar_size != 5 or what not in ("TRADES", "MIDPOINT", "BID", "ASK"):
        s.error(req_id, 162, f"Historical Market Data Service error message:real-time bars are 5 seconds of TRADES, "
                             f"MIDPOINT, BID or ASK (got {bar_size} s of {what})")
        return
    s.subs.realtime[req_id] = RealTimeSub(inst.symbol, what, f[17] == "1", hist.align(_now(s), 5))


@handles(51)
def cancel_real_time_bars(s: Session, f: list[str]) -> None:
    s.subs.realtime.pop(to_int(f[2]), None)


# -- P&L ------------------------------------------------------------------------------------

@handles(92)
def req_pnl(s: Session, f: list[str]) -> None:
    req_id = to_int(f[1])
    s.subs.pnl[req_id] = PnlSub(None)
    _push_pnl(s, req_id, s.subs.pnl[req_id])


@handles(94)
def req_pnl_single(s: Session, f: list[str]) -> None:
    req_id = to_int(f[1])
    inst = s.server.catalog.by_con_id(to_int(f[4]), s.server.bridge.traded_symbols())
    if inst is None:
        s.error(req_id, 200, f"{NO_SECDEF}: no contract with conId {f[4]}")
        return
    s.subs.pnl[req_id] = PnlSub(inst.symbol)
    _push_pnl(s, req_id, s.subs.pnl[req_id])


@handles(93, 95)
def cancel_pnl(s: Session, f: list[str]) -> None:
    s.subs.pnl.pop(to_int(f[1]), None)


def _push_pnl(s: Session, req_id: int, sub: PnlSub) -> None:
    model = s.server.bridge.model
    figures: tuple[Decimal, ...] = model.pnl() if sub.symbol is None else model.single(sub.symbol)
    if figures == sub.last:
        return
    sub.last = figures
    s.send(pnl(req_id, *figures) if sub.symbol is None else pnl_single(req_id, *figures))


# -- every tick -----------------------------------------------------------------------------

def push_market_data(s: Session, now: datetime) -> None:
    """Streaming quotes, keepUpToDate bars, real-time bars, scanners and P&L of one connection."""
    for req_id, stream in list(s.subs.market.items()):
        _guarded(lambda: [s.send(msg) for msg in
                          s.server.feed.stream_messages(req_id, stream, s.server.feed.quote(stream.symbol, now))],
                 stream.symbol)
    for req_id, sub in list(s.subs.history.items()):
        _guarded(lambda: _push_history(s, req_id, sub, now), sub.spec.symbol)
    for req_id, rt in list(s.subs.realtime.items()):
        _guarded(lambda: _push_realtime(s, req_id, rt, now), rt.symbol)
    push_scanners(s, now, _guarded)
    push_pnl(s)


def push_pnl(s: Session) -> None:
    """P&L subscriptions whose figures changed (on ticks and after fills)."""
    for req_id, sub in list(s.subs.pnl.items()):
        _guarded(lambda: _push_pnl(s, req_id, sub), sub.symbol or "P&L")


def _guarded(job: Any, what: str) -> None:
    try:
        job()
    except Exception as exc:  # a data outage must not stop the other subscriptions
        log.warning("streaming update for %s failed: %s", what, exc)


def _push_history(s: Session, req_id: int, sub: HistorySub, now: datetime) -> None:
    """Update the last bar and append new ones: every bar from the last one sent up to now."""
    engine = s.server.engine
    since = max(_bar_time(sub.last[0], sub.spec) if sub.last else now, now - timedelta(days=KEEP_UP_MAX_DAYS))
    sessions = [x for x in engine.calendar.sessions(since.astimezone(hist.NY_TZ).date(), now.date())
                if x.open < now and x.close > since]
    if not sessions:
        return
    for bar in hist.build_bars(engine.prices, sub.spec, max(since, sessions[0].open), now, sessions):
        if sub.last is not None and (_later(sub.last[0], bar[0], sub.spec) or bar == sub.last):
            continue
        s.send(md.historical_data_update(req_id, bar))
        sub.last = bar


def _bar_time(text: str, spec: hist.BarSpec) -> datetime:
    """When a bar (as the emulator dates it) starts."""
    if not spec.intraday:
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=hist.NY_TZ)
    if spec.format_date == 2:
        return datetime.fromtimestamp(int(text), UTC)
    return hist.parse_end(text, datetime.now(UTC))


def _later(a: str, b: str, spec: hist.BarSpec) -> bool:
    """Whether bar date ``a`` is after ``b`` (dates of one spec sort as text, epoch seconds as numbers)."""
    return int(a) > int(b) if spec.format_date == 2 and spec.intraday else a > b


def _push_realtime(s: Session, req_id: int, rt: RealTimeSub, now: datetime) -> None:
    end = hist.align(now, 5)
    if end <= rt.next_start:
        return
    start = max(rt.next_start, end - timedelta(seconds=5 * MAX_REALTIME_BACKLOG))
    engine = s.server.engine
    if rt.use_rth:
        sessions = engine.calendar.sessions(start.date() - timedelta(days=1), end.date() + timedelta(days=1))
    else:  # the provider's path runs around the clock: outside the session too
        sessions = [MarketSession(end.date(), start, end)]
    spec = hist.BarSpec(rt.symbol, 5, "sec", rt.what, 2)
    for date, o, h, low, c, v, wap, count in hist.build_bars(engine.prices, spec, start, end, sessions):
        s.send(md.realtime_bar(req_id, int(date), o, h, low, c, v, wap, count))  # MIDPOINT/BID/ASK: -1, as IB
    rt.next_start = end
