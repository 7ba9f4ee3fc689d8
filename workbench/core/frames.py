"""The one place DataFrames are built. Every table has a fixed schema; empty means empty-with-schema.

Schemas (index first; every timestamp is tz-aware UTC):

=========  ==============  =====================================================================
table      index           columns
=========  ==============  =====================================================================
history    ``ts``          open, high, low, close, volume (float64). Daily and longer bars are
                           labelled with the session date at 00:00 UTC; intraday bars with
                           their start time.
positions  ``symbol``      qty, avg_price, market_price, market_value, unrealized_pnl,
                           unrealized_pnl_pct (float64; NaN where the broker gave no price)
orders     ``order_id``    client_order_id, symbol, side, order_type, tif, status, raw_status
                           (str); qty, filled_qty, limit_price, stop_price, trail_price,
                           trail_percent, notional, avg_fill_price (float64; NaN when absent);
                           created_at, updated_at (datetime64 UTC)
fills      ``ts``          exec_id, order_id, client_order_id, symbol, side (str); qty, price,
                           commission (float64). ``qty`` is per fill, never cumulative.
quotes     ``symbol``      last, bid, ask (float64; NaN if unknown), ts (datetime64 UTC), source (str)
=========  ==============  =====================================================================

``df.attrs`` always carries ``broker`` (or None for pure market data) and ``source`` (the data
source); history also carries ``symbol``, ``interval``, ``adjusted`` and ``simulated``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .models import FillEvent, Order, Position, Quote

__all__ = [
    "HISTORY_COLUMNS",
    "POSITION_COLUMNS",
    "ORDER_COLUMNS",
    "FILL_COLUMNS",
    "history_frame",
    "empty_history",
    "long_history_frame",
    "positions_frame",
    "orders_frame",
    "fills_frame",
    "quotes_frame",
    "QUOTE_COLUMNS",
]

_F = "float64"
_S = "str"
_T = "datetime64[ns, UTC]"

HISTORY_COLUMNS: dict[str, str] = {c: _F for c in ("open", "high", "low", "close", "volume")}
POSITION_COLUMNS: dict[str, str] = {
    c: _F for c in ("qty", "avg_price", "market_price", "market_value", "unrealized_pnl", "unrealized_pnl_pct")
}
ORDER_COLUMNS: dict[str, str] = {
    "client_order_id": _S, "symbol": _S, "side": _S, "order_type": _S, "tif": _S, "status": _S,
    "raw_status": _S, "qty": _F, "filled_qty": _F, "limit_price": _F, "stop_price": _F,
    "trail_price": _F, "trail_percent": _F, "notional": _F, "avg_fill_price": _F, "created_at": _T,
    "updated_at": _T,
}
FILL_COLUMNS: dict[str, str] = {
    "exec_id": _S, "order_id": _S, "client_order_id": _S, "symbol": _S, "side": _S,
    "qty": _F, "price": _F, "commission": _F,
}


def _utc_index(values: Any, name: str) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(values, name=name)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return idx.as_unit("ns")


def _frame(rows: Mapping[str, Any], schema: dict[str, str], index: pd.Index, attrs: Mapping[str, Any]) -> pd.DataFrame:
    data = {col: pd.Series(rows.get(col, []), index=index, dtype=dtype) for col, dtype in schema.items()}
    df = pd.DataFrame(data, index=index, columns=list(schema))
    df.attrs.update(attrs)
    return df

QUOTE_COLUMNS: dict[str, str] = {"last": _F, "bid": _F, "ask": _F, "ts": _T, "source": _S}


def history_frame(
    ts: Any,
    open: Any,
    high: Any,
    low: Any,
    close: Any,
    volume: Any,
    **attrs: Any,
) -> pd.DataFrame:
    """History frame from columnar arrays (epoch-ns ints, datetimes or a DatetimeIndex for ``ts``).

    Rows are sorted by time and duplicate timestamps keep the last value.
    """
    index = _utc_index(ts, "ts")
    cols = {name: np.asarray(arr, dtype="float64") for name, arr in
            zip(HISTORY_COLUMNS, (open, high, low, close, volume), strict=True)}
    df = pd.DataFrame(cols, index=index, copy=False)
    if not index.is_monotonic_increasing or not index.is_unique:
        df = df[~df.index.duplicated(keep="last")].sort_index()
    df.attrs.update(_history_attrs(attrs))
    return df


def long_history_frame(parts: Mapping[str, pd.DataFrame] | list[pd.DataFrame], **attrs: Any) -> pd.DataFrame:
    """Several symbols' history in one long frame indexed by (symbol, ts), sorted.

    ``parts`` maps symbol -> history frame, or is a list of frames that are already long.
    An empty input gives an empty frame with the schema and the two index levels.
    """
    if isinstance(parts, Mapping):
        parts = [pd.concat(list(parts.values()), keys=list(parts), names=["symbol", "ts"])] if parts else []
    parts = [p for p in parts if len(p)]
    if not parts:
        empty = empty_history()
        index = pd.MultiIndex.from_arrays([pd.Index([], dtype=_S), empty.index], names=["symbol", "ts"])
        out = pd.DataFrame({c: pd.Series([], dtype=_F) for c in HISTORY_COLUMNS}, index=index)
    else:
        out = pd.concat(parts).sort_index() if len(parts) > 1 else parts[0]
    out.attrs.update(attrs)
    return out


def empty_history(**attrs: Any) -> pd.DataFrame:
    """An empty history frame with the schema (never None)."""
    return history_frame([], [], [], [], [], [], **attrs)


def _history_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    base = {"broker": None, "source": None, "symbol": None, "interval": None, "adjusted": None, "simulated": False}
    base.update(attrs)
    return base


def positions_frame(positions: Iterable[Position], **attrs: Any) -> pd.DataFrame:
    items = list(positions)
    index = pd.Index([p.symbol for p in items], name="symbol", dtype=_S)
    rows = {col: [_num(getattr(p, col)) for p in items] for col in POSITION_COLUMNS}
    return _frame(rows, POSITION_COLUMNS, index, {"broker": None, "source": None, **attrs})


def orders_frame(orders: Iterable[Order], **attrs: Any) -> pd.DataFrame:
    items = list(orders)
    index = pd.Index([o.order_id for o in items], name="order_id", dtype=_S)
    rows: dict[str, list[Any]] = {col: [] for col in ORDER_COLUMNS}
    for o in items:
        for col, dtype in ORDER_COLUMNS.items():
            value = getattr(o, col)
            rows[col].append(_num(value) if dtype == _F else (str(value) if dtype == _S else value))
    return _frame(rows, ORDER_COLUMNS, index, {"broker": None, "source": None, **attrs})


def fills_frame(fills: Iterable[FillEvent], **attrs: Any) -> pd.DataFrame:
    items = list(fills)
    index = _utc_index([f.ts for f in items], "ts")
    rows = {
        "exec_id": [f.exec_id for f in items],
        "order_id": [f.broker_id for f in items],
        "client_order_id": [f.local_id for f in items],
        "symbol": [f.symbol for f in items],
        "side": [str(f.side) for f in items],
        "qty": [float(f.qty) for f in items],
        "price": [float(f.price) for f in items],
        "commission": [float(f.commission) for f in items],
    }
    return _frame(rows, FILL_COLUMNS, index, {"broker": None, "source": None, **attrs})


def quotes_frame(quotes: Iterable[Quote], **attrs: Any) -> pd.DataFrame:
    items = list(quotes)
    index = pd.Index([q.symbol for q in items], name="symbol", dtype=_S)
    rows = {"last": [float(q.last) for q in items], "bid": [_num(q.bid) for q in items],
            "ask": [_num(q.ask) for q in items], "ts": [q.ts for q in items], "source": [q.source for q in items]}
    simulated = any(q.simulated for q in items)
    return _frame(rows, QUOTE_COLUMNS, index, {"broker": None, "source": None, "simulated": simulated, **attrs})


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)
