"""Requests the emulator does not serve are answered, never dropped: ``UNSUPPORTED[msgId]`` says how.

A gateway that cannot serve a request answers with an ``error`` for its reqId, which completes the
client's future (ib_async's default ``RequestTimeout=0`` would otherwise block a notebook cell
forever). Requests that have no reqId (ib_async waits on them by name) get the empty answer a
gateway gives an account that has none of the data. Cancels and settings have no answer in the
protocol; they are accepted silently. Message ids outside ib_async 2.1.0's set get error 503, as a
gateway answers a client newer than itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import messages_data as md
from .codec import to_int

if TYPE_CHECKING:
    from .server import Session

__all__ = ["UNSUPPORTED", "SILENT", "answer_unsupported", "request_id", "REQ_ID_FIELD"]

log = logging.getLogger(__name__)

_NOT = "is not supported by the workbench emulator"


@dataclass(frozen=True)
class Refusal:
    """An error for the request's reqId (field ``req_field`` of the request)."""

    name: str
    code: int
    text: str
    req_field: int


#: msgId -> how an unserved request is refused.
UNSUPPORTED: dict[int, Refusal] = {
    10: Refusal("reqMktDepth", 10092, f"Deep market data: reqMktDepth {_NOT} (no order book is simulated)", 2),
    21: Refusal("exerciseOptions", 200, f"No security definition has been found for the request: exerciseOptions "
                                        f"{_NOT} (no options are simulated)", 2),
    52: Refusal("reqFundamentalData", 430, f"The fundamentals data for the security specified is not available: "
                                           f"reqFundamentalData {_NOT}", 2),
    54: Refusal("calculateImpliedVolatility", 200, f"No security definition has been found for the request: "
                                                   f"calculateImpliedVolatility {_NOT} (no options are simulated)", 2),
    55: Refusal("calculateOptionPrice", 200, f"No security definition has been found for the request: "
                                             f"calculateOptionPrice {_NOT} (no options are simulated)", 2),
    78: Refusal("reqSecDefOptParams", 200, f"No security definition has been found for the request: "
                                           f"reqSecDefOptParams {_NOT} (no option chains are simulated)", 1),
    84: Refusal("reqNewsArticle", 10276, f"News feed is not allowed: reqNewsArticle {_NOT}", 1),
    86: Refusal("reqHistoricalNews", 10276, f"News feed is not allowed: reqHistoricalNews {_NOT}", 1),
    88: Refusal("reqHistogramData", 162, f"Historical Market Data Service error message:reqHistogramData {_NOT}", 1),
    96: Refusal("reqHistoricalTicks", 162, f"Historical Market Data Service error message:reqHistoricalTicks {_NOT} "
                                           f"(bars are: reqHistoricalData)", 1),
    97: Refusal("reqTickByTickData", 10089, f"Requested market data requires additional subscription for API: "
                                            f"reqTickByTickData {_NOT} (streaming quotes are: reqMktData)", 1),
    100: Refusal("reqWshMetaData", 10089, f"Requested market data requires additional subscription for API: "
                                          f"reqWshMetaData {_NOT} (no Wall Street Horizon data)", 1),
    102: Refusal("reqWshEventData", 10089, f"Requested market data requires additional subscription for API: "
                                           f"reqWshEventData {_NOT} (no Wall Street Horizon data)", 1),
}

#: Cancels and settings: no answer exists in the protocol (name for the log).
SILENT: dict[int, str] = {11: "cancelMktDepth", 12: "reqNewsBulletins (no bulletins are simulated)",
                          13: "cancelNewsBulletins", 14: "setServerLogLevel",
                          53: "cancelFundamentalData", 56: "cancelCalculateImpliedVolatility",
                          57: "cancelCalculateOptionPrice", 70: "unsubscribeFromGroupEvents", 89: "cancelHistogramData",
                          98: "cancelTickByTickData", 101: "cancelWshMetaData", 103: "cancelWshEventData"}

#: The reqId's field index per message id, for errors about malformed requests.
REQ_ID_FIELD: dict[int, int] = {1: 2, 2: 2, 3: 1, 4: 2, 7: 2, 9: 2, 20: 1, 22: 1, 23: 2, 25: 2, 50: 2, 51: 2, 62: 2, 63: 2, 74: 2,
                                76: 2, 77: 2, 81: 1, 87: 1, 92: 1, 93: 1, 94: 1, 95: 1,
                                **{k: r.req_field for k, r in UNSUPPORTED.items()}}


def _empty(build: Callable[[Session, list[str]], list[Any]]) -> Callable[[Session, list[str]], None]:
    return lambda s, f: s.send(build(s, f))


#: Requests without data here that are answered with an empty (but complete) answer.
EMPTY_ANSWERS: dict[int, Callable[[Session, list[str]], None]] = {
    18: _empty(lambda s, f: md.receive_fa(to_int(f[2]))),  # requestFA: not an advisor account, no FA data
    19: _empty(lambda s, f: md.replace_fa_end(to_int(f[4]), "FA data operations are not available: not an FA "
                                                            "account")),
    65: _empty(lambda s, f: md.verify_completed(False, f"API verification {_NOT}")),
    66: _empty(lambda s, f: md.verify_completed(False, f"API verification {_NOT}")),
    67: _empty(lambda s, f: md.display_group_list(to_int(f[2]))),
    68: _empty(lambda s, f: md.display_group_updated(to_int(f[2]))),
    69: _empty(lambda s, f: md.display_group_updated(to_int(f[2]))),
    72: _empty(lambda s, f: md.verify_completed(True, f"API verification {_NOT}")),
    73: _empty(lambda s, f: md.verify_completed(True, f"API verification {_NOT}")),
    79: _empty(lambda s, f: md.soft_dollar_tiers(to_int(f[1]))),
    80: _empty(lambda s, f: md.family_codes(s.server.accounts[0])),
    82: _empty(lambda s, f: md.mkt_depth_exchanges()),
    83: _empty(lambda s, f: md.smart_components(to_int(f[1]))),
    85: _empty(lambda s, f: md.news_providers()),
    104: _empty(lambda s, f: md.user_info(to_int(f[1]))),
}


def request_id(fields: list[str]) -> int:
    """The reqId of a request (-1 when the message has none or it cannot be read)."""
    try:
        index = REQ_ID_FIELD.get(int(fields[0]), -1)
        return to_int(fields[index]) if 0 < index < len(fields) else -1
    except (ValueError, IndexError):
        return -1


def answer_unsupported(s: Session, f: list[str]) -> None:
    """The handler of every message id without a handler of its own."""
    msg_id = int(f[0])
    refusal = UNSUPPORTED.get(msg_id)
    if refusal is not None:
        req_id = to_int(f[refusal.req_field]) if len(f) > refusal.req_field else -1
        log.info("%s (reqId %s) refused with %s", refusal.name, req_id, refusal.code)
        s.error(req_id, refusal.code, refusal.text)
    elif msg_id in EMPTY_ANSWERS:
        EMPTY_ANSWERS[msg_id](s, f)
    elif msg_id in SILENT:
        log.debug("%s accepted (no answer in the protocol)", SILENT[msg_id])
    else:
        log.warning("unknown request %s: %s", msg_id, f)
        s.error(-1, 503, f"The TWS is out of date and must be upgraded: message id {msg_id} {_NOT}")
