"""Re-running a notebook cell in a real kernel closes the widgets that cell made before (JupyterLab's cellId)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402


class _ThisInterpreter(KernelSpecManager):
    """``python3`` is this interpreter (the venv under test), whatever kernelspecs the machine has."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        import ipykernel.kernelspec

        return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict())


def _run(kc: Any, code: str, cell_id: str) -> dict[str, Any]:
    """Execute ``code`` as JupyterLab does (with a cellId in the request metadata); return the reply."""
    msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
                         metadata={"cellId": cell_id})
    kc.shell_channel.send(msg)
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
        reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["content"]


def _value(kc: Any, expression: str) -> str:
    msg = kc.execute("", user_expressions={"v": expression})
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg:
        reply = kc.get_shell_msg(timeout=60)
    result = reply["content"]["user_expressions"]["v"]
    assert result["status"] == "ok", result
    return result["data"]["text/plain"]


def test_rerunning_a_cell_closes_its_previous_desk(tmp_path: Path) -> None:
    km = jupyter_client.KernelManager(kernel_name="python3", kernel_spec_manager=_ThisInterpreter())
    km.start_kernel(cwd=str(tmp_path), env={**os.environ, "WORKBENCH_PAPER_DB": str(tmp_path / "k.sqlite")})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        _run(kc, "import workbench, workbench.widgets as ww\n"
                 "broker = workbench.connect(settings={'paper': {'tick_interval': 0.05}})\nmade = []", "setup")
        cell = "d = ww.desk(broker)\nmade.append(d)\nd"
        _run(kc, cell, "desk-cell")
        _run(kc, cell, "desk-cell")  # the user re-runs the same cell
        _run(kc, "other = ww.OrderTicket(broker)", "another-cell")  # a ticket of another cell stays
        assert _value(kc, "[d.closed for d in made]") == "[True, False]"
        assert _value(kc, "[p.closed for p in (made[0].ticket, made[0].blotter, made[0].chart)]") == \
            "[True, True, True]"
        assert _value(kc, "sorted(type(c).__name__ for c in ww.live())") == \
            "['Blotter', 'Desk', 'FillsFeed', 'OrderTicket', 'OrderTicket', 'PriceChart']"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
