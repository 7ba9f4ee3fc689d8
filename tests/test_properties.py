"""Property tests: order validation, and the paper ledger's invariants under random operation sequences.

Ledger invariants, checked after every operation of a random sequence (orders of every type, side,
size and time in force; price updates; provider ticks; cancels; close-and-reopen):

(a) money is conserved net of costs: for the fills of one operation, the change of
    ``cash + Σ qty × reference price`` equals ``Σ (−commission − |qty| × |fill price − reference price|)``;
    equivalently ``starting_cash + Σ (−signed qty × fill price − commission) == cash`` exactly, and every
    position equals the signed sum of its symbol's fill quantities;
(b) for every order, the sum of its fills' quantities equals ``filled_qty`` and ``filled_qty <= qty``;
(c) no fill is later than its order's cancellation, and a cancelled (or otherwise finished) order never
    changes again;
(d) a new engine on the same SQLite file restores identical cash, positions, orders and fills.

An operation may raise an allowed, typed error (InsufficientFunds, OrderRejected...), and must then
leave every bit of state unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import string
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st

import workbench
from workbench import InvalidOrder, NeutralOrder, OrderStatus, OrderType, Side, TimeInForce

#: ``WORKBENCH_PROPERTY_EXAMPLES=2000 pytest --timeout=0 tests/test_properties.py`` for a longer hunt.
FAST = settings(max_examples=int(os.environ.get("WORKBENCH_PROPERTY_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# =============================================================================================
# Order validation
# =============================================================================================



def any_case(word: str) -> st.SearchStrategy[str]:
    """``word`` with every letter independently upper or lower case."""
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flags: "".join(c.upper() if up else c.lower() for c, up in zip(word, flags, strict=True)))


def any_case_of(*words: str) -> st.SearchStrategy[str]:
    return st.one_of(*(any_case(w) for w in words))


symbols = st.tuples(
    st.from_regex(r"\A[A-Z0-9][A-Z0-9.\-/]{0,10}\Z"),
    st.booleans(),
    st.sampled_from(["", " ", "  ", "\t"]),
).map(lambda t: t[2] + (t[0].lower() if t[1] else t[0]) + t[2])

sides = any_case_of("buy", "sell")

positive_decimals = st.one_of(
    st.integers(min_value=1, max_value=10**6).map(Decimal),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
)
positive_inputs = st.one_of(positive_decimals, positive_decimals.map(str), st.integers(min_value=1, max_value=10**6))

ORDER_TYPE_SPELLINGS = {
    OrderType.MARKET: ("market", "mkt"),
    OrderType.LIMIT: ("limit", "lmt"),
    OrderType.STOP: ("stop", "stp"),
    OrderType.STOP_LIMIT: ("stop_limit", "stop-limit"),
    OrderType.TRAILING_STOP: ("trailing_stop", "trail"),
}
order_types = st.sampled_from(list(OrderType)).flatmap(
    lambda kind: st.tuples(st.just(kind), any_case_of(*ORDER_TYPE_SPELLINGS[kind])))
tifs = st.sampled_from(list(TimeInForce)).flatmap(lambda tif: st.tuples(st.just(tif), any_case(tif.value)))


@st.composite
def valid_order_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload as a user types it, the normalised values expected back)."""
    kind, kind_text = draw(order_types)
    tif, tif_text = draw(tifs)
    symbol, side, qty = draw(symbols), draw(sides), draw(positive_inputs)
    payload: dict[str, Any] = {"symbol": symbol, "side": side, "qty": qty, "order_type": kind_text, "tif": tif_text}
    expected: dict[str, Any] = {"symbol": symbol.strip().upper(), "side": Side(side.upper()), "qty": Decimal(str(qty)),
                                "order_type": kind, "tif": tif, "limit_price": None, "stop_price": None}
    if kind.needs_limit_price:
        payload["limit_price"] = draw(positive_inputs)
        expected["limit_price"] = Decimal(str(payload["limit_price"]))
    if kind.needs_stop_price:
        payload["stop_price"] = draw(positive_inputs)
        expected["stop_price"] = Decimal(str(payload["stop_price"]))
    if kind.needs_trail:
        if draw(st.booleans()):
            payload["trail_price"] = draw(positive_inputs)
            expected["trail_price"] = Decimal(str(payload["trail_price"]))
        else:
            payload["trail_percent"] = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99.99"),
                                                        places=2))
            expected["trail_percent"] = payload["trail_percent"]
    if draw(st.booleans()):
        payload["client_order_id"] = expected["client_order_id"] = draw(
            st.text(alphabet=string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=64))
    return payload, expected


@FAST
@given(valid_order_payloads())
def test_valid_orders_are_accepted_and_normalised(case: tuple[dict[str, Any], dict[str, Any]]):
    payload, expected = case
    for order in (NeutralOrder(**payload), NeutralOrder.parse(dict(payload))):
        for field, value in expected.items():
            assert getattr(order, field) == value, field
        assert isinstance(order.qty, Decimal)
        assert order.qty > 0
        if "client_order_id" not in payload:
            assert re.fullmatch(r"wb-[0-9a-f]{24}", order.client_order_id)
        # A validated order survives a round trip through its own dump (what a ticket stores).
        assert NeutralOrder(**order.model_dump()) == order
        assert NeutralOrder.parse(order) is order


def _base(kind: OrderType = OrderType.MARKET, **over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": Decimal(1), "order_type": kind.value}
    if kind.needs_limit_price:
        payload["limit_price"] = Decimal(100)
    if kind.needs_stop_price:
        payload["stop_price"] = Decimal(95)
    if kind.needs_trail:
        payload["trail_percent"] = Decimal(1)
    payload.update(over)
    return {k: v for k, v in payload.items() if v is not _DROP}


_DROP = object()


def assert_invalid(payload: dict[str, Any], field: str) -> None:
    for build in (lambda: NeutralOrder(**payload), lambda: NeutralOrder.parse(dict(payload))):
        with pytest.raises(InvalidOrder) as info:
            build()
        assert info.value.field == field, str(info.value)
        assert isinstance(info.value, workbench.InvalidInput)


non_positive = st.one_of(
    st.decimals(max_value=Decimal(0), allow_nan=False, allow_infinity=False),
    st.integers(max_value=0),
    st.floats(max_value=0, allow_nan=False, allow_infinity=False),
    st.decimals(max_value=Decimal(0), allow_nan=False, allow_infinity=False).map(str),
)
non_finite = st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-NaN"), Decimal("Infinity"),
                              Decimal("-Infinity"), float("nan"), float("inf"), float("-inf"), "nan", "NaN",
                              "inf", "-Infinity", "Infinity"])


@FAST
@given(qty=st.one_of(non_positive, non_finite), kind=st.sampled_from(list(OrderType)))
def test_non_positive_or_non_finite_qty_is_rejected(qty: Any, kind: OrderType):
    assert_invalid(_base(kind, qty=qty), "qty")


@FAST
@given(price=st.one_of(non_positive, non_finite), field=st.sampled_from(["limit_price", "stop_price"]))
def test_non_positive_or_non_finite_price_is_rejected(price: Any, field: str):
    assert_invalid(_base(OrderType.STOP_LIMIT, **{field: price}), field)


@FAST
@given(kind=st.sampled_from([OrderType.LIMIT, OrderType.STOP_LIMIT]).flatmap(
    lambda k: any_case_of(*ORDER_TYPE_SPELLINGS[k])))
def test_limit_type_without_limit_price_is_rejected(kind: str):
    payload = _base(OrderType(kind), limit_price=_DROP)
    assert_invalid(payload, "limit_price")
    assert_invalid({**payload, "limit_price": None}, "limit_price")


@FAST
@given(kind=st.sampled_from([OrderType.MARKET, OrderType.STOP]), price=positive_decimals)
def test_limit_price_on_a_type_without_limit_is_rejected(kind: OrderType, price: Decimal):
    assert_invalid(_base(kind, limit_price=price), "limit_price")


@FAST
@given(kind=st.sampled_from([OrderType.MARKET, OrderType.LIMIT]), price=positive_decimals)
def test_stop_price_on_a_type_without_stop_is_rejected(kind: OrderType, price: Decimal):
    assert_invalid(_base(kind, stop_price=price), "stop_price")


@FAST
@given(kind=st.sampled_from([OrderType.STOP, OrderType.STOP_LIMIT]))
def test_stop_type_without_stop_price_is_rejected(kind: OrderType):
    assert_invalid(_base(kind, stop_price=_DROP), "stop_price")


bad_symbols = st.one_of(
    st.builds(lambda a, bad, b: a + bad + b, st.text(alphabet=string.printable, max_size=10),
              st.sampled_from(list("$@_#!*%&()[]{}<>?+=~`'\",;:|\x00\u00e9\u20ac")), st.text(max_size=10)),
    st.builds(lambda lead, rest: lead + rest, st.sampled_from(["-", ".", "/", "$"]),
              st.from_regex(r"\A[A-Z0-9]{1,8}\Z")),
    st.from_regex(r"\A[A-Z][A-Z0-9]{24,30}\Z"),  # too long
    st.sampled_from(["", "   ", "$AAPL", "-AAPL", ".X", "AA$PL", "A_B", "AAPL!", "ÄPFEL", "/ES"]),
    st.one_of(st.integers(), st.none(), st.just(["AAPL"])),
)


@FAST
@given(symbol=bad_symbols)
def test_bad_symbol_is_rejected(symbol: Any):
    assert_invalid(_base(symbol=symbol), "symbol")


_SIDE_WORDS = {"BUY", "SELL", "B", "S", "BOT", "SLD"}


@FAST
@given(side=st.one_of(
    st.text(alphabet=string.ascii_letters + " -_", max_size=6).filter(
        lambda s: s.strip().upper().replace("-", "_") not in _SIDE_WORDS),
    st.integers(), st.none()))
def test_bad_side_is_rejected(side: Any):
    assert_invalid(_base(side=side), "side")


@FAST
@given(field=st.sampled_from(["order_type", "tif"]), value=st.sampled_from(["peg", "", "moc", "x", "forever", 3]))
def test_bad_order_type_or_tif_is_rejected(field: str, value: Any):
    assert_invalid(_base(**{field: value}), field)


# =============================================================================================
# Paper ledger invariants
# =============================================================================================

SYMBOLS = ("AAPL", "MSFT")
START = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # the conftest clock's start: a Wednesday, market open
ALLOWED_ERRORS = (workbench.OrderRejected,)  # InsufficientFunds, MarketClosed and plain rejections
#: A replace may also be refused as malformed (qty below the filled part, a limit on a market order...).
REPLACE_ERRORS = (workbench.OrderRejected, workbench.InvalidOrder)
_PRICE_Q = Decimal("0.0001")


@dataclasses.dataclass(frozen=True)
class Place:
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: Decimal
    limit_mult: Decimal
    stop_mult: Decimal
    notional: bool = False  # a MARKET order sized in cash (qty x the base price)


@dataclasses.dataclass(frozen=True)
class Replace:
    pick: int
    qty_mult: Decimal | None
    limit_mult: Decimal | None


@dataclasses.dataclass(frozen=True)
class PriceUpdate:
    symbol: str
    mult: Decimal
    advance: timedelta


@dataclasses.dataclass(frozen=True)
class Tick:
    advance: timedelta


@dataclasses.dataclass(frozen=True)
class Cancel:
    pick: int
    by_client_id: bool
    unknown: bool


@dataclasses.dataclass(frozen=True)
class Reopen:
    pass


mults = st.integers(min_value=8500, max_value=11500).map(lambda n: Decimal(n) / 10000)
advances = st.builds(lambda m, s, us: timedelta(minutes=m, seconds=s, microseconds=us),
                     st.integers(0, 120), st.integers(0, 59), st.sampled_from([0, 0, 1, 500_000, 999_999]))
quantities = st.one_of(
    st.integers(min_value=1, max_value=60).map(Decimal),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(40), places=3),
)
places = st.builds(
    Place, st.sampled_from(SYMBOLS), st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
    st.sampled_from([OrderType.MARKET, OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT,
                     OrderType.TRAILING_STOP]),
    st.sampled_from([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK,
                     TimeInForce.OPG, TimeInForce.CLS]),
    quantities, mults, mults, st.sampled_from([False, False, True]))
replaces = st.builds(Replace, st.integers(0, 10**6), st.one_of(st.none(), st.sampled_from(
    [Decimal("0.5"), Decimal(1), Decimal("1.5"), Decimal(3)])), st.one_of(st.none(), mults))
price_updates = st.builds(PriceUpdate, st.sampled_from(SYMBOLS), mults, advances)
operations = st.one_of(
    places, places, places,
    price_updates, price_updates,
    st.builds(Tick, advances),
    st.builds(Cancel, st.integers(0, 10**6), st.booleans(), st.sampled_from([False, False, False, True])),
    replaces,
    st.just(Reopen()),
)
engine_configs = st.fixed_dictionaries({
    "starting_cash": st.sampled_from([Decimal(20000), Decimal(100000)]),
    "slippage_bps": st.sampled_from([Decimal(1), Decimal(5), Decimal("12.5"), Decimal(50)]),
    "commission": st.fixed_dictionaries({
        "per_order": st.sampled_from([Decimal(0), Decimal("0.35")]),
        "per_share": st.sampled_from([Decimal("0.005"), Decimal("0.01")]),
        "minimum": st.sampled_from([Decimal(0), Decimal(1)]),
    }),
    "allow_short": st.booleans(),
    "partial_fill_fraction": st.sampled_from([Decimal(0), Decimal(0), Decimal("0.25"), Decimal("0.5")]),
})


def _note(message: str, kind: str | None = None) -> None:
    if currently_in_test_context():
        note(message)
        if kind:
            event(kind)


def state(engine: Any) -> dict[str, Any]:
    """Everything observable about the engine: memory (cash, positions, open orders) and the ledger."""
    return {
        "cash": engine.cash,
        "positions": [p.model_dump() for p in engine.positions()],
        "open": sorted((o.model_dump() for o in engine.open_orders()), key=lambda d: d["order_id"]),
        "open_rows": sorted((dataclasses.astuple(r) for r in engine._open.values()), key=lambda t: t[0]),
        "orders": sorted((o.model_dump() for o in engine.orders()), key=lambda d: d["order_id"]),
        "rows": sorted((dataclasses.astuple(r) for r in engine.ledger.orders()), key=lambda t: t[0]),
        "fills": [f.model_dump() for f in engine.fills()],
        "ledger_cash": engine.ledger.account()[0],
        "ledger_positions": engine.ledger.positions(),
    }


def order_commission(config: dict[str, Any], filled: Decimal) -> Decimal:
    """An order's total commission once ``filled`` shares executed: per order, however many fills."""
    c = config["commission"]
    if not filled or not (c["minimum"] or c["per_order"] or c["per_share"]):
        return Decimal(0)
    return max(c["minimum"], c["per_order"] + c["per_share"] * filled).quantize(_PRICE_Q)


def expected_commission(config: dict[str, Any], before: Decimal, qty: Decimal) -> Decimal:
    """What a fill of ``qty`` costs after ``before`` shares of the same order filled."""
    return order_commission(config, before + qty) - order_commission(config, before)


def expected_fill_price(order: workbench.Order, ref: Decimal, slip: Decimal) -> Decimal:
    """The reference price moved against the trader by the slippage, rounded against the trader."""
    rounding = ROUND_CEILING if order.side is Side.BUY else ROUND_FLOOR
    price = (ref * (1 + order.side.sign * slip)).quantize(_PRICE_Q, rounding=rounding)
    if order.order_type.needs_limit_price:
        assert order.limit_price is not None
        price = min(price, order.limit_price) if order.side is Side.BUY else max(price, order.limit_price)
    return price


def average_costs(fills: list[dict[str, Any]]) -> dict[str, tuple[Decimal, Decimal]]:
    """symbol -> (qty, average price) from the fills in order, by the average-cost method (6 decimals)."""
    book: dict[str, tuple[Decimal, Decimal]] = {}
    for f in fills:
        held, avg = book.get(f["symbol"], (Decimal(0), Decimal(0)))
        signed = Side(f["side"]).sign * f["qty"]
        new = held + signed
        if held == 0 or (held > 0) == (signed > 0):
            avg = ((held * avg + signed * f["price"]) / new).quantize(Decimal("0.000001"))
        elif new != 0 and (held > 0) != (new > 0):
            avg = f["price"]
        if new == 0:
            book.pop(f["symbol"], None)
        else:
            book[f["symbol"]] = (new, avg)
    return book


class LedgerChecker:
    """Drives one engine through a sequence of operations, checking the invariants after each."""

    def __init__(self, make: Any, clock: Any, config: dict[str, Any]) -> None:
        self.make, self.clock, self.config = make, clock, config
        self.folder = Path(tempfile.mkdtemp(prefix="wb-props-"))
        self.db = self.folder / "ledger.sqlite"
        self.engine = make(db=self.db, **config)
        self.slip = config["slippage_bps"] / Decimal(10_000)
        self.placed: list[workbench.Order] = []
        self.finished: dict[str, dict[str, Any]] = {}  # order_id -> snapshot when it became terminal
        self.base = {s: self.engine.prices.get_market_price(s, clock()) for s in SYMBOLS}

    def close(self) -> None:
        self.engine.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- operations -----------------------------------------------------------------------------

    def run(self, op: Any) -> None:
        before = state(self.engine)
        refs: dict[str, Decimal] = {}
        try:
            if isinstance(op, Place):
                self._place(op, refs)
            elif isinstance(op, PriceUpdate):
                ts = self.clock.advance(microseconds=op.advance // timedelta(microseconds=1))
                price = (self.base[op.symbol] * op.mult).quantize(Decimal("0.01"))
                refs[op.symbol] = price
                self.engine.on_price(op.symbol, price, ts)
            elif isinstance(op, Tick):
                now = self.clock.advance(microseconds=op.advance // timedelta(microseconds=1))
                refs.update({s: self.engine.prices.get_market_price(s, now) for s in SYMBOLS})
                self.engine.tick(now)
            elif isinstance(op, Cancel):
                self._cancel(op, before)
            elif isinstance(op, Replace):
                try:
                    self._replace(op, refs)
                except REPLACE_ERRORS as exc:
                    _note(f"{op} -> {type(exc).__name__}: {exc}", f"replace refused: {type(exc).__name__}")
                    assert state(self.engine) == before, f"{type(exc).__name__} left the state changed"
                    return
            elif isinstance(op, Reopen):
                self.reopen_and_compare(before)
        except ALLOWED_ERRORS as exc:
            _note(f"{op} -> {type(exc).__name__}: {exc}", f"refused: {type(exc).__name__}")
            assert state(self.engine) == before, f"{type(exc).__name__} left the state changed"
            return
        self.check(before, refs)

    def _place(self, op: Place, refs: dict[str, Decimal]) -> None:
        base = self.base[op.symbol]
        fields: dict[str, Any] = {"symbol": op.symbol, "side": op.side, "qty": op.qty, "order_type": op.order_type,
                                  "tif": op.tif}
        if op.order_type.needs_limit_price:
            fields["limit_price"] = (base * op.limit_mult).quantize(Decimal("0.01"))
        if op.order_type.needs_stop_price:
            fields["stop_price"] = (base * op.stop_mult).quantize(Decimal("0.01"))
        if op.order_type.needs_trail:
            fields["trail_percent"] = max(Decimal("0.5"), (abs(op.stop_mult - 1) * 100).quantize(Decimal("0.01")))
        if op.notional and op.order_type is OrderType.MARKET:
            fields["notional"] = (op.qty * base).quantize(Decimal("0.01"))
            del fields["qty"]
        refs[op.symbol] = self.engine.prices.get_market_price(op.symbol, self.clock())
        order = self.engine.submit(NeutralOrder(**fields))
        self.placed.append(order)
        assert self.engine.get_order(order.order_id).model_dump() == order.model_dump()
        assert order.created_at == self.clock()

    def _replace(self, op: Replace, refs: dict[str, Decimal]) -> None:
        if not self.placed:
            return
        target = self.placed[op.pick % len(self.placed)]
        was = self.engine.get_order(target.order_id)
        changes: dict[str, Any] = {}
        if op.qty_mult is not None and was.qty is not None:
            changes["qty"] = (was.qty * op.qty_mult).quantize(Decimal("0.001"))
        if op.limit_mult is not None:
            changes["limit_price"] = (self.base[was.symbol] * op.limit_mult).quantize(Decimal("0.01"))
        if not changes:
            return
        refs[was.symbol] = self.engine.prices.get_market_price(was.symbol, self.clock())
        got = self.engine.replace(target.order_id, **changes)
        assert got.order_id == target.order_id and got.filled_qty >= was.filled_qty
        for field, value in changes.items():
            assert getattr(got, field) == value, field

    def _cancel(self, op: Cancel, before: dict[str, Any]) -> None:
        if op.unknown or not self.placed:
            with pytest.raises(workbench.OrderNotFound):
                self.engine.cancel("no-such-order-" + str(op.pick))
            assert state(self.engine) == before, "a failed cancel changed the state"
            return
        target = self.placed[op.pick % len(self.placed)]
        was = self.engine.get_order(target.order_id)
        got = self.engine.cancel(target.client_order_id if op.by_client_id else target.order_id)
        assert got.order_id == target.order_id
        if was.is_open:
            assert got.status is OrderStatus.CANCELLED
            assert got.updated_at == self.clock()
            assert got.filled_qty == was.filled_qty
        else:
            assert got.model_dump() == was.model_dump(), "cancelling a finished order changed it"

    # -- invariants -----------------------------------------------------------------------------

    def check(self, before: dict[str, Any], refs: dict[str, Decimal]) -> None:
        engine, config = self.engine, self.config
        now = self.clock()
        after = state(engine)
        orders = {o["order_id"]: o for o in after["orders"]}
        fills = after["fills"]

        # memory and ledger agree (the basis of (d)).
        assert after["cash"] == after["ledger_cash"]
        assert {p["symbol"]: (p["qty"], p["avg_price"]) for p in after["positions"]} == after["ledger_positions"]
        open_ids = {o["order_id"] for o in after["orders"] if OrderStatus(o["status"]).is_open}
        assert {o["order_id"] for o in after["open"]} == open_ids
        assert after["open"] == [orders[o["order_id"]] for o in after["open"]]
        rows = {r[0]: r for r in after["rows"]}
        assert all(rows[r[0]] == r for r in after["open_rows"]), "an open order in memory differs from the ledger"

        # (a) per operation: every new fill at the expected price and commission, money conserved net of costs.
        seen = {f["exec_id"] for f in before["fills"]}
        new = [f for f in fills if f["exec_id"] not in seen]
        assert len(seen) == len(before["fills"]) and all(f in fills for f in before["fills"]), "fills were rewritten"
        cost = Decimal(0)
        filled_before: dict[str, Decimal] = defaultdict(Decimal)
        for f in before["fills"]:
            filled_before[f["broker_id"]] += f["qty"]
        for f in new:
            assert f["symbol"] in refs, f"unexpected fill {f} during an operation without prices for it"
            ref, order = refs[f["symbol"]], engine.get_order(f["broker_id"])
            assert f["qty"] > 0
            assert f["ts"] == now
            assert f["price"] == expected_fill_price(order, ref, self.slip), (f, ref)
            assert f["commission"] == expected_commission(config, filled_before[f["broker_id"]], f["qty"])
            filled_before[f["broker_id"]] += f["qty"]
            assert order.side.sign * (f["price"] - ref) >= 0, "slippage in the trader's favour"
            if not order.order_type.needs_limit_price or f["price"] != order.limit_price:
                assert order.side.sign * (f["price"] - ref * (1 + order.side.sign * self.slip)) >= 0, \
                    "the price rounding gave back part of the slippage"
            cost += -f["commission"] - f["qty"] * abs(f["price"] - ref)
        pos_before = {p["symbol"]: p["qty"] for p in before["positions"]}
        pos_after = {p["symbol"]: p["qty"] for p in after["positions"]}
        for symbol in set(pos_before) | set(pos_after):
            if symbol not in refs:
                assert pos_before.get(symbol) == pos_after.get(symbol), f"{symbol} moved without a price for it"
        value_change = after["cash"] - before["cash"] + sum(
            ((pos_after.get(s, Decimal(0)) - pos_before.get(s, Decimal(0))) * p for s, p in refs.items()),
            Decimal(0))
        assert value_change == cost, "cash + position value at the reference price not conserved net of costs"

        # (a) globally: cash and positions are exactly what the fills say.
        expected_cash = config["starting_cash"] + sum(
            (-Side(f["side"]).sign * f["qty"] * f["price"] - f["commission"] for f in fills), Decimal(0))
        assert after["cash"] == expected_cash
        net: dict[str, Decimal] = defaultdict(Decimal)
        for f in fills:
            net[f["symbol"]] += Side(f["side"]).sign * f["qty"]
        assert pos_after == {s: q for s, q in net.items() if q != 0}
        # Average cost: adding re-averages, reducing keeps it, crossing through zero starts at the fill price.
        assert after["ledger_positions"] == average_costs(fills), "average price differs from the fills'"
        # Reservations: never negative, and none left once no buy order is working (every terminal path).
        buying_power = engine.account().buying_power
        assert buying_power <= after["cash"]
        if not any(o["side"] is Side.BUY for o in after["open"]):
            assert buying_power == after["cash"], "a finished buy still reserves buying power"
        if not config["allow_short"]:
            assert all(q > 0 for q in pos_after.values()), "a short position although allow_short is off"

        # (b) fills add up to filled_qty <= qty; status agrees.
        by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for f in fills:
            by_order[f["broker_id"]].append(f)
        assert set(by_order) <= set(orders), "a fill for an unknown order"
        for oid, o in orders.items():
            mine = by_order.get(oid, [])
            assert sum((f["qty"] for f in mine), Decimal(0)) == o["filled_qty"], o
            if o["qty"] is None:  # a notional order not sized yet: nothing filled
                assert o["notional"] is not None and o["filled_qty"] == 0, o
            else:
                assert o["filled_qty"] <= o["qty"], o
            assert (o["status"] is OrderStatus.FILLED) == (o["filled_qty"] == o["qty"]), o
            assert all(f["symbol"] == o["symbol"] and f["side"] == o["side"] for f in mine)
            assert all(f["ts"] >= o["created_at"] for f in mine)
            assert len({f["exec_id"] for f in mine}) == len(mine)
            # (c) nothing fills after a cancellation.
            if o["status"] is OrderStatus.CANCELLED:
                assert all(f["ts"] <= o["updated_at"] for f in mine), f"fill after cancellation of {o}"

        # (c) a cancelled (or otherwise finished) order never changes again, and never gains fills.
        for oid, snap in self.finished.items():
            assert orders[oid] == snap["order"], f"finished order {oid} changed"
            assert by_order.get(oid, []) == snap["fills"], f"finished order {oid} gained fills"
        for oid, o in orders.items():
            if oid not in self.finished and OrderStatus(o["status"]).is_terminal:
                self.finished[oid] = {"order": o, "fills": list(by_order.get(oid, []))}

    def reopen_and_compare(self, before: dict[str, Any] | None = None) -> None:
        before = before or state(self.engine)
        reserved = before["cash"] - self.engine.account().buying_power
        self.engine.close()
        self.engine = self.make(db=self.db, **self.config)
        assert state(self.engine) == before, "(d) reopening the ledger changed the state"
        # Buying power: limit and stop buys reserve exactly as before; market buys waiting for their
        # session reserve at a price again (the provider's now: the last price fed is not kept).
        at_market = [o for o in before["open"] if o["side"] is Side.BUY and o["limit_price"] is None
                     and o["stop_price"] is None and o["filled_qty"] == 0]
        reserved_now = before["cash"] - self.engine.account().buying_power
        if not at_market:
            assert reserved_now == reserved, "(d) reopening changed the reserved buying power"
        else:
            floor = sum((o["notional"] if o["qty"] is None else o["qty"] * self.base[o["symbol"]] * Decimal("0.8")
                         for o in at_market), Decimal(0))
            assert reserved_now >= floor, "(d) a reopened ledger's resting market buys reserve nothing"


WARM_UP = (Place("AAPL", Side.BUY, OrderType.MARKET, TimeInForce.GTC, Decimal(20), Decimal(1), Decimal(1)),
           Place("MSFT", Side.BUY, OrderType.MARKET, TimeInForce.GTC, Decimal("7.5"), Decimal(1), Decimal(1)))


@FAST
@given(config=engine_configs, warm_up=st.booleans(), ops=st.lists(operations, min_size=6, max_size=40))
def test_ledger_invariants(engine_factory: Any, clock: Any, config: dict[str, Any], warm_up: bool, ops: list[Any]):
    clock.set(START)
    checker = LedgerChecker(engine_factory, clock, config)
    try:
        for op in [*WARM_UP, *ops] if warm_up else ops:
            _note(f"op: {op}")
            checker.run(op)
        fills = len(checker.engine.fills())
        event("fills: " + ("0" if fills == 0 else "1-5" if fills <= 5 else ">5"))
        for status in {o.status for o in checker.engine.orders()}:
            event(f"status seen: {status.value}")
        checker.reopen_and_compare()
    finally:
        checker.close()


def test_ledger_invariants_smoke(engine_factory: Any, clock: Any):
    """A fixed sequence that reaches every kind of outcome, so a vacuous property run cannot hide."""
    config = {"starting_cash": Decimal(100000), "slippage_bps": Decimal(5), "allow_short": False,
              "partial_fill_fraction": Decimal("0.5"),
              "commission": {"per_order": Decimal(0), "per_share": Decimal("0.01"), "minimum": Decimal(1)}}
    checker = LedgerChecker(engine_factory, clock, config)
    one = Decimal(1)
    try:
        ops = [
            Place("AAPL", Side.BUY, OrderType.MARKET, TimeInForce.DAY, Decimal(10), one, one),
            Place("AAPL", Side.SELL, OrderType.LIMIT, TimeInForce.GTC, Decimal(4), Decimal("1.05"), one),
            Place("MSFT", Side.BUY, OrderType.STOP, TimeInForce.GTC, Decimal("2.5"), one, Decimal("1.02")),
            PriceUpdate("AAPL", Decimal("1.06"), timedelta(minutes=1)),
            PriceUpdate("MSFT", Decimal("1.03"), timedelta(minutes=1)),
            Cancel(1, by_client_id=True, unknown=False),
            PriceUpdate("AAPL", Decimal("1.10"), timedelta(minutes=1)),
            Reopen(),
            Place("AAPL", Side.SELL, OrderType.MARKET, TimeInForce.DAY, Decimal(1000), one, one),  # rejected
            Place("MSFT", Side.BUY, OrderType.MARKET, TimeInForce.DAY, Decimal(10**6), one, one),  # no money
            Cancel(0, by_client_id=False, unknown=True),
            Tick(timedelta(minutes=5)),
        ]
        for op in ops:
            checker.run(op)
        fills = checker.engine.fills()
        assert len(fills) >= 4  # market buy, partial limit sell, stop buy (two halves)
        statuses = {o.status for o in checker.engine.orders()}
        assert OrderStatus.CANCELLED in statuses and OrderStatus.FILLED in statuses
        cancelled = next(o for o in checker.engine.orders() if o.status is OrderStatus.CANCELLED)
        assert Decimal(0) < cancelled.filled_qty < cancelled.qty  # cancelled after a partial fill
        assert len(checker.engine.orders()) == 3  # the two refused orders were never recorded
        checker.reopen_and_compare()
    finally:
        checker.close()


# =============================================================================================
# Bad input straight into the engine: one typed error, nothing recorded
# =============================================================================================
# (The public-API bad-input test, through workbench.connect(), is tests/test_bad_input.py.)

huge_numbers = st.one_of(
    st.integers(min_value=10**12 + 1, max_value=10**40).map(Decimal),
    st.sampled_from([Decimal("1e30"), Decimal("1e999999"), Decimal("9" * 40), Decimal("1e13")]),
)
too_precise = st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal(100), places=12).filter(
    lambda d: d != d.quantize(Decimal("1e-9")))  # (1.500000000000 is 1.5: not too precise)
not_numbers = st.one_of(st.none(), st.text(max_size=8), st.just(float("nan")), st.just(Decimal("NaN")),
                        st.just(Decimal("-Infinity")), st.just(float("inf")), st.booleans(), st.just([1]),
                        st.integers(max_value=0), st.decimals(max_value=Decimal(0), allow_nan=False))
bad_keys = st.one_of(st.integers(), st.none(), st.binary(max_size=5), st.just(["P000000001"]),
                     st.text(max_size=30).filter(lambda t: t not in {"seed-buy", "rest-buy", "rest-sell"}),
                     st.from_regex(r"\AP[0-9]{9,12}\Z").filter(lambda t: t not in {"P000000001", "P000000002",
                                                                                    "P000000003"}))


def _bypassing_validation(order: NeutralOrder, **bad: Any) -> NeutralOrder:
    """``order`` with ``bad`` values that NeutralOrder validation would refuse (as an emulator or a
    ``model_construct`` caller could hand the engine): the engine must refuse them itself."""
    return order.model_copy(update=bad)


@st.composite
def bad_submissions(draw: st.DrawFn) -> tuple[str, NeutralOrder]:
    """Orders the engine must refuse, and the field to blame ("" when it is a business refusal)."""
    kind = draw(st.sampled_from(["huge_qty", "precise_qty", "huge_price", "sub_tick", "engine_id", "huge_notional",
                                 "precise_notional", "no_money", "short"]))
    market = NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(1))
    if kind == "huge_qty":
        return "qty", _bypassing_validation(market, qty=draw(huge_numbers))
    if kind == "precise_qty":
        return "qty", _bypassing_validation(market, qty=draw(too_precise))
    if kind == "huge_price":
        field = draw(st.sampled_from(["limit_price", "stop_price"]))
        kind_of = "limit" if field == "limit_price" else "stop"
        order = NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(1), order_type=kind_of, **{field: Decimal(100)})
        return field, _bypassing_validation(order, **{field: draw(huge_numbers)})
    if kind == "sub_tick":
        price = Decimal(draw(st.integers(1000, 10**6))) / 1000  # at or above $1: penny ticks
        price = price if price % Decimal("0.01") else price + Decimal("0.001")
        return "limit_price", NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(1), order_type="limit",
                                           limit_price=price)
    if kind == "engine_id":
        return "client_order_id", NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(1),
                                               client_order_id=draw(st.from_regex(r"\AP[0-9]{9,12}\Z")))
    if kind in ("huge_notional", "precise_notional"):
        value = draw(huge_numbers if kind == "huge_notional" else too_precise)
        return "notional", _bypassing_validation(NeutralOrder(symbol="AAPL", side="buy", notional=Decimal(100)),
                                                 notional=value)
    if kind == "no_money":
        return "", NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(draw(st.integers(10**6, 10**11))))
    return "", NeutralOrder(symbol="AAPL", side="sell", qty=Decimal(draw(st.integers(21, 10**9))))


@contextlib.contextmanager
def _engine_with_state(make: Any) -> Any:
    """An engine on a fresh ledger (one per example) holding a position and two resting orders."""
    folder = Path(tempfile.mkdtemp(prefix="wb-bad-"))
    engine = make(db=folder / "ledger.sqlite", starting_cash=Decimal(100000), commission={"per_order": Decimal(1)})
    try:
        price = engine.prices.get_market_price("AAPL", engine.clock())
        engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(20), client_order_id="seed-buy"))
        engine.submit(NeutralOrder(symbol="AAPL", side="buy", qty=Decimal(5), order_type="limit", tif="GTC",
                                   limit_price=(price * Decimal("0.5")).quantize(Decimal("0.01")),
                                   client_order_id="rest-buy"))
        engine.submit(NeutralOrder(symbol="AAPL", side="sell", qty=Decimal(5), order_type="limit", tif="GTC",
                                   limit_price=(price * 2).quantize(Decimal("0.01")), client_order_id="rest-sell"))
        yield engine
    finally:
        engine.close()
        shutil.rmtree(folder, ignore_errors=True)


def _refused(engine: Any, call: Any, field: str | None = None) -> None:
    before = state(engine)
    with pytest.raises(workbench.WorkbenchError) as info:
        call()
    if isinstance(info.value, workbench.InvalidInput):
        assert info.value.field, info.value
        if field:
            assert info.value.field == field, str(info.value)
    assert info.value.broker == "paper", str(info.value)
    assert state(engine) == before, "a refused call changed the engine or its ledger"


@FAST
@given(case=bad_submissions())
def test_engine_refuses_bad_submissions_with_one_typed_error(engine_factory: Any, case: tuple[str, NeutralOrder]):
    field, order = case
    with _engine_with_state(engine_factory) as engine:
        _refused(engine, lambda: engine.submit(order), field or None)


@FAST
@given(target=st.sampled_from(["rest-buy", "rest-sell", "P000000002"]),
       field=st.sampled_from(["qty", "limit_price", "stop_price", "trail_price", "trail_percent"]),
       value=st.one_of(not_numbers, huge_numbers, too_precise))
def test_engine_refuses_bad_replaces_with_one_typed_error(engine_factory: Any, target: str, field: str, value: Any):
    if value is None:
        value = Decimal("-1")  # None means "unchanged" for replace
    with _engine_with_state(engine_factory) as engine:
        _refused(engine, lambda: engine.replace(target, **{field: value}))


@FAST
@given(key=bad_keys, call=st.sampled_from(["cancel", "get_order", "replace"]))
def test_engine_refuses_unknown_or_malformed_order_keys(engine_factory: Any, key: Any, call: str):
    with _engine_with_state(engine_factory) as engine:
        fn = getattr(engine, call)
        _refused(engine, (lambda: fn(key, qty=Decimal(1))) if call == "replace" else (lambda: fn(key)))


@FAST
@given(price=not_numbers, symbol=st.one_of(st.just("AAPL"), st.integers(), st.none()))
def test_engine_refuses_bad_price_updates(engine_factory: Any, price: Any, symbol: Any):
    with _engine_with_state(engine_factory) as engine:
        _refused(engine, lambda: engine.on_price(symbol, price), "symbol" if not isinstance(symbol, str) else "price")
