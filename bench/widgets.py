"""Desk widgets: ticket Submit -> FILLED on the status line, blotter refresh after a fill, browser latency.

In-process, on the paper broker with sim prices and a temporary ledger, no browser:

- **ticket**: ``ticket.submit.click()`` until the status line shows FILLED (the click handler, the facade's
  async twin on workbench's loop, the engine's fill, the order event, the status HTML). Floor: median <= 50 ms.
- **blotter**: with 500 open orders and 100 positions on screen, a market order for a held symbol until the
  blotter has redrawn positions from the fill event (order placement included). Floor: median <= 100 ms.
- **browser**: the click -> FILLED-on-screen latency measured by the last run of the real-browser test
  (``tests/browser``), if there is one (info).
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .report import RESULTS_DIR, Result

TICKET_FLOOR_S, BLOTTER_FLOOR_S = 0.050, 0.100
N_SYMBOLS, N_OPEN = 100, 500


def _connect(db: Path, extra_symbols: int = 0) -> Any:
    import workbench

    symbols = {f"S{i:03d}": {"price": 20 + i, "vol": 0.2} for i in range(extra_symbols)}
    return workbench.connect("paper", settings={
        "paper": {"db_path": str(db), "starting_cash": 10_000_000, "tick_interval": 3600},
        "market_data": {"sim": {"symbols": symbols}}})


def _ticket(db: Path, runs: int) -> list[float]:
    from workbench.widgets import OrderTicket

    broker = _connect(db)
    ticket = OrderTicket(broker, "AAPL", qty=1)
    try:
        deadline = time.monotonic() + 10
        while ticket._quote is None and time.monotonic() < deadline:
            time.sleep(0.01)
        times = []
        for i in range(runs + 3):
            filled = threading.Event()
            want = f"BUY {i + 1} AAPL"

            def seen(change: dict[str, Any], want: str = want, filled: threading.Event = filled) -> None:
                if "data-status='FILLED'" in change["new"] and want in change["new"]:
                    filled.set()

            ticket.qty.value = i + 1  # a new form: not a double click
            ticket.status.observe(seen, names="value")
            t0 = time.perf_counter()
            ticket.submit.click()
            if not filled.wait(10):
                raise RuntimeError(f"the ticket never showed FILLED: {ticket.status.value}")
            elapsed = time.perf_counter() - t0
            ticket.status.unobserve(seen, names="value")
            if i >= 3:  # warm-up
                times.append(elapsed)
        return times
    finally:
        ticket.close()
        broker.close()


def _blotter(db: Path, runs: int) -> tuple[list[float], float]:
    from decimal import Decimal

    from workbench.widgets import Blotter

    broker = _connect(db, N_SYMBOLS)
    symbols = [f"S{i:03d}" for i in range(N_SYMBOLS)]
    for symbol in symbols:
        broker.place_market_order(symbol, 10, "buy")
    for i in range(N_OPEN):
        symbol = symbols[i % N_SYMBOLS]
        price = (broker.get_market_price(symbol) * Decimal("0.5")).quantize(Decimal("0.01"))
        broker.place_limit_order(symbol, 1, "buy", limit_price=price, tif="gtc")
    t0 = time.perf_counter()
    blotter = Blotter(broker, refresh_seconds=3600)
    try:
        blotter.wait_until(lambda b: len(b.open_orders) == N_OPEN and b.positions_frame is not None
                           and len(b.positions_frame) == N_SYMBOLS, 120)
        load = time.perf_counter() - t0
        times = []
        for i in range(runs + 3):
            symbol = symbols[i % N_SYMBOLS]
            before = float(blotter.positions_frame.loc[symbol, "qty"])
            t0 = time.perf_counter()
            broker.place_market_order(symbol, 1, "buy")
            blotter.wait_until(lambda b, s=symbol, q=before: float(b.positions_frame.loc[s, "qty"]) == q + 1, 10)
            elapsed = time.perf_counter() - t0
            rows = len(re.findall("<tr>", blotter.positions.value)) - 1
            if rows != N_SYMBOLS or len(blotter.orders.children) != N_OPEN:
                raise RuntimeError(f"blotter shows {rows} positions / {len(blotter.orders.children)} orders")
            if i >= 3:
                times.append(elapsed)
        return times, load
    finally:
        blotter.close()
        broker.close()


def run(quick: bool = False) -> list[Result]:
    runs = 10 if quick else 50
    with tempfile.TemporaryDirectory(prefix="wb-bench-widgets-") as d:
        ticket = _ticket(Path(d) / "ticket.sqlite", runs)
        blotter, load = _blotter(Path(d) / "blotter.sqlite", 10 if quick else 30)
    t_med, b_med = statistics.median(ticket), statistics.median(blotter)
    print(f"  ticket Submit -> FILLED: median {t_med * 1000:.1f} ms, p90 "
          f"{sorted(ticket)[int(len(ticket) * 0.9)] * 1000:.1f} ms ({len(ticket)} orders)")
    print(f"  blotter after a fill ({N_OPEN} open orders, {N_SYMBOLS} positions): median {b_med * 1000:.1f} ms, "
          f"max {max(blotter) * 1000:.1f} ms; first load {load:.2f} s")
    results = [
        Result("desk: ticket Submit -> FILLED (in-process)", t_med, "s", f"<= {TICKET_FLOOR_S * 1000:.0f} ms",
               t_med <= TICKET_FLOOR_S, {"runs_s": ticket}),
        Result(f"desk: blotter refresh after a fill ({N_OPEN} orders, {N_SYMBOLS} positions)", b_med, "s",
               f"<= {BLOTTER_FLOOR_S * 1000:.0f} ms", b_med <= BLOTTER_FLOOR_S, {"runs_s": blotter}),
        Result(f"desk: blotter first load ({N_OPEN} orders, {N_SYMBOLS} positions)", load, "s"),
    ]
    latency_file = RESULTS_DIR / "browser_latency.json"
    if latency_file.exists():
        browser = json.loads(latency_file.read_text())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(browser["when"]))
        print(f"  browser click -> FILLED on screen: {browser['click_to_filled_s'] * 1000:.0f} ms "
              f"(last browser test run, {when})")
        results.append(Result("desk: browser click -> FILLED on screen (last browser test)",
                              browser["click_to_filled_s"], "s", details=browser))
    else:
        print("  browser click -> FILLED: not measured yet (run `make test` or pytest tests/browser)")
    return results
