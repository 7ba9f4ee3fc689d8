"""Re-run notebooks and save them with small, clean outputs (what is committed; nbval checks against it).

    python scripts/refresh_notebooks.py notebooks/*.ipynb

Each notebook runs in a fresh kernel of this interpreter with a throwaway ``HOME`` (so its own ledger,
``~/.workbench/notebooks/<notebook>.sqlite``, starts empty and the real one is never touched) and without
``WORKBENCH_PAPER_DB``. Widget views (which need the live kernel), stderr and timing metadata are dropped, and
this machine's absolute paths in outputs (a traceback's frames) are saved relative: ``workbench/facade.py:439``,
``site-packages/pydantic/main.py``, ``~/...``; tests/widgets/test_notebook_outputs.py checks the saved files.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import tempfile
from pathlib import Path
from unittest import mock

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import KERNEL_NAME, _CurrentEnvKernelManager  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ROOT = Path(__file__).resolve().parents[1]


def _portable(text: str, home: str) -> str:
    """``text`` with this machine's absolute paths relative: the checkout, the installed packages, the homes."""
    prefixes = {str(ROOT): "", sysconfig.get_paths()["purelib"]: "site-packages", sysconfig.get_paths()["stdlib"]:
                "python", home: "~", str(Path.home()): "~", tempfile.gettempdir(): "$TMPDIR"}
    for path in sorted(prefixes, key=len, reverse=True):  # the most specific first (the venv is in the checkout)
        short = prefixes[path]
        text = text.replace(path + "/", short + "/" if short else "")
    return text


def _clean(output: dict, home: str) -> dict:
    for key in ("text", "evalue"):
        if key in output:
            output[key] = _portable(output[key], home)
    if "traceback" in output:
        output["traceback"] = [_portable(line, home) for line in output["traceback"]]
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") and isinstance(value, str):
            output["data"][mime] = _portable(value, home)
    return output


def refresh(path: Path, timeout: int) -> int:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="wb-refresh-") as home, mock.patch.dict(os.environ, HOME=home):
        os.environ.pop("WORKBENCH_PAPER_DB", None)  # (restored with HOME when the block ends)
        NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=False,
                       kernel_manager_class=_CurrentEnvKernelManager,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [_clean(o, home) for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})
                            and not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {refresh(path.resolve(), args.timeout):,} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
