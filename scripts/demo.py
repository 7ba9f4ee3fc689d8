"""Run a notebook headless and print its positions table (``make demo``).

    python scripts/demo.py notebooks/01_quickstart.ipynb

The notebook runs in a python3 kernel of this interpreter, with the notebook's folder as working directory.
Unless ``WORKBENCH_PAPER_DB`` is already set, the paper ledger is a temporary file, so the demo starts from
a fresh account and never touches ~/.workbench. The notebook file itself is not modified. The kernel widens
pandas' text display at startup so tables print unwrapped. Exits 1 if a cell fails, with the error and, if
the kernel died, the end of the kernel's log.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

KERNEL_NAME = "python3"
POSITIONS_TAG = "positions"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Run by the kernel at startup (IPython exec_lines: no cell, no history), so tables print unwrapped.
_KERNEL_STARTUP = ("__import__('pandas').set_option('display.width', 200, 'display.max_columns', 50)",)


class _CurrentEnvKernelSpecs(KernelSpecManager):
    """``python3`` is always this interpreter, whatever kernelspecs the machine has installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == KERNEL_NAME:
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


class _CurrentEnvKernelManager(AsyncKernelManager):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_spec_manager", _CurrentEnvKernelSpecs())
        super().__init__(**kwargs)


def run_notebook(path: Path, timeout: int, kernel_log: IO[bytes] | None = None) -> nbformat.NotebookNode:
    """Execute ``path`` in memory and return the notebook with its outputs (kernel stderr to ``kernel_log``)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=_CurrentEnvKernelManager,
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=[f"--IPKernelApp.exec_lines={line}" for line in _KERNEL_STARTUP],
    )
    client.execute(stderr=kernel_log)
    return nb


def tagged_text(nb: nbformat.NotebookNode, tag: str) -> list[str]:
    """The text/plain results of the code cells tagged ``tag`` (stream output as a fallback)."""
    texts: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code" or tag not in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.output_type in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
                texts.append(out.data["text/plain"])
            elif out.output_type == "stream" and out.get("name") == "stdout":
                texts.append(out.text.rstrip("\n"))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="the .ipynb to run")
    parser.add_argument("--tag", default=POSITIONS_TAG, help="cell tag whose output to print (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell (default: %(default)s)")
    args = parser.parse_args(argv)

    path = args.notebook.resolve()
    if not path.is_file():
        print(f"demo: no such notebook: {args.notebook}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="workbench-demo-") as tmp:
        if not os.environ.get("WORKBENCH_PAPER_DB"):
            os.environ["WORKBENCH_PAPER_DB"] = str(Path(tmp) / "paper.sqlite")
        print(f"Running {args.notebook} (paper ledger: {os.environ['WORKBENCH_PAPER_DB']}) ...", flush=True)
        log_path = Path(tmp) / "kernel.log"
        try:
            with log_path.open("wb") as kernel_log:
                nb = run_notebook(path, args.timeout, kernel_log)
        except CellExecutionError as exc:
            print(f"\ndemo: FAILED, a cell of {args.notebook} raised an error:\n\n{_ANSI.sub('', str(exc))}",
                  file=sys.stderr)
            return 1
        except CellTimeoutError as exc:
            print(f"\ndemo: FAILED, a cell of {args.notebook} timed out after {args.timeout} s:\n{exc}",
                  file=sys.stderr)
            return 1
        except DeadKernelError as exc:
            log = log_path.read_text(errors="replace").strip()[-4000:] if log_path.exists() else ""
            print(f"\ndemo: FAILED, the kernel died while running {args.notebook}: {exc}"
                  + (f"\n\nkernel log (end):\n{log}" if log else ""), file=sys.stderr)
            return 1

    texts = tagged_text(nb, args.tag)
    if not texts:
        print(f"demo: {args.notebook} ran, but no code cell tagged {args.tag!r} produced output", file=sys.stderr)
        return 1
    print("\nPositions after the quickstart:\n" if args.tag == POSITIONS_TAG else f"\nOutput of {args.tag!r}:\n")
    print("\n".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
