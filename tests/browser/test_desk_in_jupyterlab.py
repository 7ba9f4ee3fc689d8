"""The desk in a real browser: run 02_paper_desk in JupyterLab, trade from the ticket, cancel from the blotter."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.browser.conftest import ROOT, Lab

pytestmark = pytest.mark.browser

NOTEBOOK = "02_paper_desk.ipynb"
LATENCY_FILE = ROOT / "bench" / "results" / "browser_latency.json"
SCREENSHOTS = ROOT / "docs" / "img"

KERNEL_IDLE = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext) return false;
  await panel.sessionContext.ready;
  return panel.sessionContext.session?.kernel?.status === 'idle';
}"""
ALL_EXECUTED = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session?.kernel;
  const cells = [...panel.content.widgets].filter(c => c.model.type === 'code');
  return kernel?.status === 'idle' && cells.every(c => c.model.executionCount !== null);
}"""
STATUS_IS = """([state, text]) => {
  const status = document.querySelector('.wb-status');
  const badge = status && status.querySelector('.wb-state');
  return !!badge && badge.dataset.status === state && status.textContent.includes(text);
}"""


def _save(page, name: str, out: Path) -> None:
    page.locator(".wb-desk").screenshot(path=str(out / name))
    if os.environ.get("WORKBENCH_SCREENSHOTS") == "1":  # refresh the committed docs/img/ copies
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / name, SCREENSHOTS / name)


def test_desk_trades_and_cancels_in_jupyterlab(lab: Lab, browser, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    try:
        page.goto(lab.notebook(NOTEBOOK))
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=90_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
        page.wait_for_function(KERNEL_IDLE, timeout=90_000, polling=250)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        expect(page.locator(".jp-OutputArea-output .wb-submit")).to_be_visible(timeout=90_000)
        page.wait_for_function(ALL_EXECUTED, timeout=90_000, polling=250)
        # the notebook's own scripted order went through (its cells check that too)
        page.wait_for_function(STATUS_IS, arg=["FILLED", "AAPL"], timeout=30_000)

        ticket = page.locator(".wb-ticket")
        ticket.locator(".wb-symbol input").fill("MSFT")
        ticket.locator(".wb-symbol input").press("Enter")
        expect(ticket.locator(".wb-price")).to_contain_text("MSFT", timeout=30_000)
        expect(ticket.locator(".wb-price")).to_contain_text("simulated")
        ticket.locator(".wb-qty input").fill("25")
        ticket.locator(".wb-qty input").press("Tab")
        expect(page.locator(".wb-chart")).to_contain_text("MSFT", timeout=30_000)
        _save(page, "desk.png", tmp_path)

        started = time.perf_counter()
        ticket.locator("button.wb-submit").click()
        page.wait_for_function(STATUS_IS, arg=["FILLED", "BUY 25 MSFT"], timeout=30_000, polling="raf")
        latency = time.perf_counter() - started
        expect(page.locator(".wb-positions")).to_contain_text("MSFT", timeout=30_000)

        ticket.locator(".wb-order-type select").select_option("LIMIT")
        ticket.locator(".wb-limit-price input").fill("10")
        ticket.locator(".wb-limit-price input").press("Tab")
        ticket.locator("button.wb-submit").click()
        expect(ticket.locator(".wb-warning")).to_contain_text("away from the last price", timeout=30_000)
        ticket.locator("button.wb-confirm").click()
        page.wait_for_function(STATUS_IS, arg=["NEW", "BUY 25 MSFT LIMIT limit 10.00"], timeout=30_000)
        cancel = page.locator(".wb-orders .wb-order-row", has_text="LIMIT limit 10.00").locator("button.wb-cancel")
        expect(cancel).to_have_count(1, timeout=30_000)
        _save(page, "desk-resting-order.png", tmp_path)
        cancel.click()
        page.wait_for_function(STATUS_IS, arg=["CANCELLED", "BUY 25 MSFT LIMIT"], timeout=30_000)
        expect(page.locator(".wb-blotter-message")).to_contain_text("CANCELLED", timeout=30_000)
        expect(cancel).to_have_count(0)
        _save(page, "desk-after.png", tmp_path)
    finally:
        page.close()

    with sqlite3.connect(f"file:{lab.ledger}?mode=ro", uri=True) as db:  # the notebook's own paper ledger
        rows = db.execute("SELECT symbol, order_type, qty, status FROM orders WHERE symbol = 'MSFT' "
                          "ORDER BY order_id").fetchall()
    assert [(s, t, float(q), st) for s, t, q, st in rows][-2:] == [("MSFT", "MARKET", 25.0, "FILLED"),
                                                                    ("MSFT", "LIMIT", 25.0, "CANCELLED")]
    LATENCY_FILE.parent.mkdir(parents=True, exist_ok=True)
    LATENCY_FILE.write_text(json.dumps({"click_to_filled_s": latency, "when": time.time()}))
    with capsys.disabled():
        print(f"\nbrowser: Submit click -> FILLED on screen in {latency * 1000:.0f} ms")
