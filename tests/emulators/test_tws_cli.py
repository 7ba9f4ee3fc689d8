"""``python -m workbench.emulators.tws`` starts a server that the real client can use."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import ib_eventually

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, MarketOrder, Stock  # noqa: E402

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[tuple[IB, str]]:
    """Run the emulator CLI on a free port; yield a connected ib_async IB and the "listening" line."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.emulators.tws", "--port", "0", "--log-level",
                             "WARNING", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=environment)
    ib = IB()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) \(server version", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        ib.connect("127.0.0.1", int(match.group(1)), clientId=1, timeout=5)
        yield ib, line
    finally:
        ib.disconnect()
        proc.terminate()
        try:
            proc.communicate(timeout=10)  # also reads and closes the pipes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0  # SIGTERM stops it cleanly


def _fill(ib: IB, side: str = "BUY", qty: int = 10) -> object:
    (contract,) = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(contract, MarketOrder(side, qty))
    ib_eventually(ib, lambda: trade.isDone() and (not trade.fills or trade.fills[-1].commissionReport.execId))
    return trade


def test_cli_serves_ib_async(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite"
    with cli("--server-version", "178", "--db", str(db), cwd=tmp_path) as (ib, line):
        assert ib.client.serverVersion() == 178 and "cash account" in line
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.qualifyContracts(Stock("QQQ", "SMART", "USD"))[0].primaryExchange == "NASDAQ"
    assert db.exists() and (tmp_path / "cli.tws.sqlite").exists()  # the ledger and the gateway's ids


def test_cli_without_db_leaves_nothing_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    with cli(cwd=tmp_path, env=env) as (ib, line):
        assert _fill(ib).orderStatus.status == "Filled"  # type: ignore[attr-defined]
        assert "ledger :memory:" in line
    assert list(scratch.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]


def test_cli_prices_and_charges_as_the_configured_paper_broker(tmp_path: Path) -> None:
    settings = tmp_path / "my-settings.json"
    settings.write_text(json.dumps({"paper": {"commission": {"per_order": 2.5, "per_share": 0}, "slippage_bps": 0,
                                              "starting_cash": 50000}}))
    with cli("--settings", str(settings), "--margin", cwd=tmp_path) as (ib, line):
        assert "margin account" in line
        def cash() -> float:
            return next(float(v.value) for v in ib.accountValues() if (v.tag, v.currency) == ("TotalCashValue", "USD"))

        assert cash() == 50000
        short = _fill(ib, "SELL", 10)  # a margin account sells short
        assert short.orderStatus.status == "Filled"  # type: ignore[attr-defined]
        assert [f.commissionReport.commission for f in short.fills] == [2.5]  # type: ignore[attr-defined]
        price = short.orderStatus.avgFillPrice  # type: ignore[attr-defined]
        ib_eventually(ib, lambda: cash() == pytest.approx(50000 + 10 * price - 2.5))


def test_cli_reads_the_settings_file_workbench_finds(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"paper": {"commission": {"per_share": 0.01, "minimum": 1.25}}}))
    with cli(cwd=tmp_path, env={"WORKBENCH_SETTINGS": str(settings)}) as (ib, _):
        trade = _fill(ib, "BUY", 10)
        assert [f.commissionReport.commission for f in trade.fills] == [1.25]  # type: ignore[attr-defined]


def test_cli_reports_a_bad_settings_file(tmp_path: Path) -> None:
    settings = tmp_path / "bad.json"
    settings.write_text(json.dumps({"paper": {"comission": 1}}))
    done = subprocess.run([sys.executable, "-m", "workbench.emulators.tws", "--port", "0", "--settings",
                           str(settings)], capture_output=True, text=True, cwd=tmp_path, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "comission" in done.stderr and "Traceback" not in done.stderr


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench.emulators.tws", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})


def _one_clean_line(done: subprocess.CompletedProcess[str], flag: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and flag in lines[0], done.stderr
    assert "listening" not in done.stdout
    return lines[0]


@pytest.mark.parametrize("args", [("--tick-interval", "-1"), ("--tick-interval", "1e-6"), ("--tick-interval", "nan"),
                                  ("--tick-interval", "1e30"), ("--server-version", "200"),
                                  ("--server-version", "163"), ("--server-version", "x"), ("--port", "70000"),
                                  ("--log-level", "LOUD")], ids=" ".join)
def test_cli_refuses_a_bad_flag_in_one_line_naming_it(args: tuple[str, str], tmp_path: Path) -> None:
    line = _one_clean_line(_run("--port", "0", *args, cwd=tmp_path), args[0])
    assert args[1] in line  # and the value it got


def test_cli_refuses_tick_interval_zero_and_says_the_ticker_cannot_be_turned_off(tmp_path: Path) -> None:
    line = _one_clean_line(_run("--port", "0", "--tick-interval", "0", cwd=tmp_path), "--tick-interval")
    assert "resting orders" in line and "tick_interval=None" in line


def test_cli_refuses_a_tick_interval_from_the_settings_below_the_emulators_floor(tmp_path: Path) -> None:
    settings = tmp_path / "fast.json"
    settings.write_text(json.dumps({"paper": {"tick_interval": 0.001}}))  # a valid paper setting, too fast here
    line = _one_clean_line(_run("--port", "0", "--settings", str(settings), cwd=tmp_path), "paper.tick_interval")
    assert "--tick-interval" in line and "0.001" in line


def test_cli_reports_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        line = _one_clean_line(_run("--port", port, cwd=tmp_path), "--port")
    assert f"127.0.0.1:{port}" in line


def test_the_constructor_refuses_a_bad_tick_interval_or_server_version(engine: Any) -> None:
    from workbench.core.errors import ConfigError, InvalidInput
    from workbench.emulators.tws import TwsEmulator, build_engine

    for bad in (-1, 0, 1e-6, float("nan"), float("inf"), 1e30):
        with pytest.raises(InvalidInput) as caught:
            TwsEmulator(engine, tick_interval=bad)
        assert caught.value.field == "tick_interval"
    with pytest.raises(InvalidInput, match="None"):  # the message says how to stop the ticker
        TwsEmulator(engine, tick_interval=0)
    for version in (156, 163, 179):
        with pytest.raises(InvalidInput) as caught:
            TwsEmulator(engine, server_version=version)
        assert caught.value.field == "server_version"
    assert TwsEmulator(engine, tick_interval=None).tick_interval is None  # None: tests drive the prices
    with pytest.raises(ConfigError) as refused:
        build_engine(tick_interval=-1)
    assert refused.value.key == "paper.tick_interval"
