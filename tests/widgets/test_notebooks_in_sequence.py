"""The notebooks as a user runs them with ``make lab``: again and again, each on its own ledger.

nbval gives each notebook a fresh ledger; a user's ``~/.workbench/notebooks/<notebook>.sqlite`` keeps what earlier
runs of that notebook traded, so every cell that waits for "the position" must wait for the one the ledger holds
now, and what another notebook traded is not there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str, home: Path) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from demo import KERNEL_NAME, _CurrentEnvKernelManager
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name=KERNEL_NAME, kernel_manager_class=_CurrentEnvKernelManager,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return {c.id: "".join(o.get("text", "") for o in c.outputs if o.get("output_type") == "stream")
            for c in nb.cells if c.cell_type == "code"}


def test_the_desk_notebook_run_again_after_the_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the notebooks' own default ledgers, under a throwaway home
    monkeypatch.delenv("WORKBENCH_PAPER_DB", raising=False)
    _run("01_quickstart.ipynb", tmp_path)  # buys 10 AAPL, on its own ledger
    first = _run("02_paper_desk.ipynb", tmp_path)  # buys 10 from the ticket
    assert first["02-05"].strip() == "FILLED 10 AAPL"
    assert first["02-07"].strip() == "10"  # 01's shares are on 01's ledger, not this one
    out = _run("02_paper_desk.ipynb", tmp_path)  # run again: 10 more
    assert out["02-05"].strip() == "FILLED 10 AAPL"
    assert out["02-07"].strip() == "20"  # the blotter shows the ledger's position, not the one before the fill
    assert out["02-09"].strip() == "AAPL True"
    ledgers = tmp_path / ".workbench" / "notebooks"
    assert sorted(p.name for p in ledgers.glob("*.sqlite")) == ["01_quickstart.sqlite", "02_paper_desk.sqlite"]
    assert not os.environ.get("WORKBENCH_PAPER_DB")
