"""Instruments as a gateway describes them: resolution, contract details, symbol search, market rules.

The universe is the price provider's (``symbols()`` / ``info()`` of the sim provider; any provider
that knows a symbol works, with plainer details). Only US stocks and ETFs exist: every other
security type is answered with error 200, as a gateway answers a contract it cannot find.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from . import messages_data as md
from .history import NY_TZ as NEW_YORK
from .history import TIME_ZONE
from .messages import Instrument

__all__ = ["Catalog", "con_id_for", "IB_CON_IDS", "MARKET_RULES", "US_STOCK_RULE"]

#: Venues of a US stock's SMART routing (one contract-details row each for an ambiguous query).
VENUES = ("SMART", "AMEX", "NYSE", "CBOE", "PHLX", "ISE", "CHX", "ARCA", "ISLAND", "DRCTEDGE", "BEX", "BATS",
          "EDGEA", "BYX", "IEX", "EDGX", "PSX", "MEMX", "LTSE", "PEARL")
ORDER_TYPES = "ACTIVETIM,DAY,GTC,IOC,LMT,MKT,OPG,STP,STPLMT,TRAIL,WHATIF"
#: The one tick rule of US stocks (SEC Rule 612, as the paper engine enforces it): 0.0001 below $1.
US_STOCK_RULE = 26
MARKET_RULES: dict[int, tuple[tuple[float, float], ...]] = {US_STOCK_RULE: ((0.0, 0.0001), (1.0, 0.01))}
#: Security types a gateway knows but the emulator does not trade.
OTHER_SEC_TYPES = {"CASH": "forex", "OPT": "options", "FUT": "futures", "FOP": "futures options", "IND": "indexes",
                   "BOND": "bonds", "CFD": "CFDs", "CMDTY": "commodities", "WAR": "warrants", "FUND": "mutual funds",
                   "CRYPTO": "crypto", "BAG": "combos", "NEWS": "news", "IOPT": "structured products"}
_SEARCH_LIMIT = 16


#: IB's own conIds of the symbols ib_async's notebooks and docs name (so a copied ``Contract(conId=4391)`` finds AMD).
IB_CON_IDS = {"AAPL": 265598, "AMD": 4391, "IBM": 8314, "INTC": 270639, "IWM": 9579970, "MSFT": 272093,
              "NVDA": 4815747, "SPY": 756733, "TSLA": 76792991}


def con_id_for(symbol: str) -> int:
    """A stable conId per symbol (the same across runs): IB's own for the symbols above, else derived."""
    sym = symbol.upper()
    return IB_CON_IDS.get(sym) or 100_000 + zlib.crc32(sym.encode()) % 89_900_000


class Catalog:
    """Instruments of the provider's universe, cached by symbol and conId."""

    def __init__(self, prices: Any, calendar: Any) -> None:
        self.prices = prices
        self.calendar = calendar
        self._by_symbol: dict[str, Instrument | None] = {}
        self._by_con_id: dict[int, Instrument] = {}

    def universe(self) -> list[str]:
        symbols = getattr(self.prices, "symbols", None)
        return list(symbols()) if symbols is not None else []

    def get(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol``, or None when the provider does not know it."""
        sym = (symbol or "").strip().upper()
        if not sym:
            return None
        if sym not in self._by_symbol:
            inst = self._build(sym) if self._known(sym) else None
            self._by_symbol[sym] = inst
            if inst is not None:
                self._by_con_id[inst.con_id] = inst
        return self._by_symbol[sym]

    def by_con_id(self, con_id: int, extra: set[str] = frozenset()) -> Instrument | None:  # type: ignore[assignment]
        if con_id not in self._by_con_id:
            for sym in set(self.universe()) | set(extra):
                if con_id_for(sym) == con_id:
                    self.get(sym)
                    break
        return self._by_con_id.get(con_id)

    def placeholder(self, symbol: str) -> Instrument:
        """An instrument for a symbol the provider no longer knows (an old ledger's order)."""
        return self.get(symbol) or Instrument(symbol, con_id_for(symbol))

    def resolve(self, con_id: int, symbol: str, sec_type: str = "", currency: str = "", primary: str = "",
                extra: set[str] = frozenset()) -> Instrument | None:  # type: ignore[assignment]
        """The instrument a request's contract names, or None (error 200)."""
        if sec_type and sec_type not in ("STK", ""):
            return None
        inst = self.by_con_id(con_id, extra) if con_id else self.get(symbol)
        if inst is None:
            return None
        if currency and currency != inst.currency:
            return None
        aliases = {inst.primary_exchange, "SMART"} | ({"ISLAND"} if inst.primary_exchange == "NASDAQ" else set())
        if primary and primary not in aliases:
            return None
        return inst

    # -- contract details ---------------------------------------------------------------------

    def details(self, inst: Instrument, exchange: str, now: datetime, by_con_id: bool = False) -> list[md.Details]:
        """Contract-details rows: one for a given exchange (or a conId), one per venue when a symbol is given
        without an exchange (as a gateway answers ``Stock('TSLA')``, then ambiguous for qualifyContracts)."""
        venues = (exchange or "SMART",) if exchange or by_con_id else VENUES
        if exchange and exchange not in VENUES:
            return []
        trading, liquid = self.hours(now)
        return [md.Details(inst=inst, exchange=venue, valid_exchanges=",".join(VENUES), order_types=ORDER_TYPES,
                           time_zone_id=TIME_ZONE, trading_hours=trading, liquid_hours=liquid,
                           market_rule_ids=",".join(str(US_STOCK_RULE) for _ in VENUES)) for venue in venues]

    def hours(self, now: datetime, days: int = 7) -> tuple[str, str]:
        """tradingHours (04:00-20:00 with the extended sessions) and liquidHours (the regular session) of
        the next ``days`` days from exchange_calendars, in IB's ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` form."""
        today = now.astimezone(NEW_YORK).date()
        sessions = {s.date: s for s in self.calendar.sessions(today, today + timedelta(days))}
        trading, liquid = [], []
        for day in (today + timedelta(days=i) for i in range(days)):
            stamp = day.strftime("%Y%m%d")
            session = sessions.get(day)
            if session is None:
                trading.append(f"{stamp}:CLOSED")
                liquid.append(f"{stamp}:CLOSED")
                continue
            start, close = session.open.astimezone(NEW_YORK), session.close.astimezone(NEW_YORK)
            late = "2000" if close.hour >= 16 else "1700"  # extended hours end 4 h after an early close
            trading.append(f"{stamp}:0400-{stamp}:{late}")
            liquid.append(f"{stamp}:{start:%H%M}-{stamp}:{close:%H%M}")
        return ";".join(trading), ";".join(liquid)

    def search(self, pattern: str) -> list[Instrument]:
        """reqMatchingSymbols: symbols starting with the pattern first, then names containing it."""
        text = (pattern or "").strip().upper()
        if not text:
            return []
        symbols = sorted(self.universe())
        starts = [s for s in symbols if s.startswith(text)]
        starts.sort(key=lambda s: (s != text, len(s), s))
        named = [s for s in symbols if s not in starts and text in (self._info(s).get("name") or "").upper()]
        return [inst for inst in (self.get(s) for s in (starts + named)[:_SEARCH_LIMIT]) if inst is not None]

    # -- internals ----------------------------------------------------------------------------

    def _known(self, sym: str) -> bool:
        has = getattr(self.prices, "has_symbol", None)
        if has is not None:
            return bool(has(sym))
        try:
            self.prices.get_market_price(sym)
            return True
        except Exception:
            return False

    def _info(self, sym: str) -> dict[str, Any]:
        info = getattr(self.prices, "info", None)
        if info is None:
            return {}
        try:
            return info(sym).model_dump()
        except Exception:
            return {}

    def _build(self, sym: str) -> Instrument:
        info = self._info(sym)
        etf = info.get("kind") == "ETF"
        primary = info.get("exchange") or "NASDAQ"
        return Instrument(symbol=sym, con_id=con_id_for(sym), primary_exchange=primary,
                          trading_class="NMS" if primary == "NASDAQ" else sym,
                          long_name=info.get("name") or sym, industry=info.get("industry", ""),
                          category=info.get("category", ""), stock_type="ETF" if etf else "COMMON")
