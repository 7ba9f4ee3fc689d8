"""``python -m workbench.emulators.tws`` starts a server that the real client can use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)


def test_cli_serves_ib_async(tmp_path: Path) -> None:
    from ib_async import IB

    db = tmp_path / "cli.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "workbench.emulators.tws", "--port", "0", "--server-version",
                             "178", "--db", str(db), "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ib = IB()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) \(server version 178", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        ib.connect("127.0.0.1", int(match.group(1)), clientId=1, timeout=5)
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        assert ib.qualifyContracts(__import__("ib_async").Stock("QQQ", "SMART", "USD"))[0].primaryExchange == "NASDAQ"
    finally:
        ib.disconnect()
        proc.terminate()
        try:
            proc.communicate(timeout=10)  # also reads and closes the pipes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0  # SIGTERM stops it cleanly
    assert db.exists()
