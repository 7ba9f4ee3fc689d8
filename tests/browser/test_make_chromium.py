"""`make chromium` (run by `make test`): installs the browser with apt-get, and fails under CI=true if it cannot.

A stand-in ``apt-get`` first on PATH records its calls and installs nothing (this machine's real package manager is
never touched); ``CHROMIUM=`` points the target at a browser path that does not exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make_chromium(tmp_path: Path, exit_code: int, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "apt-get"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'apt-calls'}\nexit {exit_code}\n")
    stub.chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(PATH=f"{bin_dir}:{environ['PATH']}", **env)
    return subprocess.run(["make", "-s", "chromium", f"CHROMIUM={tmp_path / 'no-chromium'}"], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=60)


def test_a_missing_browser_that_cannot_be_installed_fails_under_ci(tmp_path: Path) -> None:
    run = _make_chromium(tmp_path, exit_code=100, CI="true")
    assert run.returncode != 0
    assert "CI=true needs the browser test" in run.stderr
    if os.geteuid() == 0:  # as root (CI) it tried apt-get first
        assert (tmp_path / "apt-calls").read_text().startswith("update")


def test_an_install_that_leaves_no_browser_also_fails_under_ci(tmp_path: Path) -> None:
    run = _make_chromium(tmp_path, exit_code=0, CI="true")  # apt-get "succeeds" but the browser is not there
    assert run.returncode != 0 and "CI=true needs the browser test" in run.stderr
    if os.geteuid() == 0:
        assert "install -y -qq chromium" in (tmp_path / "apt-calls").read_text()


def test_outside_ci_a_missing_browser_is_a_loud_skip(tmp_path: Path) -> None:
    run = _make_chromium(tmp_path, exit_code=100)
    assert run.returncode == 0
    assert "the browser test will be SKIPPED" in run.stderr


def test_a_present_browser_needs_nothing(tmp_path: Path) -> None:
    browser = tmp_path / "no-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    run = _make_chromium(tmp_path, exit_code=100, CI="true")
    assert run.returncode == 0 and run.stderr == "" and not (tmp_path / "apt-calls").exists()
