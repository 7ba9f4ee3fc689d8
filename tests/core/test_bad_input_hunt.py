"""A hunt for bad input through the whole public API, counting what escapes.

Every public entry point is called with generated arguments: each ``Broker`` method, sync and async, with
garbage in any argument, positional or by name, and stray extra arguments; ``on_fill``/``on_order``;
``workbench.connect`` (broker name, settings, adapter arguments); ``load_settings`` with garbage at any
key of any section; ``NeutralOrder``; ``Broker(adapter, timeout=...)``. A call *escapes* when it

- raises anything but a :class:`~workbench.WorkbenchError` (an exception the caller's own object raised,
  such as an iterator that fails, may pass through unchanged),
- raises a WorkbenchError that names no field (``field``, or for a ConfigError ``key`` or ``file``) unless it
  is an answer about a well-formed request (unknown symbol or order, a refusal on the merits),
- raises an input error chained to a library exception, or whose text is not one clean line (over 500
  characters, or its ``str()`` itself fails),
- is refused but changed the paper ledger (orders, fills, cash), or
- accepts a value that is surely wrong (a non-number quantity, a boolean, a non-callable callback...).

``make test`` runs a short hunt that fails at the first escape. For the figures::

    WORKBENCH_HUNT_EXAMPLES=3000 WORKBENCH_HUNT_REPORT=1 pytest tests/core/test_bad_input_hunt.py -s --timeout=0

runs that many examples per family, counts every escape instead of stopping, prints the rates per family,
then fails if there was any.
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench
from workbench.core.settings import DEFAULTS
from workbench.facade import OPERATIONS
from tests.test_bad_input import ledger_rows

EXAMPLES = int(os.environ.get("WORKBENCH_HUNT_EXAMPLES", "60"))
REPORT = bool(os.environ.get("WORKBENCH_HUNT_REPORT"))
HUNT = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


class UserCodeError(Exception):
    """What the caller's own objects raise: it may reach the caller unchanged."""


class ReprFailure(Exception):
    """Raised by an argument's ``__repr__``: an error message must not depend on it (so this escapes)."""


class RaisingRepr:
    def __repr__(self) -> str:
        raise ReprFailure("__repr__")

    __str__ = __repr__


class RaisingIter:
    def __iter__(self) -> Iterator[str]:
        raise UserCodeError("__iter__")


class RaisingFloat:
    def __float__(self) -> float:
        raise UserCodeError("__float__")

    def __index__(self) -> int:
        raise UserCodeError("__index__")


def _failing_generator() -> Iterator[str]:
    yield "AAPL"
    raise UserCodeError("generator")


#: Anything a notebook user might pass by mistake (and some things a hostile one would).
garbage = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**12, max_value=10**80).map(lambda n: -n),
    st.integers(min_value=10**12, max_value=10**80), st.floats(), st.decimals(),
    st.text(max_size=12), st.text(min_size=300, max_size=2000), st.binary(max_size=6),
    st.sampled_from(["1e30", "1e999999", "-1e999999", "1e-999999", "sNaN", "-0", "NaN", "inf", "1_000", " 5 ", "",
                     "\x00", "AAPL\x00", "2024-13-45", "yesterday", "0001-01-01", "9999-12-31T23:59:59",
                     "2024-01-01T00:00:00+99:00", "P000000001", "💥", "a" * 65, "buy ", "LIMIT", "gtc"]),
    st.lists(st.integers(), max_size=2), st.lists(st.text(max_size=4), max_size=3), st.tuples(st.text(max_size=3)),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.none(), max_size=2),
    st.sets(st.text(max_size=3), max_size=2), st.frozensets(st.integers(), max_size=2),
    st.datetimes(), st.datetimes(timezones=st.just(UTC)), st.dates(), st.timedeltas(),
    st.just(object()), st.just(float("inf")), st.just(float("nan")), st.just(Decimal("sNaN")), st.just(1j),
    st.just(Fraction(1, 3)), st.just(print), st.just(type), st.just(Ellipsis), st.just(NotImplemented),
    st.just(np.int64(5)), st.just(np.float32(1.5)), st.just(np.array([1, 2])), st.just(np.nan), st.just(pd.NaT),
    st.just(pd.Timestamp("2024-01-02")), st.just(pd.Series([1])), st.just(pd.DataFrame()),
    st.just(np.datetime64("2024-01-02")), st.just(date(2024, 1, 2)), st.just(timedelta(days=3)),
    st.builds(RaisingRepr), st.builds(RaisingIter), st.builds(RaisingFloat), st.builds(_failing_generator),
    st.just(Path("/nonexistent/settings.json")), st.just(Path("/tmp")),
)

#: Valid arguments of each Broker method (by name), from which a call replaces some with garbage.
VALID: dict[str, dict[str, Any]] = {
    "connect": {}, "disconnect": {}, "get_account": {}, "get_positions": {}, "is_market_open": {}, "get_clock": {},
    "get_position": {"symbol": "AAPL"}, "get_quote": {"symbol": "AAPL"}, "get_market_price": {"symbol": "AAPL"},
    "get_order": {"order_id": "P000000001"}, "cancel_order": {"order_id": "P000000001"},
    "get_orders_history": {"limit": 10, "since": "2020-01-01"}, "get_fills": {"since": "2020-01-01"},
    "get_history": {"symbol": "AAPL", "days": 5, "interval": "1d"},
    "place_market_order": {"symbol": "AAPL", "qty": 1, "side": "buy"},
    "place_limit_order": {"symbol": "AAPL", "qty": 1, "side": "buy", "limit_price": 1},
    "place_order": {"symbol": "AAPL", "qty": 1, "side": "sell", "order_type": "limit", "limit_price": 10**6,
                    "tif": "gtc"},
    "subscribe_market_data": {"symbols": ["AAPL"], "callback": lambda quote: None},
    "on_fill": {"callback": lambda fill: None}, "on_order": {"callback": lambda order: None},
}
EXTRA_NAMES = ["since", "limit", "foo", "qty", "order_type", "symbol", "callback", "timeout", "start", "end", "days",
               "notional", "client_order_id", "broker", "tif", "stop_price"]
NUMBER_FIELDS = {"qty", "limit_price", "stop_price", "notional", "trail_price", "trail_percent"}


def surely_bad(name: str, value: Any) -> bool:
    """Values no reading of the argument could accept (so accepting one is an escape)."""
    if name in NUMBER_FIELDS:
        if value is None:
            return name == "qty"
        if isinstance(value, bool):
            return True
        if isinstance(value, (float, Decimal)):
            return not math.isfinite(value) or value <= 0
        if isinstance(value, int):
            return value <= 0
        return not isinstance(value, (str, np.integer, np.floating))
    if name in ("symbol", "order_id", "side"):
        return not isinstance(value, str) and not (name == "side" and isinstance(value, workbench.Side))
    if name in ("callback",):
        return not callable(value)
    if name in ("days", "limit"):
        if value is None:
            return False
        return isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0
    return False


#: Well-formed requests that have an answer, not a field to blame.
ANSWERS = (workbench.SymbolNotFound, workbench.OrderNotFound, workbench.OrderRejected)


class Tally:
    """Outcomes per family; in report mode it keeps going, otherwise the first escape fails the example."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.escapes: collections.Counter[str] = collections.Counter()
        self.kinds: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.samples: dict[str, list[str]] = collections.defaultdict(list)

    def escape(self, family: str, kind: str, detail: str) -> None:
        self.escapes[family] += 1
        self.kinds[family][kind] += 1
        if len(self.samples[family]) < 12:
            self.samples[family].append(f"{kind}: {detail}")
        if not REPORT:
            raise AssertionError(f"{family}: {kind}: {detail}")

    def report(self) -> str:
        lines = [f"{'family':28s} {'calls':>7s} {'escapes':>8s} {'rate':>7s}"]
        for family in sorted(self.calls):
            calls, escapes = self.calls[family], self.escapes[family]
            lines.append(f"{family:28s} {calls:7d} {escapes:8d} {escapes / calls:7.2%}  {dict(self.kinds[family])}")
            lines += [f"      {sample[:220]}" for sample in self.samples[family]]
        total, bad = sum(self.calls.values()), sum(self.escapes.values())
        lines.append(f"{'total':28s} {total:7d} {bad:8d} {bad / max(total, 1):7.2%}")
        return "\n".join(lines)


TALLY = Tally()


def _text(exc: BaseException) -> str | None:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - reported as an escape
        return None


def check(family: str, call: Callable[[], Any], blamed: dict[str, Any], db: Path | None) -> None:
    """Run ``call`` (with ``blamed``: the arguments that were garbage) and tally how it ended."""
    TALLY.calls[family] += 1
    before = ledger_rows(db) if db is not None else None
    described = ", ".join(f"{k}={_safe_repr(v)}" for k, v in blamed.items())
    try:
        result = call()
    except UserCodeError:
        return  # the caller's own object failed: passing it through unchanged is right
    except workbench.WorkbenchError as exc:
        text = _text(exc)
        if text is None:
            return TALLY.escape(family, "str() fails", f"{type(exc).__name__} for {described}")
        named = exc.field or isinstance(exc, workbench.ConfigError) and (exc.key or exc.file)
        if not named and not isinstance(exc, ANSWERS):
            return TALLY.escape(family, "no field", f"{type(exc).__name__}: {text[:150]} for {described}")
        if isinstance(exc, (workbench.InvalidInput, workbench.ConfigError)) and exc.__cause__ is not None:
            return TALLY.escape(family, "chained", f"{type(exc.__cause__).__name__} for {described}")
        if len(text) > 500 or "\n" in text:
            return TALLY.escape(family, "long", f"{len(text)} chars for {described}")
        if before is not None and ledger_rows(db) != before:
            return TALLY.escape(family, "recorded", f"{type(exc).__name__} wrote to the ledger for {described}")
        return None
    except Exception as exc:  # noqa: BLE001 - the property: nothing untyped escapes
        return TALLY.escape(family, "untyped", f"{type(exc).__name__}: {str(exc)[:120]} for {described}")
    _cleanup(result)
    wrong = [name for name, value in blamed.items() if surely_bad(name, value)]
    if wrong:
        TALLY.escape(family, "accepted", f"{described}")


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__} with a failing repr>"
    return text if len(text) < 60 else text[:57] + "..."


def _cleanup(result: Any) -> None:
    if isinstance(result, workbench.Broker):
        result.close()
    elif hasattr(result, "cancel") and callable(result.cancel):
        result.cancel()
    elif callable(result):
        result()  # an on_fill/on_order stop()


@pytest.fixture(scope="module")
def hunt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[workbench.Broker, Path]]:
    db = tmp_path_factory.mktemp("hunt") / "hunt.sqlite"
    broker = workbench.connect(settings={"paper": {"db_path": str(db), "slippage_bps": 0, "commission": 0,
                                                   "tick_interval": 0.05}})
    broker.place_limit_order("AAPL", 1, "buy", 1)  # an order to cancel and look up
    yield broker, db
    broker.close()


def _method_call(broker: workbench.Broker, name: str, data: st.DataObject, asynchronous: bool
                 ) -> tuple[Callable[[], Any], dict[str, Any]]:
    kwargs = dict(VALID[name])
    blamed: dict[str, Any] = {}
    for arg in data.draw(st.lists(st.sampled_from(sorted(kwargs)), max_size=2, unique=True)) if kwargs else []:
        kwargs[arg] = blamed[arg] = data.draw(garbage, label=arg)
    if data.draw(st.integers(0, 5), label="extra") == 0:
        extra = data.draw(st.sampled_from(EXTRA_NAMES), label="extra name")
        if extra not in kwargs:
            kwargs[extra] = blamed[extra] = data.draw(garbage, label=extra)
    args: list[Any] = []
    if kwargs and data.draw(st.booleans(), label="positional"):
        order = list(VALID[name])
        for arg in order[:data.draw(st.integers(1, max(1, len(order))), label="n positional")]:
            if arg in kwargs:
                args.append(kwargs.pop(arg))
    if data.draw(st.integers(0, 9), label="too many") == 0:
        args = [*args, *kwargs.values(), data.draw(garbage, label="surplus")]
        kwargs = {}
        blamed["args"] = args[-1]
    method = getattr(broker, name + ("_async" if asynchronous and name not in ("on_fill", "on_order") else ""))
    if asynchronous and name not in ("on_fill", "on_order"):
        return (lambda: asyncio.run(method(*args, **kwargs))), blamed
    return (lambda: method(*args, **kwargs)), blamed


METHODS = sorted(VALID)
assert set(METHODS) == {op.name for op in OPERATIONS} | {"on_fill", "on_order"}


def test_broker_methods(hunt_broker: tuple[workbench.Broker, Path]) -> None:
    broker, db = hunt_broker

    @HUNT
    @given(name=st.sampled_from(METHODS), asynchronous=st.booleans(), data=st.data())
    def hunt(name: str, asynchronous: bool, data: st.DataObject) -> None:
        if name in ("connect", "disconnect") and not data.draw(st.integers(0, 3), label="connect calls") == 0:
            name = "get_account"  # (a disconnect would make every later call a BrokerUnavailable)
        call, blamed = _method_call(broker, name, data, asynchronous)
        suffix = "_async" if asynchronous and name not in ("on_fill", "on_order") else ""
        check(f"Broker.{name}{suffix}", call, blamed, db)
        if not broker.is_connected():
            broker.connect()

    _finish("broker methods", hunt)


#: Every dotted key of the defaults, plus sections and unknown keys, for settings garbage.
def _dotted(node: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _dotted(value, prefix + key + ".")
    return keys


SETTING_KEYS = _dotted(DEFAULTS) + ["widgets.foo", "ib.hostt", "alpaca.foo", "market_data.yfinance.foo", "papr",
                                    "paper.commission.foo", "_comment", "market_data.sim.symbols.AAPL"]


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def _trade_once(settings_: dict[str, Any]) -> None:
    """Connect with ``settings_`` and use the Broker: settings accepted at load must not fail later, raw."""
    with workbench.connect(settings=settings_) as broker:
        broker.get_account()
        try:
            broker.place_market_order("AAPL", 10, "buy")
        except (workbench.OrderRejected, workbench.MarketClosed):
            pass  # the settings' own effect (funds, hours), a typed refusal


def test_settings_and_connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no settings.json found on the way up: only what the call passes
    db = str(tmp_path / "connect.sqlite")

    @HUNT
    @given(key=st.sampled_from(SETTING_KEYS), value=garbage, how=st.sampled_from(["load", "connect", "broker",
                                                                                   "kwargs", "settings"]),
           other=garbage)
    def hunt(key: str, value: Any, how: str, other: Any) -> None:
        base = {"paper": {"db_path": db}}
        if how == "load":
            check("load_settings(dict)", lambda: workbench.load_settings(_nested(key, value)), {key: value}, None)
        elif how == "connect":
            settings_ = _nested(key, value)
            settings_.setdefault("paper", {}).setdefault("db_path", db) if isinstance(settings_.get("paper"), dict) \
                else None
            check("connect(settings=dict)", lambda: _trade_once(settings_), {key: value}, None)
        elif how == "broker":
            check("connect(broker)", lambda: workbench.connect(value, settings=base), {"broker": value}, None)
        elif how == "kwargs":
            check("connect(**kwargs)", lambda: workbench.connect("paper", settings=base, **{str(key): value}),
                  {str(key): value}, None)
        else:
            check("connect(settings=value)", lambda: workbench.connect(settings=value), {"settings": value}, None)

    _finish("settings and connect", hunt)


def test_orders_and_timeouts(hunt_broker: tuple[workbench.Broker, Path]) -> None:
    broker, _ = hunt_broker
    fields = ["symbol", "side", "qty", "order_type", "tif", "limit_price", "stop_price", "trail_price",
              "trail_percent", "notional", "client_order_id", "broker", "foo"]

    @HUNT
    @given(field=st.sampled_from(fields), value=garbage, parse=st.booleans(), timeout=garbage)
    def hunt(field: str, value: Any, parse: bool, timeout: Any) -> None:
        order = {"symbol": "AAPL", "side": "buy", "qty": 1, field: value}
        if parse:
            check("NeutralOrder.parse", lambda: workbench.NeutralOrder.parse(order), {field: value}, None)
        else:
            check("NeutralOrder(**fields)", lambda: workbench.NeutralOrder(**order), {field: value}, None)
        check("Broker(adapter, timeout)", lambda: workbench.Broker(broker.adapter, timeout=timeout),
              {"timeout": timeout}, None)

    _finish("orders and timeouts", hunt)


def _finish(what: str, hunt: Callable[[], None]) -> None:
    """Run ``hunt``; in report mode print its families' figures; fail if any of them escaped."""
    before = set(TALLY.calls)
    hunt()
    mine = Tally()
    for family in set(TALLY.calls) - before:
        mine.calls[family], mine.escapes[family] = TALLY.calls[family], TALLY.escapes[family]
        mine.kinds[family], mine.samples[family] = TALLY.kinds[family], TALLY.samples[family]
    if REPORT:
        print(f"\n-- bad-input hunt: {what} ({EXAMPLES} examples) --\n{mine.report()}")
    assert not sum(mine.escapes.values()), mine.report()


def test_the_hunt_can_see_an_escape() -> None:
    """Control: the checks flag an untyped error, an unnamed one, a chained one and an accepted bad value."""
    tally, saved = Tally(), globals()["TALLY"]
    globals()["TALLY"] = tally
    try:
        def chained() -> None:
            try:
                raise ValueError("x")
            except ValueError as exc:
                raise workbench.InvalidInput("bad", field="x") from exc

        for call, blamed in ((lambda: 1 / 0, {}), (lambda: (_ for _ in ()).throw(workbench.NotSupported("n")), {}),
                             (chained, {}), (lambda: None, {"qty": True}), (lambda: None, {"callback": 5})):
            try:
                check("control", call, blamed, None)
            except AssertionError:
                pass
        assert tally.escapes["control"] == 5 and set(tally.kinds["control"]) == {"untyped", "no field", "chained",
                                                                                  "accepted"}
    finally:
        globals()["TALLY"] = saved
