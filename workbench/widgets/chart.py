"""A price chart (candles or OHLC bars) with the user's own fills marked, redrawn when a fill arrives.

Drawn with matplotlib's object API (``Figure`` + Agg, no pyplot state, safe off the kernel thread) into an
``ipywidgets.Image``: it renders the same in JupyterLab, Voila, exported HTML and a screenshot, needs no
front-end extension, and a redraw is one PNG. History and fills come through the Broker facade.
"""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from workbench.core import display, frames
from workbench.core.errors import WorkbenchError

from ._args import chart_args, parse_symbol
from ._base import Component, error_text, log

__all__ = ["PriceChart", "render_chart"]

_UP, _DOWN, _BUY, _SELL = "#1a7f37", "#cf222e", "#0969da", "#bf3989"


def render_chart(bars: pd.DataFrame, fills: pd.DataFrame, title: str, kind: str = "candle",
                 size: tuple[float, float] = (7.0, 3.4), dpi: int = 80) -> bytes:
    """PNG of ``bars`` (history schema) with ``fills`` (fills schema) marked: ▲ buys, ▼ sells."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(True, alpha=0.25)
    if bars.empty:
        ax.text(0.5, 0.5, "no bars", ha="center", va="center", transform=ax.transAxes)
    else:
        x = np.arange(len(bars))
        o, h, lo, c = (bars[col].to_numpy() for col in ("open", "high", "low", "close"))
        colors = np.where(c >= o, _UP, _DOWN)
        ax.vlines(x, lo, h, colors=colors, linewidth=0.8)
        if kind == "ohlc":
            ax.hlines(o, x - 0.3, x, colors=colors, linewidth=1.0)
            ax.hlines(c, x, x + 0.3, colors=colors, linewidth=1.0)
        else:
            ax.bar(x, np.maximum(np.abs(c - o), (h.max() - lo.min()) * 0.002), 0.6, bottom=np.minimum(o, c),
                   color=colors, edgecolor=colors, linewidth=0.5)
        if not fills.empty:
            slots = bars.index.searchsorted(fills.index, side="right") - 1
            keep = slots >= 0
            for side, marker, color in (("BUY", "^", _BUY), ("SELL", "v", _SELL)):
                mask = keep & (fills["side"].to_numpy() == side)
                if mask.any():
                    ax.scatter(slots[mask], fills["price"].to_numpy()[mask], marker=marker, s=60, color=color,
                               edgecolors="white", linewidths=0.8, zorder=3, label=f"my {side.lower()}s")
            if keep.any():
                ax.legend(loc="upper left", fontsize=8, frameon=False)
        step = max(1, len(bars) // 6)
        ax.set_xticks(x[::step], [f"{ts:%m-%d}" if bars.attrs.get("interval", "1d") in ("1d", "1wk", "1mo")
                                  else f"{ts:%m-%d %H:%M}" for ts in bars.index[::step]], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlim(-1, len(bars) + max(1.0, len(bars) * 0.02))  # room for a marker on the last bar
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class PriceChart(Component):
    """History of ``symbol`` from ``broker`` with your fills marked; ``chart.symbol = "MSFT"`` switches.

    ``days`` of ``interval`` bars (as ``get_history`` takes them); ``kind``: ``"candle"`` or ``"ohlc"``. The title
    says where the bars came from (simulated data says so).
    """

    def __init__(self, broker: Any, symbol: str = "AAPL", days: int = 90, interval: str = "1d",
                 kind: str = "candle") -> None:
        symbol, days, interval, kind = chart_args(broker, symbol, days, interval, kind)
        super().__init__()
        self.session = broker
        self.days, self.interval, self.kind = days, interval, kind
        self._symbol = symbol
        self._bars: pd.DataFrame | None = None
        self._fills = frames.fills_frame([], broker=broker.name)
        self._render_lock = threading.Lock()  # one matplotlib figure at a time
        self._state_lock = threading.Lock()
        self._generation = 0
        self.renders = 0
        self.marked = 0  # how many of your fills the chart shows
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="640px"))
        self.caption = w.HTML("<span class='wb-muted'>loading chart…</span>")
        self.widget = w.VBox([self.caption, self.image], layout=w.Layout(flex="1 1 480px", margin="0 0 0 16px"))
        self.widget.add_class("wb-chart")
        self.own(broker.on_fill(self._on_fill))
        self._reload()

    @property
    def symbol(self) -> str:
        return self._symbol

    @symbol.setter
    def symbol(self, value: str) -> None:
        value = parse_symbol(value)
        if value != self._symbol:
            self._symbol = value
            self._reload()

    def show_error(self, exc: BaseException) -> None:
        """Say ``exc`` on the caption (as text) instead of the chart a load still running would draw."""
        with self._state_lock:
            self._generation += 1
        self._caption_error(exc)

    def _caption_error(self, exc: BaseException) -> None:
        self.caption.value = f"<span class='wb-error'>{display._e(error_text(exc))}</span>"

    @property
    def fills(self) -> pd.DataFrame:
        """Your fills the chart marks now (fills schema; ``order_id``, ``price``, ``side``...)."""
        return self._fills

    def _reload(self) -> None:  # from the kernel (symbol) and the loop (fills): one counter, one lock
        with self._state_lock:
            self._generation += 1
            generation, symbol = self._generation, self._symbol
        self.spawn(self._load(symbol, generation), f"chart {symbol}")

    async def _load(self, symbol: str, generation: int) -> None:
        try:
            bars = await self.session.get_history_async(symbol, days=self.days, interval=self.interval)
            since = bars.index[0].to_pydatetime() if len(bars) else datetime.now(UTC) - timedelta(days=self.days)
            fills = await self.session.get_fills_async(since=since)
        except WorkbenchError as exc:
            if generation == self._generation:
                log.warning("chart: %s: %s", symbol, exc)
                self._caption_error(exc)
            return
        if generation != self._generation:
            return
        self._bars, self._fills = bars, fills[fills["symbol"] == symbol]
        await self._draw(generation)

    async def _draw(self, generation: int) -> None:
        bars, fills = self._bars, self._fills
        if bars is None:
            return
        source = bars.attrs.get("source") or self.session.name
        label = f"{source} (simulated)" if bars.attrs.get("simulated") else str(source)
        title = f"{self._symbol} · {self.interval} · {label}"
        png = await asyncio.to_thread(self._render, bars, fills, title)
        if generation != self._generation or self.closed:
            return
        self.image.value = png
        self.renders += 1
        self.marked = len(fills)
        sim = " <span class='wb-sim'>simulated</span>" if bars.attrs.get("simulated") else ""
        self.caption.value = (f"<b>{self._symbol}</b> {self.interval} · {len(bars)} bars from {source}{sim}"
                              f" · {len(fills)} of your fills marked")
        self._touch()

    def _render(self, bars: pd.DataFrame, fills: pd.DataFrame, title: str) -> bytes:
        with self._render_lock:
            return render_chart(bars, fills, title, self.kind)

    def _on_fill(self, fill: Any) -> None:
        if fill.symbol != self._symbol or self.closed:
            return
        self._reload()  # bars move too: one reload brings the new bar and the marker together

    def __repr__(self) -> str:
        return f"<PriceChart {self._symbol} {self.interval}>"
