"""The account as a gateway reports it: values and summary tags, P&L and what-if margin estimates.

Everything is computed from the paper engine (cash, positions, fills) and its configuration:

- P&L per symbol by the average-cost method from the ledger's fills: realized today (closing trades, net
  of their commissions), unrealized at the current mark, daily = the change since the previous session
  close of what was held, plus today's trades marked from their prices, less today's commissions.
- Margin (Reg T, as an IB margin account): initial 50% of long and short market value, maintenance
  25% of longs and 30% of shorts. A cash account requires the full value (100%) and ``BuyingPower`` is
  what the paper engine lets you spend (cash minus open buy orders). A margin account's ``BuyingPower``
  is that too (the engine does not lend), but at most twice (1 / 50%) the available funds left once the
  open orders fill: a short sale's proceeds are cash, not buying power.
- Margin enforcement (margin accounts): an order is refused when the initial margin after it, with the
  open orders filled (per symbol the worse of its buys or its sells), would exceed the equity with loan
  value after it, unless it lowers that requirement (a cover is always accepted), as IB refuses it.
- What-if: the order priced at what it would fill at (:meth:`AccountModel.expected_fill`), its
  commission from the configured paper commission rules, and the margin before / change / after,
  without placing anything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from workbench.core.enums import Side
from workbench.paper import rules

from .history import NY

__all__ = ["PnlBook", "AccountModel", "SymbolPnl"]

_ZERO = Decimal(0)
#: (initial long, initial short, maintenance long, maintenance short) per account type.
MARGIN_RATES = {"margin": (Decimal("0.5"), Decimal("0.5"), Decimal("0.25"), Decimal("0.3")),
                "cash": (Decimal(1), Decimal(1), Decimal(1), Decimal(1))}
#: IB's wording of a margin rejection (error 201), as a paper or live account sends it.
MARGIN_REFUSAL = ("We are unable to accept your order. Your Available Funds are insufficient to cover the change in "
                  "the account's margin requirements if this order executes. In order to obtain the desired position "
                  "your Equity with Loan Value [{equity} USD] must exceed the new total Initial Margin of "
                  "[{initial} USD].")


@dataclass
class SymbolPnl:
    qty: Decimal = _ZERO
    avg: Decimal = _ZERO
    day: date | None = None  # the session day of the latest fill; the two below are of that day
    realized: Decimal = _ZERO
    day_flow: list[tuple[Decimal, Decimal, Decimal]] = field(default_factory=list)  # (signed qty, price, commission)


def session_day(ts: datetime) -> date:
    return pd.Timestamp(ts).tz_convert(NY).date()


class PnlBook:
    """Positions replayed from fills (average cost) with today's realized P&L and trade flow."""

    def __init__(self, fills: list[Any]) -> None:
        self.symbols: dict[str, SymbolPnl] = defaultdict(SymbolPnl)
        for fill in sorted(fills, key=lambda f: f.ts):
            self.add(fill)

    def add(self, fill: Any) -> None:
        book = self.symbols[fill.symbol]
        day = session_day(fill.ts)
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        if book.day != day:
            book.day, book.day_flow, book.realized = day, [], _ZERO
        book.day_flow.append((signed, fill.price, fill.commission))
        held = book.qty
        if held and (held > 0) != (signed > 0):  # reducing or crossing: realize the closed part, net of its commission
            closed = min(abs(held), abs(signed))
            book.realized += (fill.price - book.avg) * closed * (1 if held > 0 else -1)
            book.realized -= fill.commission * closed / abs(signed)
        new = held + signed
        if new == 0:
            book.avg = _ZERO
        elif held == 0 or (held > 0) == (signed > 0):
            book.avg = (held * book.avg + signed * fill.price) / new
        elif (held > 0) != (new > 0):
            book.avg = fill.price
        book.qty = new

    def realized_today(self, symbol: str, today: date) -> Decimal:
        book = self.symbols.get(symbol)
        return book.realized if book is not None and book.day == today else _ZERO

    def daily(self, symbol: str, qty: Decimal, mark: Decimal, prev_close: Decimal | None, today: date) -> Decimal:
        """Today's P&L of ``symbol``: start-of-day holdings marked from the previous close, today's trades
        from their prices, less today's commissions."""
        book = self.symbols.get(symbol)
        flow = book.day_flow if book is not None and book.day == today else []
        traded = sum((q for q, _, _ in flow), _ZERO)
        start_qty = qty - traded
        pnl = start_qty * (mark - (prev_close if prev_close is not None else mark))
        pnl += sum((q * (mark - p) - c for q, p, c in flow), _ZERO)
        return pnl


class AccountModel:
    """Account values for one account from the engine and its P&L book."""

    def __init__(self, engine: Any, book: PnlBook, account: str, margin: bool, prev_close: Any) -> None:
        self.engine = engine
        self.book = book
        self.account = account
        self.margin = margin
        self.prev_close = prev_close  # (symbol, now) -> float | None

    @property
    def account_type(self) -> str:
        return "margin" if self.margin else "cash"

    def requirements(self, values: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
        """(initial, maintenance) margin for market values by symbol (negative = short)."""
        _, _, ml, ms = MARGIN_RATES[self.account_type]
        init = sum((self._initial(v) for v in values.values()), _ZERO)
        maint = sum((v * ml if v > 0 else -v * ms for v in values.values()), _ZERO)
        return init, maint

    def _initial(self, value: Decimal) -> Decimal:
        il, ish, _, _ = MARGIN_RATES[self.account_type]
        return value * il if value > 0 else -value * ish

    def look_ahead(self, values: dict[str, Decimal], extra: tuple[str, Decimal] | None = None,
                   exclude: str | None = None) -> Decimal:
        """The initial margin once the open orders (but the engine order ``exclude``) and ``extra`` (symbol,
        signed value) filled at their prices: per symbol, the worse of all its buys or all its sells filling."""
        buys: dict[str, Decimal] = defaultdict(Decimal)
        sells: dict[str, Decimal] = defaultdict(Decimal)
        for o in self.engine.open_orders():
            if o.order_id == exclude:
                continue
            price = o.limit_price or o.stop_price or self._market(o.symbol)
            value = o.notional if o.qty is None else (o.qty - o.filled_qty) * price
            (buys if o.side is Side.BUY else sells)[o.symbol] += value or _ZERO
        if extra is not None:
            symbol, signed = extra
            (buys if signed > 0 else sells)[symbol] += abs(signed)
        return sum((max(self._initial(values.get(sym, _ZERO) + buys[sym]),
                        self._initial(values.get(sym, _ZERO) - sells[sym]))
                    for sym in {*values, *buys, *sells}), _ZERO)

    def _market(self, symbol: str) -> Decimal:
        return self.engine.prices.get_market_price(symbol, self.engine.clock())

    def snapshot(self) -> dict[str, Any]:
        """Every figure the account messages need, from one read of the engine."""
        info = self.engine.account()
        positions = self.engine.positions()
        now = self.engine.clock()
        today = session_day(now)
        values = {p.symbol: (p.market_value if p.market_value is not None else p.qty * p.avg_price) for p in positions}
        init, maint = self.requirements(values)
        unrealized = sum((p.unrealized_pnl or _ZERO for p in positions), _ZERO)
        realized = sum((self.book.realized_today(s, today) for s in self.book.symbols), _ZERO)
        stock = sum(values.values(), _ZERO)
        gross = sum((abs(v) for v in values.values()), _ZERO)
        equity = info.equity
        return {"info": info, "positions": positions, "now": now, "today": today, "values": values, "init": init,
                "maint": maint, "unrealized": unrealized, "realized": realized, "stock": stock, "gross": gross,
                "equity": equity, "buying_power": self._buying_power(info, values)}

    def _buying_power(self, info: Any, values: dict[str, Decimal]) -> Decimal:
        """What a buy can still spend (see the module docstring)."""
        if not self.margin:
            return info.buying_power
        il = MARGIN_RATES["margin"][0]
        return max(_ZERO, min(info.buying_power, (info.equity - self.look_ahead(values)) / il))

    def segment_values(self, s: dict[str, Any]) -> dict[str, Any]:
        info, equity = s["info"], s["equity"]
        available, excess = equity - s["init"], equity - s["maint"]
        return {
            "NetLiquidation": equity, "TotalCashValue": info.cash, "SettledCash": info.cash, "AccruedCash": 0,
            "BuyingPower": s["buying_power"], "EquityWithLoanValue": equity,
            "PreviousDayEquityWithLoanValue": info.last_equity if info.last_equity is not None else equity,
            "GrossPositionValue": s["gross"], "RegTEquity": equity, "RegTMargin": s["init"],
            "SMA": max(available, _ZERO), "InitMarginReq": s["init"], "MaintMarginReq": s["maint"],
            "AvailableFunds": available, "ExcessLiquidity": excess, "FullInitMarginReq": s["init"],
            "FullMaintMarginReq": s["maint"], "FullAvailableFunds": available, "FullExcessLiquidity": excess,
            "LookAheadInitMarginReq": s["init"], "LookAheadMaintMarginReq": s["maint"],
            "LookAheadAvailableFunds": available, "LookAheadExcessLiquidity": excess, "AccruedDividend": 0,
        }

    def ledger_values(self, s: dict[str, Any]) -> dict[str, Any]:
        cash = s["info"].cash
        return {"CashBalance": cash, "TotalCashBalance": cash, "NetLiquidationByCurrency": s["equity"],
                "StockMarketValue": s["stock"], "UnrealizedPnL": s["unrealized"], "RealizedPnL": s["realized"],
                "ExchangeRate": 1, "AccruedCash": 0, "FuturesPNL": 0, "OptionMarketValue": 0}

    def plain_values(self, s: dict[str, Any]) -> dict[str, Any]:
        equity = s["equity"]
        cushion = (equity - s["maint"]) / equity if equity else _ZERO
        leverage = s["gross"] / equity if equity else _ZERO
        return {"AccountType": "INDIVIDUAL", "Cushion": round(cushion, 6), "Leverage-S": round(leverage, 6),
                "DayTradesRemaining": "-1", "LookAheadNextChange": "0", "HighestSeverity": "0"}

    def account_rows(self, account: str | None = None) -> list[tuple[str, Any, str]]:
        """updateAccountValue rows, as a gateway sends them: segment values in USD, ledger values in BASE
        and USD, and a few without currency. Another managed account than the engine's is empty (zeros)."""
        s = self.snapshot()
        code = account or self.account
        segment, plain, ledger = self._values(s, code)
        rows: list[tuple[str, Any, str]] = [("AccountCode", code, ""), ("AccountOrGroup", code, "BASE"),
                                            ("AccountOrGroup", code, "USD"), ("AccountReady", "true", ""),
                                            ("Currency", "BASE", "BASE"), ("Currency", "USD", "USD")]
        rows += [(k, v, "") for k, v in plain.items()]
        rows += [(k, v, "USD") for k, v in segment.items()]
        for key, value in ledger.items():
            rows += [(key, value, "BASE"), (key, value, "USD")]
        return rows

    def _values(self, s: dict[str, Any], account: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        segment, plain, ledger = self.segment_values(s), self.plain_values(s), self.ledger_values(s)
        if account != self.account:
            segment, ledger = dict.fromkeys(segment, 0), {**dict.fromkeys(ledger, 0), "ExchangeRate": 1}
            plain = {**plain, "Cushion": 0, "Leverage-S": 0}
        return segment, plain, ledger

    def summary_rows(self, tags: str, account: str | None = None) -> list[tuple[str, Any, str]]:
        """reqAccountSummary rows for the requested tags (``$LEDGER``, ``$LEDGER:ALL``, ``$LEDGER:USD`` too)."""
        s = self.snapshot()
        segment, plain, ledger = self._values(s, account or self.account)
        rows: list[tuple[str, Any, str]] = []
        for tag in (t.strip() for t in tags.split(",") if t.strip()):
            if tag.startswith("$LEDGER"):
                which = tag.partition(":")[2].upper() or "BASE"
                currencies = ("BASE", "USD") if which == "ALL" else (which,)
                rows += [(key, value, cur) for cur in currencies if cur in ("BASE", "USD")
                         for key, value in ledger.items()]
            elif tag in segment:
                rows.append((tag, segment[tag], "USD"))
            elif tag in plain:
                rows.append((tag, plain[tag], ""))
            elif tag.startswith("DayTradesRemaining"):
                rows.append((tag, "-1", ""))
            elif tag == "Leverage":
                rows.append(("Leverage", plain["Leverage-S"], ""))
        return rows

    # -- P&L ----------------------------------------------------------------------------------

    def pnl(self) -> tuple[Decimal, Decimal, Decimal]:
        """(daily, unrealized, realized) of the whole account."""
        s = self.snapshot()
        daily = sum((self._single(p.symbol, p, s["now"])[1] for p in s["positions"]), _ZERO)
        held = {p.symbol for p in s["positions"]}
        daily += sum((self.book.realized_today(sym, s["today"]) for sym in self.book.symbols if sym not in held),
                     _ZERO)
        return daily, s["unrealized"], s["realized"]

    def single(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """pnlSingle figures for ``symbol``: (qty, daily, unrealized, realized, value)."""
        position = self.engine.position(symbol)
        return self._single(symbol, position, self.engine.clock())

    def _single(self, symbol: str, position: Any, now: datetime) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        today = session_day(now)
        realized = self.book.realized_today(symbol, today)
        if position is None or position.market_price is None:
            qty = position.qty if position is not None else _ZERO
            return qty, realized, _ZERO, realized, _ZERO
        close = self.prev_close(symbol, now)
        daily = self.book.daily(symbol, position.qty, position.market_price,
                                Decimal(repr(close)) if close is not None else None, today)
        return position.qty, daily, position.unrealized_pnl or _ZERO, realized, position.market_value or _ZERO

    # -- what-if and margin enforcement --------------------------------------------------------

    def expected_fill(self, order: Any, market: Decimal) -> tuple[Decimal, Decimal]:
        """(reference, fill) of a NeutralOrder placed now at ``market``: the price it executes from (the market
        for a market order or a marketable limit, the limit for a resting limit, the stop for a stop not yet
        triggered) and the price the paper engine fills it at (the reference moved against the trader by the
        configured slippage and rounded against him, never beyond the limit). A trailing stop, whose trigger
        follows the price, is priced from the market."""
        buy = order.side is Side.BUY
        ref = market
        if order.stop_price is not None and not rules.crossed(order.side, market, order.stop_price):
            ref = order.stop_price
        limit = order.limit_price
        if limit is not None and (ref > limit if buy else ref < limit):
            ref = limit
        return ref, rules.fill_price(order.side, ref, self.engine.config.slippage_bps / Decimal(10_000), limit)

    def _impact(self, equity: Decimal, order: Any, market: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """(signed value, commission, equity with loan after) of ``order`` filling as expected."""
        ref, fill = self.expected_fill(order, market)
        commission = self.engine.config.commission.for_fill(order.qty)
        return order.side.sign * order.qty * ref, commission, equity - commission - order.qty * abs(fill - ref)

    def what_if(self, order: Any, market: Decimal) -> dict[str, Any]:
        """The OrderState of a what-if NeutralOrder: margin before / change / after and the commission."""
        s = self.snapshot()
        signed, commission, ewl1 = self._impact(s["equity"], order, market)
        after = dict(s["values"])
        after[order.symbol] = after.get(order.symbol, _ZERO) + signed
        init0, maint0 = s["init"], s["maint"]
        init1, maint1 = self.requirements(after)
        ewl0 = s["equity"]
        return {"initMarginBefore": _money(init0), "maintMarginBefore": _money(maint0),
                "equityWithLoanBefore": _money(ewl0), "initMarginChange": _money(init1 - init0),
                "maintMarginChange": _money(maint1 - maint0), "equityWithLoanChange": _money(ewl1 - ewl0),
                "initMarginAfter": _money(init1), "maintMarginAfter": _money(maint1),
                "equityWithLoanAfter": _money(ewl1), "commission": float(commission),
                "minCommission": float(commission), "maxCommission": float(commission), "commissionCurrency": "USD",
                "warningText": ""}

    def margin_refusal(self, order: Any, market: Decimal, replacing: str | None = None) -> str:
        """Why a margin account refuses ``order`` (a NeutralOrder; ``replacing``: the engine order it modifies),
        in IB's words; "" when it fits, lowers the requirement, or the account is a cash account."""
        if not self.margin or order.qty is None:
            return ""
        values, equity = self._margin_state()
        signed, _, ewl1 = self._impact(equity, order, market)
        before = self.look_ahead(values)  # a modified order counts as it stands now
        after = self.look_ahead(values, (order.symbol, signed), exclude=replacing)
        if after <= ewl1 or after <= before:
            return ""
        return MARGIN_REFUSAL.format(equity=_money(ewl1), initial=_money(after))

    def _margin_state(self) -> tuple[dict[str, Decimal], Decimal]:
        """(position values, equity) for a margin check: one read of the positions, none of the other figures
        :meth:`snapshot` makes for the account messages (this runs on every order of a margin account)."""
        cash = self.engine.cash
        values = {p.symbol: (p.market_value if p.market_value is not None else p.qty * p.avg_price)
                  for p in self.engine.positions()}
        return values, cash + sum(values.values(), _ZERO)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"
