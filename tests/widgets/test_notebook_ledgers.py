"""Notebooks open side by side under ``make lab`` each keep their own rehearsal ledger.

A paper ledger has one owner process (its file lock), and a notebook keeps its Broker open (02's desk is live),
so notebooks sharing one ledger would refuse each other: the second kernel's first cell would fail with
``BrokerUnavailable … already open in another process``. Here every notebook's first code cell runs in its own
kernel, all kernels alive at once, as a user's would be in JupyterLab (home: a temporary folder; no
``WORKBENCH_PAPER_DB``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPORT = ("import json, workbench.paper.shared as _s\n"
          "print(json.dumps(_s.live_engines()))")


class _ThisInterpreter(KernelSpecManager):
    """``python3`` is this interpreter (the venv under test), whatever kernelspecs the machine has."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        import ipykernel.kernelspec

        return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict())


def _first_code_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def _execute(kc: Any, code: str, label: str) -> str:
    """Run ``code``; its stdout, or the failure's traceback as the assertion message."""
    out: list[str] = []
    errors: list[str] = []

    def collect(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    reply = kc.execute_interactive(code, timeout=90, output_hook=collect)
    assert reply["content"]["status"] == "ok", (label, errors)
    return "".join(out)


def test_every_notebook_connects_while_the_others_are_open(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_PAPER_DB"}
    env["HOME"] = str(tmp_path)
    kernels = []
    try:
        for _ in NOTEBOOKS:  # all kernels up first: they start in parallel
            km = jupyter_client.KernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter())
            km.start_kernel(cwd=str(ROOT / "notebooks"), env=env)
            kc = km.client()
            kc.start_channels()
            kernels.append((km, kc))
        ledgers = {}
        for path, (_, kc) in zip(NOTEBOOKS, kernels, strict=True):
            kc.wait_for_ready(timeout=90)
            _execute(kc, _first_code_cell(path), path.name)  # the earlier kernels still hold their Brokers open
            ledgers[path.stem] = json.loads(_execute(kc, REPORT, path.name))
        for name, engines in ledgers.items():
            assert engines == {str((tmp_path / ".workbench" / "notebooks" / f"{name}.sqlite").resolve()): 1}, (name, engines)
    finally:
        for km, kc in kernels:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
