"""The client's placeOrder request (message 3): a sequential parser per server version, and the neutral
order it asks for.

The layout mirrors ib_async 2.1.0's ``Client.placeOrder`` (protocol reference §5.8): a fixed prefix, then
variable blocks (combo legs, delta-neutral, scale, hedge, algo params, PEG BENCH, conditions) and
version-gated trailing fields. :func:`parse_place_order` walks it with a cursor, so every later field is
read from the right place and a malformed request is detected instead of mis-read.

IB's ``TRAIL`` order becomes the paper engine's TRAILING_STOP: ``auxPrice`` is the trailing amount
(``trail_price``), or ``trailingPercent`` the trail in percent (``trail_percent``); exactly one. An initial
stop (``trailStopPrice``) is honoured when it lies at or beyond the trail from the current price (the IB
order then behaves exactly as the engine's, whose stop starts at the trail and only follows the price);
a tighter one is refused, since the engine cannot start a stop inside its trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workbench.core.enums import OrderType, Side, TimeInForce
from workbench.core.errors import InvalidOrder
from workbench.core.models import NeutralOrder, new_client_order_id
from workbench.paper.rules import trail_stop

from .codec import UNSET_DOUBLE, to_float, to_int

__all__ = ["PlaceOrder", "parse_place_order", "CONTRACT_FIELDS", "to_neutral", "trail", "initial_stop_refusal",
           "dec"]

CONTRACT_FIELDS = ("conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right", "multiplier",
                   "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass")
#: Fields per order condition type, including condType itself (ib_async's dataclassAsTuple).
_CONDITION_SIZES = {1: 7, 3: 4, 4: 4, 5: 5, 6: 6, 7: 6}


@dataclass
class PlaceOrder:
    order_id: int
    contract: dict[str, str]
    action: str
    total_quantity: str
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    oca_group: str = ""
    what_if: bool = False
    combo_legs: int = 0
    algo_strategy: str = ""
    conditions: int = 0
    hedge_type: str = ""
    delta_neutral: bool = False
    trail_stop_price: float | None = None  # TRAIL: the initial stop (unset: trailing amount away from the price)
    trailing_percent: float | None = None  # TRAIL: the trail as a percentage (else auxPrice is the amount)
    extra: dict[str, Any] = field(default_factory=dict)


class _Cursor:
    def __init__(self, fields: list[str], start: int) -> None:
        self.fields = fields
        self.pos = start

    def next(self) -> str:
        if self.pos >= len(self.fields):
            raise ValueError(f"placeOrder ended after {len(self.fields)} fields")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.next()

    def take(self, *names: str) -> dict[str, str]:
        return {name: self.next() for name in names}


def parse_place_order(fields: list[str], sv: int) -> PlaceOrder:
    """Parse ``fields`` (``fields[0] == "3"``). Raises ValueError when the layout does not add up."""
    if not fields or fields[0] != "3":
        raise ValueError("not a placeOrder request")
    c = _Cursor(fields, 1)
    order_id = to_int(c.next())
    contract = c.take(*CONTRACT_FIELDS)
    head = c.take("secIdType", "secId", "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif",
                  "ocaGroup", "account", "openClose", "origin", "orderRef", "transmit", "parentId", "blockOrder",
                  "sweepToFill", "displaySize", "triggerMethod", "outsideRth", "hidden")
    order = PlaceOrder(order_id=order_id, contract=contract, action=head["action"].upper(),
                       total_quantity=head["totalQuantity"], order_type=head["orderType"].upper(),
                       lmt_price=to_float(head["lmtPrice"]), aux_price=to_float(head["auxPrice"]),
                       tif=head["tif"].upper(), account=head["account"], order_ref=head["orderRef"],
                       transmit=head["transmit"] != "0", parent_id=to_int(head["parentId"]),
                       outside_rth=head["outsideRth"] == "1", oca_group=head["ocaGroup"])
    if contract["secType"] == "BAG":
        legs = to_int(c.next())
        c.skip(8 * legs)
        order_legs = to_int(c.next())
        c.skip(order_legs)
        params = to_int(c.next())
        c.skip(2 * params)
        order.combo_legs = legs
    c.skip(7)  # sharesAllocation, discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPercentage
    if sv < 177:
        c.skip(1)  # faProfile
    c.skip(22)  # modelCode ... volatilityType
    dn_type = c.next()
    c.skip(1)  # deltaNeutralAuxPrice
    if dn_type:
        c.skip(8)
    c.skip(2)  # continuousUpdate, referencePriceType
    order.trail_stop_price, order.trailing_percent = to_float(c.next()), to_float(c.next())
    c.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    increment = to_float(c.next())
    if increment is not None and 0 < increment < UNSET_DOUBLE:
        c.skip(7)
    c.skip(3)  # scaleTable, activeStartTime, activeStopTime
    order.hedge_type = c.next()
    if order.hedge_type:
        c.skip(1)
    c.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    order.delta_neutral = c.next() == "1"
    if order.delta_neutral:
        c.skip(3)
    order.algo_strategy = c.next()
    if order.algo_strategy:
        c.skip(2 * to_int(c.next()))
    algo = c.take("algoId", "whatIf", "orderMiscOptions", "solicited", "randomizeSize", "randomizePrice")
    order.what_if = algo["whatIf"] == "1"
    if order.order_type in ("PEG BENCH", "PEGBENCH"):
        c.skip(5)
    order.conditions = to_int(c.next())
    for _ in range(order.conditions):
        kind = to_int(c.fields[c.pos] if c.pos < len(c.fields) else "")
        if kind not in _CONDITION_SIZES:
            raise ValueError(f"unknown order condition type {kind}")
        c.skip(_CONDITION_SIZES[kind])
    if order.conditions:
        c.skip(2)  # conditionsIgnoreRth, conditionsCancelOrder
    c.skip(19)  # adjustedOrderType ... usePriceMgmtAlgo
    c.skip(sum(1 for gate in (158, 160, 162, 166, 169) if sv >= gate))
    if sv >= 170:
        if contract["exchange"] == "IBKRATS":
            c.skip(1)
        if order.order_type in ("PEG BEST", "PEGBEST"):
            c.skip(2)
            if c.pos < len(fields) and len(fields) - c.pos == 2:  # competeAgainstBestOffset == inf
                c.skip(2)
        elif order.order_type in ("PEG MID", "PEGMID"):
            c.skip(2)
    if c.pos != len(fields):
        raise ValueError(f"placeOrder has {len(fields) - c.pos} unexpected trailing fields")
    return order


# -- the neutral order ----------------------------------------------------------------------

def to_neutral(req: PlaceOrder, symbol: str) -> NeutralOrder:
    """The neutral order ``req`` asks for (raises WorkbenchError / ValueError on bad fields)."""
    kind = OrderType(req.order_type)
    trail_price, trail_percent = trail(req) if kind.needs_trail else (None, None)
    return NeutralOrder(symbol=symbol, side=Side(req.action), qty=Decimal(req.total_quantity), order_type=kind,
                        tif=TimeInForce(req.tif or "DAY"),
                        limit_price=dec(req.lmt_price) if kind.needs_limit_price else None,
                        stop_price=dec(req.aux_price) if kind.needs_stop_price else None,
                        trail_price=trail_price, trail_percent=trail_percent,
                        client_order_id=req.order_ref or new_client_order_id())


def trail(req: PlaceOrder) -> tuple[Decimal | None, Decimal | None]:
    """(trail_price, trail_percent) of a TRAIL order: auxPrice is the trailing amount, or trailingPercent."""
    amount = req.aux_price or None  # unset or 0: no trailing amount
    if (amount is None) == (req.trailing_percent is None):
        raise InvalidOrder("a TRAIL order needs exactly one of auxPrice (the trailing amount) and trailingPercent",
                           field="auxPrice" if amount is None else "trailingPercent")
    return dec(amount), dec(req.trailing_percent)


def initial_stop_refusal(req: PlaceOrder, order: NeutralOrder, price_of: Callable[[str], Decimal]) -> str:
    """Why the trailStopPrice of a TRAIL order cannot be honoured at the current price ("" if it can, or has none)."""
    if req.trail_stop_price is None or not order.order_type.needs_trail:
        return ""
    price = price_of(order.symbol)
    start = trail_stop(order.side, price, order.trail_price, order.trail_percent)
    wanted = dec(req.trail_stop_price)
    assert wanted is not None
    if (wanted > start) if order.side is Side.SELL else (wanted < start):
        return (f"trailStopPrice {wanted} starts the stop inside the trail (at {price} the stop is {start}); the "
                f"emulator's trailing stop starts at the trail, so give a trailStopPrice at or "
                f"{'below' if order.side is Side.SELL else 'above'} {start}, or none")
    return ""


def dec(value: float | None) -> Decimal | None:
    """A request's float as the Decimal it was written as (``1.05`` -> ``Decimal("1.05")``)."""
    return None if value is None else Decimal(repr(value))
