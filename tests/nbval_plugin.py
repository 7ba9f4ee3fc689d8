"""pytest plugin for nbval runs of notebooks/ (loaded with ``-p tests.nbval_plugin`` from pyproject's addopts).

It lives here, not as a ``conftest.py`` in notebooks/, so the folder a user opens with ``make lab`` holds
notebooks only. nbval's kernels inherit ``os.environ``, so before any kernel starts:

- ``BROKER_TYPE``, ``WORKBENCH_SETTINGS``, the IB gateway variables and the Alpaca keys are removed, so the
  notebooks get the embedded paper broker and stay offline;
- ``WORKBENCH_PAPER_DB`` points into a temporary folder, a fresh ledger file per notebook (results never depend
  on which notebook ran first, and never touch ``~/.workbench``; each notebook itself defaults to
  ``~/.workbench/notebooks/<notebook>.sqlite`` only when the variable is unset);
- output checks (cells tagged ``nbval-check-output``) go through ``tests/nbval_sanitize.cfg`` (times, ids,
  prices, ports, paths) unless ``--nbval-sanitize-with`` names another file.

Everything is restored, and the folder removed, when the session ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CLEARED_VARS = ("BROKER_TYPE", "WORKBENCH_SETTINGS", "IBKR_GATEWAY_HOST", "IBKR_GATEWAY_PORT", "IBKR_CLIENT_ID",
                "ALPACA_API_KEY", "ALPACA_SECRET_KEY")
LEDGER_VAR = "WORKBENCH_PAPER_DB"
CHECK_TAG = "nbval-check-output"
SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")

_state: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "nbval_sanitize_with", "absent") is None:
        config.option.nbval_sanitize_with = str(SANITIZE)
    tmp = Path(tempfile.mkdtemp(prefix="workbench-nbval-"))
    _state["tmp"] = tmp
    _state["saved"] = {var: os.environ.get(var) for var in (*CLEARED_VARS, LEDGER_VAR)}
    for var in CLEARED_VARS:
        os.environ.pop(var, None)
    os.environ[LEDGER_VAR] = str(tmp / "paper.sqlite")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """On a notebook's first cell, before nbval starts its kernel: a fresh ledger for that notebook.

    A cell tagged ``nbval-check-output`` with no stored output would pass whatever it printed (nbval compares
    against nothing): that fails here instead.
    """
    cell = getattr(item, "cell", None)
    if cell is not None and CHECK_TAG in cell.get("metadata", {}).get("tags", []) and not cell.get("outputs"):
        pytest.fail(f"{item.path.name} {item.name} is tagged {CHECK_TAG} but has no stored output to check against: "
                    "run the notebook and save it", pytrace=False)
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
