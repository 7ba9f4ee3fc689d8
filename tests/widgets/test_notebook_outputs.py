"""What notebooks/ commits as outputs is what a user may see: clean, small, and from no one's machine.

nbval does not compare the outputs of ``raises-exception`` and ``nbval-ignore-output`` cells, so a stale saved
traceback (a chained pydantic error, another checkout's paths) would stay committed unnoticed. This reads the
committed files themselves; ``scripts/refresh_notebooks.py notebooks/*.ipynb`` re-saves them.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_MIME = re.compile(r"application/vnd\.jupyter\.widget-(state|view)\+json")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Absolute paths that belong to some machine, not to the notebook (the checkout, a venv, a home, temp files).
MACHINE_PATHS = ("/work/", "/tmp/", "/root/", "/home/", "/Users/")
#: Secret-looking text: a credential assigned a value that is not masked, or a key in a known format.
SECRET_PATTERNS = (
    re.compile(r"(api[_-]?key|secret[_-]?key|secret|token|password|passwd)['\"]?\s*[=:]\s*['\"]?(?![*•]{3})"
               r"[A-Za-z0-9/+_.-]{6,}", re.IGNORECASE),
    re.compile(r"\b(PK|AK)[A-Z0-9]{8,}\b"),  # Alpaca key ids
    re.compile(r"\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY"),
)
_SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)


def _outputs_text(nb: dict[str, Any]) -> str:
    """Every committed output (images' base64 left out) and the notebook's metadata, as one text."""
    parts = [json.dumps(nb.get("metadata", {}))]
    for cell in nb["cells"]:
        parts.append(json.dumps(cell.get("metadata", {})))
        for out in cell.get("outputs", []):
            data = {mime: value for mime, value in out.get("data", {}).items() if not mime.startswith("image/")}
            parts.append(json.dumps({**out, "data": data}, ensure_ascii=False))
    return ANSI.sub("", "\n".join(parts)).replace("\\n", "\n")


def _secret_literals(nb: dict[str, Any]) -> set[str]:
    """String values the notebook's own code assigns to secret-looking names (``os.environ["X_SECRET"] = "…"``)."""
    found: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # (IPython magics)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(_SECRET_NAME.search(ast.unparse(t)) for t in node.targets):
                values = node.value.elts if isinstance(node.value, ast.Tuple | ast.List) else [node.value]
                found |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                          and len(v.value) >= 4}
    return found


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    path: Path = request.param
    return path.name, json.loads(path.read_text())


def test_no_pydantic_detail_in_outputs(notebook: tuple[str, dict[str, Any]]) -> None:
    name, nb = notebook
    text = _outputs_text(nb)
    for marker in ("errors.pydantic.dev", "For further information visit", "pydantic_core"):
        assert marker not in text, f"{name}: a saved output shows {marker!r}: re-save with scripts/refresh_notebooks.py"


def test_no_paths_of_this_machine_in_outputs(notebook: tuple[str, dict[str, Any]]) -> None:
    name, nb = notebook
    text = _outputs_text(nb)
    here = {str(ROOT), sys.prefix, tempfile.gettempdir(), str(Path.home())} - {"/"}
    for path in (*MACHINE_PATHS, *sorted(here)):
        assert path not in text, f"{name}: a saved output shows the path {path!r}: " + \
            text[max(0, text.index(path) - 80):text.index(path) + 80]


def test_no_secrets_in_outputs(notebook: tuple[str, dict[str, Any]]) -> None:
    name, nb = notebook
    text = _outputs_text(nb)
    for pattern in SECRET_PATTERNS:
        match = pattern.search(text)
        assert match is None, f"{name}: a saved output looks like it holds a secret: {match.group(0)!r}"
    for literal in _secret_literals(nb):
        assert literal not in text, f"{name}: a saved output shows the value of a secret the notebook sets"


def test_no_widget_state_in_notebooks(notebook: tuple[str, dict[str, Any]]) -> None:
    name, nb = notebook
    assert "widgets" not in nb.get("metadata", {}), f"{name}: widget state saved in the notebook's metadata"
    match = WIDGET_MIME.search(json.dumps(nb))
    assert match is None, f"{name}: a saved {match.group(0) if match else ''} blob (widgets need a live kernel)"


def test_the_checks_find_what_they_look_for() -> None:
    """The patterns above match what they are meant to (so a clean pass means something)."""
    dirty = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}}, "cells": [
        {"cell_type": "code", "metadata": {},
         "source": ['os.environ["ALPACA_API_KEY"], os.environ["ALPACA_SECRET_KEY"] = "PKREHEARSAL", "rehearsal-x"'],
         "outputs": [{"output_type": "error", "ename": "ValidationError", "evalue": "x",
                      "traceback": ["\x1b[32m/work/wt/desk/workbench/core/models.py:99\x1b[39m",
                                    "For further information visit https://errors.pydantic.dev/2.14/v/greater_than",
                                    "secret_key='abcdefgh123' rehearsal-x"]}]}]}
    text = _outputs_text(dirty)
    assert "errors.pydantic.dev" in text and "/work/wt/desk/workbench" in text
    assert all(p.search(text) for p in SECRET_PATTERNS[:1])
    assert _secret_literals(dirty) == {"PKREHEARSAL", "rehearsal-x"}
    assert WIDGET_MIME.search(json.dumps(dirty))
    assert not any(p.search("key=********** token: ***") for p in SECRET_PATTERNS)
