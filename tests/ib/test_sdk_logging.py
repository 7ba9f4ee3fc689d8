"""An unknown symbol shows one clear SymbolNotFound, not ib_async's "Error 200 ... Unknown contract" lines.

Run in a fresh interpreter with Python's default logging (no handlers configured), which is what a notebook
shows: before, the last-resort handler printed the SDK's ERROR/WARNING records into the cell's output.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import workbench
from tests.conftest import eventually

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
    assert [(r.levelno, r.getMessage()) for r in routed] == [(logging.DEBUG,
                                                              "Error 200, reqId 7: No security definition")]


def test_the_gateway_losing_ib_is_a_warning_and_data_lost_is_requested_again(gateway: Any, proxy: Any,
                                                                            connect: Any,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Every SDK record and every IB code the adapter saw was logged at INFO or below: error 1100 (the gateway lost
    # IB: nothing trades, quotes stop) never reached a notebook; and after 1101 ("restored - data lost") the
    # quote streams stayed dead, as IB says they must be requested again.
    from workbench.emulators.tws import messages as m

    from .test_market_data import _streams

    broker = connect(proxy.port)
    quotes: list[workbench.Quote] = []
    subscription = broker.subscribe_market_data(["AAPL"], quotes.append)
    sv, sent = gateway.emulator.server_version, len(gateway.requests("1"))
    with caplog.at_level(logging.WARNING):
        proxy.inject(m.error(sv, -1, 1100, "Connectivity between IB and Trader Workstation has been lost."))
        eventually(lambda: [r for r in caplog.records if r.name.startswith("workbench.adapters.ib.adapter")
                            and r.levelno == logging.WARNING and "1100" in r.getMessage()])
        proxy.inject(m.error(sv, -1, 1101, "Connectivity between IB and Trader Workstation has been restored - "
                                           "data lost."))
        eventually(lambda: len(gateway.requests("1")) > sent and len(_streams(gateway)) == 1)
    assert not [r for r in caplog.records if r.name.startswith("workbench.adapters.ib.sdk")]  # echoes: debug
    seen = len(quotes)
    eventually(lambda: len(quotes) > seen)
    subscription.cancel()
    eventually(lambda: not _streams(gateway))


def test_sdk_records_the_adapter_does_not_report_keep_their_level(caplog: pytest.LogCaptureFixture) -> None:
    from workbench.adapters.ib.sdk import SDK_LOGGER, route_sdk_logging

    route_sdk_logging("ib_async")
    with caplog.at_level(logging.DEBUG, logger=SDK_LOGGER):
        logging.getLogger("ib_async.ib").error("positions request timed out")  # an incomplete resync
        logging.getLogger("ib_async.decoder").error("Error handling fields: ['3', '7']")  # a message lost
    routed = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith(SDK_LOGGER)]
    assert routed == [(logging.ERROR, "positions request timed out"),
                      (logging.ERROR, "Error handling fields: ['3', '7']")]
