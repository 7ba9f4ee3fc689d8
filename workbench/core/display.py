"""Rich notebook display: readable text and small HTML cards for models, the Broker, and workbench frames.

Pure string building (no ipywidgets, no IPython import): models and :class:`~workbench.facade.Broker`
call into here from one-line ``__repr__`` / ``_repr_html_`` hooks, and the widgets build their tables
with the same helpers. Every value is HTML-escaped; secrets never reach this module (it shows names,
ids, states and numbers only).

Frames keep every column of their schema; :func:`frame_html` only *displays* workbench frames
compactly (short headers, seconds-precision UTC times, shortened client ids, blanks for NaN), and
:func:`install_frame_display` registers it with a running IPython, leaving other frames to pandas.

CSS classes here (``wb-broker-card``, ``wb-order-card``..., ``wb-frame wb-frame-orders``...) never reuse a desk
widget's stable class (``wb-broker``, ``wb-orders``...): a notebook shows both, and a selector must match one.
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any

__all__ = [
    "model_text", "model_html", "broker_text", "broker_html", "frame_html", "install_frame_display",
    "table_html", "fmt_num", "fmt_qty", "fmt_money", "fmt_ts", "status_badge", "STYLE",
]

#: One small stylesheet, scoped to ``wb-`` classes (repeated per output; JupyterLab keeps outputs isolated).
STYLE = (
    "<style>"
    ".wb-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;border:1px solid #ccc;"
    "border-radius:4px;padding:6px 10px;display:inline-block;line-height:1.45}"
    ".wb-card b{font-weight:600}.wb-card .wb-muted{color:#777}"
    ".wb-table{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}"
    ".wb-table th{text-align:right;padding:2px 8px;border-bottom:1px solid #aaa;white-space:nowrap}"
    ".wb-table td{text-align:right;padding:2px 8px;white-space:nowrap}"
    ".wb-table th.wb-l,.wb-table td.wb-l{text-align:left}"
    ".wb-table caption{caption-side:bottom;text-align:left;color:#777;font-size:11px;padding-top:3px}"
    ".wb-pos{color:#1a7f37}.wb-neg{color:#cf222e}"
    ".wb-badge{border-radius:3px;padding:0 5px;font-weight:600;font-size:11px}"
    ".wb-sim{background:#fff3bf;color:#7a5b00;border-radius:3px;padding:0 4px;font-size:11px}"
    "</style>"
)

_STATUS_COLORS = {
    "PENDING_NEW": "#6e7781", "NEW": "#0969da", "PARTIALLY_FILLED": "#9a6700", "FILLED": "#1a7f37",
    "PENDING_CANCEL": "#6e7781", "CANCELLED": "#57606a", "EXPIRED": "#57606a", "REJECTED": "#cf222e",
}


# -- number and time formatting ---------------------------------------------------------------

def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, Decimal) and value.is_nan())


def fmt_num(value: Any, places: int = 2) -> str:
    """``1234.5`` -> ``'1,234.50'``; blank for None/NaN."""
    if _is_missing(value):
        return ""
    return f"{float(value):,.{places}f}"


def fmt_price(value: Any) -> str:
    """Prices keep sub-penny digits only when they have them (US tick: 0.0001 below $1)."""
    if _is_missing(value):
        return ""
    places = 4 if abs(float(value)) < 1 or round(float(value), 2) != round(float(value), 4) else 2
    return fmt_num(value, places)


def fmt_qty(value: Any) -> str:
    """Quantities: no decimals when whole, else up to 6 significant decimals."""
    if _is_missing(value):
        return ""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{float(number):,.6f}".rstrip("0")


def fmt_money(value: Any, currency: str | None = None) -> str:
    text = fmt_num(value, 2)
    return f"{text} {currency}" if text and currency else text


def fmt_ts(value: Any) -> str:
    """A UTC timestamp to the second: ``'2026-11-18 15:00:01'``."""
    if _is_missing(value):
        return ""
    try:
        if getattr(value, "tzinfo", None) is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    except (AttributeError, ValueError):  # NaT and friends
        return ""


def _short_id(value: Any, keep: int = 11) -> str:
    text = "" if _is_missing(value) else str(value)
    return text if len(text) <= keep + 3 else text[:keep] + "…"


def _signed(value: Any, text: str) -> str:
    if _is_missing(value) or float(value) == 0:
        return html.escape(text)
    return f'<span class="{"wb-pos" if float(value) > 0 else "wb-neg"}">{html.escape(text)}</span>'


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def status_badge(status: Any) -> str:
    """An order status as a coloured badge (class ``wb-badge``)."""
    name = str(status)
    color = _STATUS_COLORS.get(name, "#57606a")
    return f'<span class="wb-badge" style="color:#fff;background:{color}">{_e(name)}</span>'


def table_html(headers: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 1, caption: str = "",
               css_class: str = "") -> str:
    """A ``wb-table``: the first ``left`` columns left-aligned; cells are already-escaped HTML."""
    head = "".join(f'<th class="wb-l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="wb-l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    cls = f"wb-table {css_class}".strip()
    return f'<table class="{cls}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# -- models -----------------------------------------------------------------------------------

def _order_summary(o: Any) -> str:
    notional = getattr(o, "notional", None)  # a cash-sized order says so, even once the broker sized it
    size = f"${fmt_num(notional)}" if notional is not None else fmt_qty(o.qty)
    text = f"{o.side} {size} {o.symbol} {o.order_type}"
    for label, value in (("limit", o.limit_price), ("stop", o.stop_price), ("trail", o.trail_price)):
        if value is not None:
            text += f" {label} {fmt_price(value)}"
    if getattr(o, "trail_percent", None) is not None:
        text += f" trail {fmt_num(o.trail_percent)}%"
    return f"{text} {o.tif}"


def _fill_part(o: Any) -> str:
    if not o.filled_qty:
        return ""
    avg = f" @ {fmt_price(o.avg_fill_price)}" if o.avg_fill_price is not None else ""
    return f" filled {fmt_qty(o.filled_qty)}{avg}"


def _account_lines(a: Any) -> list[tuple[str, str, Any]]:
    change = a.equity - a.last_equity
    pct = (change / a.last_equity * 100) if a.last_equity else Decimal(0)
    return [
        ("equity", fmt_money(a.equity), None),
        ("day change", f"{change:+,.2f} ({pct:+.2f}%)", change),
        ("cash", fmt_money(a.cash), None),
        ("buying power", fmt_money(a.buying_power), None),
        ("portfolio value", fmt_money(a.portfolio_value), None),
        ("last equity", fmt_money(a.last_equity), None),
    ]


def _position_pnl(p: Any) -> str:
    if p.unrealized_pnl is None:
        return ""
    pct = f" ({float(p.unrealized_pnl_pct) * 100:+.2f}%)" if p.unrealized_pnl_pct is not None else ""
    return f"{float(p.unrealized_pnl):+,.2f}{pct}"


def model_text(obj: Any) -> str:
    """A readable ``repr`` for workbench models (pydantic's own for the others)."""
    kind = type(obj).__name__
    if kind == "AccountInfo":
        lines = [f"AccountInfo {obj.id} ({obj.currency})"]
        lines += [f"  {label:<16}{value:>18}" for label, value, _ in _account_lines(obj)]
        return "\n".join(lines)
    if kind == "Order":
        return (f"<Order {obj.order_id} {_order_summary(obj)} {obj.status}{_fill_part(obj)} "
                f"client_order_id={obj.client_order_id!r} broker={obj.broker!r}>")
    if kind == "NeutralOrder":
        return f"<NeutralOrder {_order_summary(obj)} client_order_id={obj.client_order_id!r}>"
    if kind == "Position":
        mark = f" mark {fmt_price(obj.market_price)}" if obj.market_price is not None else ""
        value = f" value {fmt_num(obj.market_value)}" if obj.market_value is not None else ""
        pnl = f" P&L {_position_pnl(obj)}" if obj.unrealized_pnl is not None else ""
        return f"<Position {obj.symbol} {fmt_qty(obj.qty)} @ {fmt_price(obj.avg_price)}{mark}{value}{pnl}>"
    if kind == "Quote":
        book = f" bid {fmt_price(obj.bid)} ask {fmt_price(obj.ask)}" if obj.bid is not None or obj.ask is not None \
            else ""
        sim = " simulated" if obj.simulated else ""
        return f"<Quote {obj.symbol} last {fmt_price(obj.last)}{book} at {fmt_ts(obj.ts)} UTC ({obj.source}{sim})>"
    if kind == "FillEvent":
        return (f"<FillEvent {obj.exec_id} {obj.side} {fmt_qty(obj.qty)} {obj.symbol} @ {fmt_price(obj.price)} "
                f"commission {fmt_num(obj.commission)} at {fmt_ts(obj.ts)} UTC order {obj.broker_id} "
                f"({obj.local_id}) broker={obj.broker!r}>")
    from pydantic import BaseModel

    return BaseModel.__repr__(obj)


def _card(title: str, rows: Sequence[tuple[str, str]], css: str, note: str = "") -> str:
    body = "".join(f"<tr><td class='wb-l wb-muted'>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows)
    foot = f"<div class='wb-muted'>{note}</div>" if note else ""
    return (f"{STYLE}<div class='wb-card {css}'><div><b>{title}</b></div>"
            f"<table class='wb-table'>{body}</table>{foot}</div>")


def model_html(obj: Any) -> str:
    """A small HTML card for a workbench model."""
    kind = type(obj).__name__
    if kind == "AccountInfo":
        rows = [(label, _signed(sign, value) if sign is not None else _e(value))
                for label, value, sign in _account_lines(obj)]
        return _card(f"Account {_e(obj.id)} <span class='wb-muted'>{_e(obj.currency)}</span>", rows, "wb-account-card")
    if kind in ("Order", "NeutralOrder"):
        rows = [("order", _e(_order_summary(obj)))]
        if kind == "Order":
            rows = [("status", status_badge(obj.status) + (f" <span class='wb-muted'>{_e(obj.raw_status)}</span>"
                                                          if obj.raw_status else "")),
                    *rows,
                    ("filled", _e(f"{fmt_qty(obj.filled_qty)}" + (f" @ {fmt_price(obj.avg_fill_price)}"
                                                                  if obj.avg_fill_price is not None else ""))),
                    ("created", _e(fmt_ts(obj.created_at) + " UTC")), ("updated", _e(fmt_ts(obj.updated_at) + " UTC"))]
        rows.append(("client id", _e(obj.client_order_id)))
        title = f"Order {_e(obj.order_id)} <span class='wb-muted'>{_e(obj.broker)}</span>" if kind == "Order" \
            else "Order request"
        return _card(title, rows, "wb-order-card")
    if kind == "Position":
        rows = [("qty", _e(fmt_qty(obj.qty))), ("avg price", _e(fmt_price(obj.avg_price))),
                ("mark", _e(fmt_price(obj.market_price))), ("market value", _e(fmt_num(obj.market_value))),
                ("unrealized P&L", _signed(obj.unrealized_pnl, _position_pnl(obj)))]
        return _card(f"Position {_e(obj.symbol)}", rows, "wb-position-card")
    if kind == "Quote":
        rows = [("last", _e(fmt_price(obj.last))), ("bid", _e(fmt_price(obj.bid))), ("ask", _e(fmt_price(obj.ask))),
                ("time", _e(fmt_ts(obj.ts) + " UTC"))]
        sim = " <span class='wb-sim'>simulated</span>" if obj.simulated else ""
        return _card(f"Quote {_e(obj.symbol)}", rows, "wb-quote-card", f"source {_e(obj.source)}{sim}")
    if kind == "FillEvent":
        rows = [("fill", _e(f"{obj.side} {fmt_qty(obj.qty)} {obj.symbol} @ {fmt_price(obj.price)}")),
                ("commission", _e(fmt_num(obj.commission))), ("time", _e(fmt_ts(obj.ts) + " UTC")),
                ("order", _e(f"{obj.broker_id} ({obj.local_id})"))]
        return _card(f"Fill {_e(obj.exec_id)} <span class='wb-muted'>{_e(obj.broker)}</span>", rows, "wb-fill-card")
    return f"<pre>{_e(model_text(obj))}</pre>"


# -- the Broker -------------------------------------------------------------------------------

def _broker_facts(broker: Any) -> list[tuple[str, str]]:
    """What a Broker card shows, read without any broker request (a repr must never do I/O)."""
    adapter = broker.adapter
    facts = [("broker", broker.name), ("state", broker.state)]
    config = getattr(adapter, "config", None)
    # the configured account, else the one in use (IB: the first managed account unless ib.account is set)
    account = (getattr(config, "account_id", None) or getattr(config, "account", None)
               or getattr(adapter, "account", None))
    if isinstance(account, str) and account:
        facts.append(("account", account))
    provider = getattr(adapter, "provider", None)
    if provider is not None:
        facts.append(("data", f"{provider.name}" + (" (simulated)" if provider.simulated else "")))
    else:  # the broker's own data (simulated when it says so: IB through workbench's TWS emulator)
        simulated = getattr(adapter, "simulated", False) is True
        facts.append(("data", f"{broker.name} market data" + (" (simulated)" if simulated else "")))
    db = getattr(config, "db_path", None)
    if isinstance(db, str):
        facts.append(("ledger", db))
    return facts


def broker_text(broker: Any) -> str:
    return "<Broker " + " ".join(f"{k}={v}" if k not in ("broker", "state") else v
                                 for k, v in _broker_facts(broker)) + ">"


def broker_html(broker: Any) -> str:
    rows = []
    for key, value in _broker_facts(broker):
        if key == "state":
            color = {"connected": "#1a7f37", "reconnecting": "#9a6700"}.get(value, "#cf222e")
            rows.append((key, f"<span style='color:{color};font-weight:600'>{_e(value)}</span>"))
        elif key == "data" and value.endswith("(simulated)"):
            rows.append((key, _e(value[:-len(" (simulated)")]) + " <span class='wb-sim'>simulated</span>"))
        else:
            rows.append((key, _e(value)))
    return _card(f"Broker {_e(broker.name)}", rows, "wb-broker-card")


# -- frames -----------------------------------------------------------------------------------

_HEADERS = {
    "client_order_id": "client id", "order_type": "type", "raw_status": "raw", "filled_qty": "filled",
    "limit_price": "limit", "stop_price": "stop", "trail_price": "trail", "trail_percent": "trail %",
    "avg_fill_price": "avg fill", "created_at": "created (UTC)", "updated_at": "updated (UTC)",
    "avg_price": "avg price", "market_price": "mark", "market_value": "value", "unrealized_pnl": "unreal. P&L",
    "unrealized_pnl_pct": "P&L %", "commission": "comm.", "exec_id": "exec id", "order_id": "order",
    "ts": "time (UTC)",
}
_QTY_COLS = {"qty", "filled_qty"}
_PNL_COLS = {"unrealized_pnl", "unrealized_pnl_pct"}
_ID_COLS = {"client_order_id"}
_TEXT_COLS = {"symbol", "side", "order_type", "tif", "status", "raw_status", "exec_id", "order_id",
              "client_order_id", "source"}


def _frame_kind(df: Any) -> str | None:
    from . import frames  # late: keep this module import-light

    names = list(df.columns)
    index = df.index.name
    for kind, idx, schema in (("orders", "order_id", frames.ORDER_COLUMNS), ("positions", "symbol",
                              frames.POSITION_COLUMNS), ("fills", "ts", frames.FILL_COLUMNS)):
        if index == idx and names == list(schema):
            return kind
    return None


def _cell(col: str, value: Any) -> str:
    if col in _ID_COLS:
        return _e(_short_id(value))
    if col in _QTY_COLS:
        return _e(fmt_qty(value))
    if col.endswith("_at") or col == "ts":
        return _e(fmt_ts(value))
    if col == "unrealized_pnl_pct":
        return _signed(value, "" if _is_missing(value) else f"{float(value) * 100:+.2f}%")
    if col in _PNL_COLS:
        return _signed(value, "" if _is_missing(value) else f"{float(value):+,.2f}")
    if col == "status":
        return status_badge(value)
    if col in _TEXT_COLS or isinstance(value, str):
        return _e(value)
    return _e(fmt_price(value) if "price" in col else fmt_num(value))


def frame_html(df: Any, max_rows: int | None = None) -> str | None:
    """Compact HTML for a workbench orders/positions/fills frame (every column kept); None for other frames."""
    kind = _frame_kind(df)
    if kind is None:
        return None
    if max_rows is None:
        import pandas as pd

        max_rows = pd.get_option("display.max_rows") or len(df)
    index_name = df.index.name
    attrs: Mapping[str, Any] = dict(df.attrs)
    empty = [c for c in df.columns if len(df) and df[c].isna().all()]  # e.g. trail/notional columns of plain orders
    columns = [c for c in df.columns if c not in empty]
    df = df[columns]
    headers = [_HEADERS.get(index_name, index_name)] + [_HEADERS.get(c, c) for c in columns]
    n = len(df)
    positions = list(range(n)) if n <= max_rows else [*range(max_rows // 2), -1, *range(n - max_rows // 2, n)]
    values = df.to_numpy(dtype=object)
    index = df.index
    rows = []
    for i in positions:
        if i == -1:
            rows.append(["…"] * len(headers))
            continue
        rows.append([_cell(index_name, index[i])] + [_cell(c, values[i][j]) for j, c in enumerate(columns)])
    facts = [f"{n} {kind}" if n != 1 else f"1 {kind.rstrip('s')}", f"{len(columns) + len(empty) + 1} columns"]
    if empty:
        facts.append("empty here: " + ", ".join(_e(_HEADERS.get(c, c)) for c in empty))
    if attrs.get("broker"):
        facts.append(f"broker {_e(attrs['broker'])}")
    caption = " · ".join(facts)
    if attrs.get("simulated"):
        caption += " · <span class='wb-sim'>simulated</span>"
    left = 1 + sum(1 for c in columns[:3] if c in _TEXT_COLS)
    return STYLE + table_html(headers, rows, left=left if kind != "fills" else 1, caption=caption,
                              css_class=f"wb-frame wb-frame-{kind}")


def _frame_formatter(df: Any) -> str | None:
    try:
        compact = frame_html(df)
    except Exception:  # never break a user's display: fall back to pandas, and say why in the log
        from .log import get_logger

        get_logger("workbench.display").warning("compact display of a %s x %s frame failed; showing pandas' own",
                                                *df.shape, exc_info=True)
        compact = None
    return compact if compact is not None else df._repr_html_()


def install_frame_display() -> bool:
    """Show workbench frames compactly in a running IPython (other frames keep pandas' display).

    Idempotent; does nothing (returns False) outside IPython.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    formatter = shell.display_formatter.formatters.get("text/html")
    if formatter is None:
        return False
    import pandas as pd

    formatter.for_type(pd.DataFrame, _frame_formatter)
    return True
