"""Result rows, the summary table and the JSON file."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """One reported figure. ``floor`` is a human-readable bound; ``met`` is None when informational."""

    name: str
    value: float
    unit: str
    floor: str = ""
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "orders/s":
        return f"{value:,.0f} orders/s"
    if unit == "s":
        return f"{value * 1000:.0f} ms"
    return f"{value:g} {unit}"


def table(results: list[Result]) -> str:
    rows = [("benchmark", "value", "floor", "met?")]
    for r in results:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        rows.append((r.name, _fmt(r.value, r.unit), r.floor or "(info)", met))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i != 1 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def unmet(results: list[Result]) -> list[Result]:
    """Every row, of any benchmark module, whose floor is not met."""
    return [r for r in results if r.met is False]


def floors_summary(results: list[Result]) -> str:
    """A verdict over every row with a floor: which floors are not met (or that all are)."""
    checked = [r for r in results if r.met is not None]
    missed = unmet(results)
    if not checked:
        return "no floors checked"
    if not missed:
        return f"all {len(checked)} floors met"
    lines = [f"{len(missed)} of {len(checked)} floors NOT met:"]
    lines += [f"  - {r.name}: {_fmt(r.value, r.unit)} (floor {r.floor})" for r in missed]
    return "\n".join(lines)


def write_json(results: list[Result], path: Path | None = None) -> Path:
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": {"cpus": _cpus()},
        "results": [asdict(r) for r in results],
        "all_floors_met": all(r.met for r in results if r.met is not None),
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _cpus() -> int | None:
    import os

    return os.cpu_count()
