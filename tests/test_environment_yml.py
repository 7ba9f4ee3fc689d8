"""environment.yml (conda) lists exactly pyproject.toml's dependencies plus the notebook, test, yfinance, ib and alpaca extras."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("notebook", "test", "yfinance", "ib", "alpaca")
NOT_PACKAGES = {"python", "pip"}  # conda-only entries; the `- pip: [-e .]` block is not read as packages

_CONDA_SPEC = re.compile(r"^(?:[\w.-]+::)?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<spec>.*)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements(text: str) -> dict[str, SpecifierSet]:
    """{normalized name: specifier} for [project] dependencies plus the EXTRAS."""
    project = tomllib.loads(text)["project"]
    lines = list(project.get("dependencies", []))
    for extra in EXTRAS:
        lines += project.get("optional-dependencies", {})[extra]
    out: dict[str, SpecifierSet] = {}
    for line in lines:
        req = Requirement(line)
        out.setdefault(normalize(req.name), req.specifier)
    return out


def conda_dependencies(text: str) -> list[str]:
    """The plain string items of the top-level ``dependencies:`` list (a tiny parser for this file's format).

    Packages under ``- pip:`` count too (PyPI-only pins), except the ``-e .`` install of workbench itself;
    comments and blank lines are ignored.
    """
    items: list[str] = []
    in_deps = False
    item_indent: int | None = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps = line.strip() == "dependencies:"
            item_indent = None
            continue
        if not in_deps or not line.lstrip().startswith("- "):
            continue
        if item_indent is None:
            item_indent = indent
        value = line.lstrip()[2:].strip().strip("'\"")
        if indent != item_indent:  # an item of the nested `- pip:` list
            if not value.startswith("-"):
                items.append(value)
            continue
        if value.endswith(":"):
            continue  # a nested mapping such as `- pip:`
        items.append(value)
    return items


def conda_requirements(text: str) -> dict[str, str]:
    """{normalized name: version spec text} for the conda packages, without python and pip."""
    out: dict[str, str] = {}
    for item in conda_dependencies(text):
        match = _CONDA_SPEC.match(item)
        assert match, f"environment.yml: cannot read dependency {item!r}"
        name = normalize(match["name"])
        if name not in NOT_PACKAGES:
            out[name] = match["spec"].replace(" ", "")
    return out


@pytest.fixture(scope="module")
def pyproject() -> dict[str, SpecifierSet]:
    return pyproject_requirements((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_text() -> str:
    return (ROOT / "environment.yml").read_text(encoding="utf-8")


def test_same_packages(pyproject: dict[str, SpecifierSet], env_text: str) -> None:
    conda = set(conda_requirements(env_text))
    wanted = set(pyproject)
    assert conda == wanted, (
        "environment.yml and pyproject.toml (dependencies + notebook, test, yfinance, ib and alpaca extras) disagree.\n"
        f"  only in pyproject.toml:  {sorted(wanted - conda)}\n"
        f"  only in environment.yml: {sorted(conda - wanted)}"
    )


def test_same_version_constraints(pyproject: dict[str, SpecifierSet], env_text: str) -> None:
    conda = conda_requirements(env_text)
    differ = {}
    for name, spec in pyproject.items():
        if name not in conda:
            continue  # reported by test_same_packages
        try:
            conda_spec = SpecifierSet(conda[name])
        except InvalidSpecifier:
            differ[name] = (str(spec), conda[name])
            continue
        if conda_spec != spec:
            differ[name] = (str(spec), conda[name])
    assert not differ, f"version constraints differ (pyproject.toml, environment.yml): {differ}"


def test_environment_header(env_text: str) -> None:
    assert re.search(r"^name: workbench$", env_text, re.M)
    assert re.search(r"^\s+- conda-forge$", env_text, re.M)
    deps = conda_dependencies(env_text)
    assert "python=3.11" in deps and "pip" in deps
    assert re.search(r"^\s+- pip:\n(\s+(- .*|#.*)\n)*\s+- -e \.$", env_text, re.M), \
        "expected a `- pip:` list ending with `-e .` to install workbench"


def test_parser_sees_a_new_dependency(env_text: str) -> None:
    """The check is only as good as the parser: a line added to either file must change what it reads."""
    added = env_text.replace("  - pip:\n", "  - polars>=1\n  - pip:\n", 1)
    assert set(conda_requirements(added)) == set(conda_requirements(env_text)) | {"polars"}
    toml = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    added_toml = toml.replace('dependencies = [\n', 'dependencies = [\n    "polars>=1",\n', 1)
    assert "polars" in pyproject_requirements(added_toml)


def test_parser_agrees_with_pyyaml(env_text: str) -> None:
    yaml = pytest.importorskip("yaml")  # not a dependency; a cross-check when it happens to be installed
    data = yaml.safe_load(env_text)
    plain = [d for d in data["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    assert conda_dependencies(env_text) == plain + [p for p in pip if not p.startswith("-")]
    assert data["name"] == "workbench" and data["channels"] == ["conda-forge"]
    assert pip[-1] == "-e ."
