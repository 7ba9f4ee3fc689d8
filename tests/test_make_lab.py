"""`make lab` (the README's first command) starts JupyterLab headless on notebooks/ and prints its URL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(), reason="run through `make test`")
def test_make_lab_serves_notebooks_headless(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "s"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"), "HOME": str(tmp_path)}
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        # -o: treat the install stamp as up to date, so the test can never start a pip install (no network)
        proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed-stamp", "lab", f"PORT={port}"], cwd=ROOT,
                                env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            match = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", log.read_text(errors="replace"))
            if match:
                url = match.group(0)
                break
            time.sleep(0.2)  # polling the log with a deadline, not waiting on a guess
        assert url, f"no URL printed; log:\n{log.read_text(errors='replace')}"
        token = url.rsplit("=", 1)[1]
        listing, error = "", None
        while time.monotonic() < deadline and not listing:  # a loaded machine may answer the first GET late
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}",
                                            timeout=10) as resp:
                    listing = resp.read().decode()
            except OSError as exc:  # URLError and socket timeouts
                error = exc
                time.sleep(0.2)
        assert listing, f"no answer from the server: {error!r}"
        assert "01_quickstart.ipynb" in listing  # it serves notebooks/
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
