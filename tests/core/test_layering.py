"""The layout is the architecture: core depends on nothing above it (checked on the import graph)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent
#: What core must never import, at module level or inside a function.
ABOVE_CORE = ("adapters", "paper", "marketdata", "emulators", "widgets", "facade")


def _imports(path: Path) -> set[str]:
    """Every workbench module ``path`` imports (absolute or relative, anywhere in the file)."""
    module = "workbench." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                found.update({target} if node.module else {f"{base}.{a.name}" for a in node.names})
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value))
    return {name for name in found if name == "workbench" or name.startswith("workbench.")}


def test_core_imports_nothing_above_it() -> None:
    offenders = {}
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        bad = sorted(name for name in _imports(path)
                     if name == "workbench" or name.split(".")[1] in ABOVE_CORE)
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = bad
    assert not offenders, f"core imports layers above it: {offenders}"


def test_the_checker_sees_relative_and_lazy_imports(tmp_path: Path) -> None:
    """Control: the import scan catches the forms the old cycle used (a late import inside a function)."""
    sample = PACKAGE / "core" / "settings.py"
    assert "workbench.core.errors" in _imports(sample)  # ``from .errors import ...``
    text = "def f():\n    from workbench.adapters.factory import known_adapters\n    from ..facade import connect\n"
    fake = PACKAGE / "core" / "_layering_probe.py"
    fake.write_text(text, encoding="utf-8")
    try:
        assert {"workbench.adapters.factory", "workbench.facade"} <= _imports(fake)
    finally:
        fake.unlink()


def test_importing_core_alone_loads_no_adapter() -> None:
    """At run time too: core modules import without the adapters, paper, marketdata or facade modules."""
    code = ("import sys, types, importlib\n"
            "pkg = types.ModuleType('workbench'); pkg.__path__ = [%r]; sys.modules['workbench'] = pkg\n"
            "for m in ('errors', 'log', 'enums', 'settings', 'models', 'frames', 'runner', 'intervals'):\n"
            "    importlib.import_module('workbench.core.' + m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('workbench.') and not m.startswith('workbench.core')))"
            % str(PACKAGE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
