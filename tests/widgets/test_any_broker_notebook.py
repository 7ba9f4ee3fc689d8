"""``03_any_broker`` as a user runs it: when its last cell has run, nothing it started is left behind.

The notebook runs in a kernel of this interpreter with its own temporary folder (``TMPDIR``) and home; a cell
added before it notes the kernel's threads, and one added after it reports what is still there: threads, the
emulators' ports, and anything left in the temporary folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("alpaca")

ROOT = Path(__file__).resolve().parents[2]

BEFORE = "import threading\n_threads_before = {t.name for t in threading.enumerate()}"
AFTER = """import json, os, socket, tempfile, threading

def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False

print(json.dumps({
    "threads": sorted(t.name for t in threading.enumerate() if t.name not in _threads_before),
    "refused": [_refused(tws_gateway.port), _refused(alpaca_gateway.port)],
    "tmp": sorted(os.listdir(tempfile.gettempdir())),
    "keys": [os.environ.get("ALPACA_API_KEY"), os.environ.get("ALPACA_SECRET_KEY")],
}))"""


def test_the_any_broker_notebook_leaves_no_thread_port_or_temporary_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    temp, home = tmp_path / "tmp", tmp_path / "home"
    temp.mkdir()
    home.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("WORKBENCH_PAPER_DB", raising=False)  # the notebooks' own ledger, under this home
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from demo import KERNEL_NAME, _CurrentEnvKernelManager
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    nb = nbformat.read(ROOT / "notebooks" / "03_any_broker.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(BEFORE))
    nb.cells.append(nbformat.v4.new_code_cell(AFTER))
    nbclient.NotebookClient(nb, timeout=120, kernel_name=KERNEL_NAME, kernel_manager_class=_CurrentEnvKernelManager,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    report = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream"))
    assert report["refused"] == [True, True], "an emulator still listens"
    # workbench's own loop (and its default executor's workers) serve the whole kernel, by design
    assert all(name == "workbench-loop" or name.startswith("asyncio_") for name in report["threads"]), report
    assert report["tmp"] == [], "left in the temporary folder"
    assert report["keys"] == [None, None], "the rehearsal Alpaca keys are still set"
    assert (home / ".workbench" / "notebooks" / "03_any_broker.sqlite").exists()
