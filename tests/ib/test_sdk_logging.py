"""An unknown symbol shows one clear SymbolNotFound, not ib_async's "Error 200 ... Unknown contract" lines.

Run in a fresh interpreter with Python's default logging (no handlers configured), which is what a notebook
shows: before, the last-resort handler printed the SDK's ERROR/WARNING records into the cell's output.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
import workbench
from workbench.emulators.tws import TwsEmulator
from workbench.marketdata.sim import SimProvider
from workbench.paper.config import PaperConfig
from workbench.paper.engine import PaperEngine

engine = PaperEngine(PaperConfig(db_path=sys.argv[1]), SimProvider())
emulator = TwsEmulator(engine, port=0, tick_interval=None).start_in_thread()
broker = workbench.connect("ib", settings={"paper": {"db_path": sys.argv[2]},
                                           "ib": {"port": emulator.port, "client_id": 3, "sdk": sys.argv[3]}})
for call in (lambda: broker.get_market_price("ZZZZQ"), lambda: broker.place_market_order("ZZZZQ", 1, "buy")):
    try:
        call()
    except workbench.WorkbenchError as exc:
        print(f"{type(exc).__name__}: {exc}")
broker.close()
"""


@pytest.mark.parametrize("sdk", ["ib_async", "ib_insync"])
def test_unknown_symbol_prints_one_clear_error(tmp_path: Path, sdk: str) -> None:
    pytest.importorskip(sdk)
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "gw.sqlite"), str(tmp_path / "p.sqlite"), sdk],
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert run.stdout.count("SymbolNotFound: IB has no stock 'ZZZZQ'") == 2, output
    assert "Error 200" not in output and "Unknown contract" not in output and "reqId" not in output, output
    assert run.stderr == "", output


def test_sdk_records_are_kept_under_workbench_logger(caplog: pytest.LogCaptureFixture) -> None:
    from workbench.adapters.ib.sdk import SDK_LOGGER, route_sdk_logging

    route_sdk_logging("ib_async")
    with caplog.at_level(logging.DEBUG, logger=SDK_LOGGER):
        logging.getLogger("ib_async.wrapper").error("Error 200, reqId 7: No security definition")
    routed = [r for r in caplog.records if r.name == f"{SDK_LOGGER}.ib_async.wrapper"]
    assert [(r.levelno, r.getMessage()) for r in routed] == [(logging.INFO, "Error 200, reqId 7: No security definition")]
