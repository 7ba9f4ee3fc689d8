"""Builders of server -> client messages for contracts, market data and history (ib_async 2.1.0 layouts).

Like :mod:`.messages`, each returns a list of fields; layouts follow ib_async's decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .codec import integer, num
from .messages import Instrument

# Incoming message ids (server -> client).
TICK_PRICE, TICK_SIZE, CONTRACT_DATA, HISTORICAL_DATA, SCANNER_PARAMETERS, SCANNER_DATA = 1, 2, 10, 17, 19, 20
RECEIVE_FA, TICK_GENERIC, TICK_STRING, REALTIME_BAR, CONTRACT_DATA_END = 16, 45, 46, 50, 52
TICK_SNAPSHOT_END, MARKET_DATA_TYPE, VERIFY_COMPLETED, DISPLAY_GROUP_LIST, DISPLAY_GROUP_UPDATED = 57, 58, 66, 67, 68
VERIFY_AND_AUTH_COMPLETED, SOFT_DOLLAR_TIERS, FAMILY_CODES, SYMBOL_SAMPLES, MKT_DEPTH_EXCHANGES = 70, 77, 78, 79, 80
TICK_REQ_PARAMS, SMART_COMPONENTS, NEWS_PROVIDERS, HEAD_TIMESTAMP, HISTORICAL_DATA_UPDATE = 81, 82, 85, 88, 90
MARKET_RULE, REPLACE_FA_END, HISTORICAL_SCHEDULE, USER_INFO = 93, 103, 106, 107

# Tick types (https://interactivebrokers.github.io/tws-api/tick_types.html).
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, HIGH, LOW, VOLUME, CLOSE, OPEN = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14
LOW_13W, HIGH_13W, LOW_26W, HIGH_26W, LOW_52W, HIGH_52W, AVG_VOLUME = 15, 16, 17, 18, 19, 20, 21
HIST_VOLATILITY, MARK_PRICE, LAST_TIMESTAMP, SHORTABLE, RT_VOLUME = 23, 37, 45, 46, 48
TRADE_COUNT, TRADE_RATE, VOLUME_RATE, LAST_RTH_TRADE, SHORTABLE_SHARES = 54, 55, 56, 57, 89
#: Live tick type -> its delayed twin (reqMarketDataType 3/4).
DELAYED = {BID: 66, ASK: 67, LAST: 68, BID_SIZE: 69, ASK_SIZE: 70, LAST_SIZE: 71, HIGH: 72, LOW: 73, VOLUME: 74,
           CLOSE: 75, OPEN: 76, LAST_TIMESTAMP: 88}


@dataclass(frozen=True)
class Details:
    """The gateway-side description of one contract row (contractData)."""

    inst: Instrument
    exchange: str
    valid_exchanges: str
    order_types: str
    time_zone_id: str
    trading_hours: str
    liquid_hours: str
    market_rule_ids: str


def contract_data(sv: int, req_id: int, d: Details) -> list[Any]:
    inst = d.inst
    fields: list[Any] = [CONTRACT_DATA]
    if sv < 164:
        fields.append(8)
    fields += [integer(req_id), inst.symbol, inst.sec_type, "", "0", "", d.exchange, inst.currency, inst.symbol,
               inst.trading_class, inst.trading_class, integer(inst.con_id), num(inst.min_tick)]
    if sv < 164:
        fields.append(1)  # mdSizeMultiplier
    fields += ["", d.order_types, d.valid_exchanges, 1, 0, inst.long_name or inst.symbol, inst.primary_exchange,
               "", inst.industry, inst.category, "", d.time_zone_id, d.trading_hours, d.liquid_hours, "", "", 0]
    fields += [1, "", "", d.market_rule_ids, "", inst.stock_type]  # aggGroup ... stockType
    if sv >= 164:
        fields += ["0.0001", "0.0001", "100"]  # minSize, sizeIncrement, suggestedSizeIncrement
    return fields


def contract_data_end(req_id: int) -> list[Any]:
    return [CONTRACT_DATA_END, 1, integer(req_id)]


def symbol_samples(sv: int, req_id: int, insts: Sequence[Instrument]) -> list[Any]:
    f: list[Any] = [SYMBOL_SAMPLES, integer(req_id), integer(len(insts))]
    for inst in insts:
        f += [integer(inst.con_id), inst.symbol, inst.sec_type, inst.primary_exchange, inst.currency, 0]
        if sv >= 176:
            f += [inst.long_name, ""]  # description, issuerId
    return f


def market_rule(rule_id: int, increments: Iterable[tuple[float, float]]) -> list[Any]:
    pairs = list(increments)
    f: list[Any] = [MARKET_RULE, integer(rule_id), integer(len(pairs))]
    for low_edge, increment in pairs:
        f += [num(low_edge), num(increment)]
    return f


def tick_price(req_id: int, tick_type: int, price: Any, size: Any = 0, attrs: int = 0) -> list[Any]:
    return [TICK_PRICE, 6, integer(req_id), integer(tick_type), num(price), num(size), integer(attrs)]


def tick_size(req_id: int, tick_type: int, size: Any) -> list[Any]:
    return [TICK_SIZE, 6, integer(req_id), integer(tick_type), num(size)]


def tick_string(req_id: int, tick_type: int, value: str) -> list[Any]:
    return [TICK_STRING, 6, integer(req_id), integer(tick_type), value]


def tick_generic(req_id: int, tick_type: int, value: Any) -> list[Any]:
    return [TICK_GENERIC, 6, integer(req_id), integer(tick_type), num(value)]


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, permissions: int) -> list[Any]:
    return [TICK_REQ_PARAMS, integer(req_id), num(min_tick), bbo_exchange, integer(permissions)]


def market_data_type(req_id: int, kind: int) -> list[Any]:
    return [MARKET_DATA_TYPE, 1, integer(req_id), integer(kind)]


def tick_snapshot_end(req_id: int) -> list[Any]:
    return [TICK_SNAPSHOT_END, 1, integer(req_id)]


#: One bar as the emulator builds it: (date, open, high, low, close, volume, wap, count).
Bar = tuple[str, Any, Any, Any, Any, Any, Any, int]


def historical_data(req_id: int, start: str, end: str, bars: Sequence[Bar]) -> list[Any]:
    f: list[Any] = [HISTORICAL_DATA, integer(req_id), start, end, integer(len(bars))]
    for date, o, h, low, c, v, wap, count in bars:
        f += [date, num(o), num(h), num(low), num(c), num(v), num(wap), integer(count)]
    return f


def historical_data_update(req_id: int, bar: Bar) -> list[Any]:
    date, o, h, low, c, v, wap, count = bar  # note the order on the wire: open, close, high, low
    return [HISTORICAL_DATA_UPDATE, integer(req_id), integer(count), date, num(o), num(c), num(h), num(low), num(wap),
            num(v)]


def historical_schedule(req_id: int, start: str, end: str, tz: str,
                        sessions: Sequence[tuple[str, str, str]]) -> list[Any]:
    f: list[Any] = [HISTORICAL_SCHEDULE, integer(req_id), start, end, tz, integer(len(sessions))]
    for session in sessions:
        f += list(session)
    return f


def head_timestamp(req_id: int, stamp: str) -> list[Any]:
    return [HEAD_TIMESTAMP, integer(req_id), stamp]


def realtime_bar(req_id: int, epoch: int, o: Any, h: Any, low: Any, c: Any, volume: Any, wap: Any,
                 count: int) -> list[Any]:
    return [REALTIME_BAR, 3, integer(req_id), integer(epoch), num(o), num(h), num(low), num(c), num(volume), num(wap),
            integer(count)]


def scanner_data(req_id: int, insts: Sequence[Instrument]) -> list[Any]:
    """scannerData: rank, the contract (as a scan result carries it), distance, benchmark, projection, legs."""
    f: list[Any] = [SCANNER_DATA, 3, integer(req_id), integer(len(insts))]
    for rank, inst in enumerate(insts):
        f += [integer(rank), integer(inst.con_id), inst.symbol, inst.sec_type, "", "0", "", "SMART", inst.currency,
              inst.symbol, inst.trading_class, inst.trading_class, "", "", "", ""]
    return f


# -- answers carrying no data (the account has none of it) -----------------------------------

def scanner_parameters(xml: str) -> list[Any]:
    return [SCANNER_PARAMETERS, 1, xml]


def news_providers() -> list[Any]:
    return [NEWS_PROVIDERS, 0]


def family_codes(account: str) -> list[Any]:
    return [FAMILY_CODES, 1, account, ""]


def mkt_depth_exchanges() -> list[Any]:
    return [MKT_DEPTH_EXCHANGES, 0]


def smart_components(req_id: int) -> list[Any]:
    return [SMART_COMPONENTS, integer(req_id), 0]


def soft_dollar_tiers(req_id: int) -> list[Any]:
    return [SOFT_DOLLAR_TIERS, integer(req_id), 0]


def user_info(req_id: int) -> list[Any]:
    return [USER_INFO, integer(req_id), ""]


def verify_completed(auth: bool, text: str) -> list[Any]:
    return [VERIFY_AND_AUTH_COMPLETED if auth else VERIFY_COMPLETED, 1, "0", text]


def display_group_list(req_id: int) -> list[Any]:
    return [DISPLAY_GROUP_LIST, 1, integer(req_id), ""]


def display_group_updated(req_id: int) -> list[Any]:
    return [DISPLAY_GROUP_UPDATED, 1, integer(req_id), ""]


def receive_fa(fa_type: int) -> list[Any]:
    return [RECEIVE_FA, 1, integer(fa_type), ""]


def replace_fa_end(req_id: int, text: str) -> list[Any]:
    return [REPLACE_FA_END, integer(req_id), text]
