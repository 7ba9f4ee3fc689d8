"""nbval runs the notebooks here in kernels that inherit ``os.environ``: keep those runs off ~/.workbench.

Before any kernel starts, ``BROKER_TYPE`` and ``WORKBENCH_SETTINGS`` are removed (so the notebooks get the
embedded paper broker) and ``WORKBENCH_PAPER_DB`` points into a temporary folder. Each notebook gets its own
fresh ledger file there, so results never depend on which notebook ran first. Everything is restored, and
the folder removed, when the session ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CLEARED_VARS = ("BROKER_TYPE", "WORKBENCH_SETTINGS")
LEDGER_VAR = "WORKBENCH_PAPER_DB"

_state: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="workbench-nbval-"))
    _state["tmp"] = tmp
    _state["saved"] = {var: os.environ.get(var) for var in (*CLEARED_VARS, LEDGER_VAR)}
    for var in CLEARED_VARS:
        os.environ.pop(var, None)
    os.environ[LEDGER_VAR] = str(tmp / "paper.sqlite")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """On a notebook's first cell, before nbval starts its kernel: a fresh ledger for that notebook."""
    notebook = item.parent
    if item.path.suffix != ".ipynb" or notebook is _state.get("notebook") or "tmp" not in _state:
        return
    _state["notebook"] = notebook
    ledger = Path(tempfile.mkdtemp(prefix=item.path.stem + "-", dir=_state["tmp"])) / "paper.sqlite"
    os.environ[LEDGER_VAR] = str(ledger)


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = _state.pop("saved", {})
    assert isinstance(saved, dict)
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    tmp = _state.pop("tmp", None)
    _state.pop("notebook", None)
    if isinstance(tmp, Path):
        shutil.rmtree(tmp, ignore_errors=True)
