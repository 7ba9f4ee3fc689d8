"""Cold start: a fresh interpreter to the first history DataFrame, vs a fresh ``import pandas``.

Each run is a new process of this venv's python (``sys.executable``), from the repository root, with
the paper ledger (``WORKBENCH_PAPER_DB``) on a fresh temp file and no settings overrides from the
environment. Bytecode is cached under ``bench/results/pycache`` (``PYTHONPYCACHEPREFIX``, and
``PYTHONDONTWRITEBYTECODE`` is cleared) so both commands start from warm .pyc files, as a user's
interpreter would, without writing ``__pycache__`` folders into the source tree. The two commands
alternate; one untimed warm-up of each comes first (page cache, .pyc).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import Result

WORKBENCH = 'import workbench; workbench.connect().get_history("AAPL", days=30)'
PANDAS = "import pandas"
RUNS = 7
RATIO_FLOOR = 1.5
ROOT = Path(__file__).resolve().parent.parent
PYCACHE = Path(__file__).resolve().parent / "results" / "pycache"
_CLEAR = ("BROKER_TYPE", "WORKBENCH_SETTINGS", "WORKBENCH_PAPER_DB", "IBKR_GATEWAY_HOST", "IBKR_GATEWAY_PORT",
          "IBKR_CLIENT_ID", "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    env["WORKBENCH_PAPER_DB"] = str(db)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def _time(code: str, db: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=_env(db), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{code!r} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds


def run(quick: bool = False) -> list[Result]:
    runs = 3 if quick else RUNS
    with tempfile.TemporaryDirectory(prefix="wb-bench-cold-") as d:
        tmp = Path(d)
        # Warm-up (untimed), which also checks that the child really gets a DataFrame.
        check = WORKBENCH.replace("workbench.connect()", "df = workbench.connect()", 1) + "; print(type(df).__name__, len(df))"
        out = subprocess.run([sys.executable, "-c", check], env=_env(tmp / "check.sqlite"), cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0 or not out.stdout.startswith("DataFrame"):
            raise RuntimeError(f"the workbench child did not produce a DataFrame:\n{out.stdout}\n{out.stderr}")
        _time(PANDAS, tmp / "warm.sqlite")
        _time(WORKBENCH, tmp / "warm2.sqlite")
        times: dict[str, list[float]] = {"workbench": [], "pandas": []}
        for i in range(runs):
            times["workbench"].append(_time(WORKBENCH, tmp / f"cold-{i}.sqlite"))
            times["pandas"].append(_time(PANDAS, tmp / f"pandas-{i}.sqlite"))
    wb, pd_ = statistics.median(times["workbench"]), statistics.median(times["pandas"])
    ratio = wb / pd_
    details: dict[str, Any] = {"runs": runs, "workbench_s": times["workbench"], "pandas_s": times["pandas"],
                               "workbench_median_s": wb, "pandas_median_s": pd_, "ratio": ratio,
                               "workbench_cmd": WORKBENCH, "pandas_cmd": PANDAS, "python": sys.executable}
    print(f"  {runs} runs each, alternating ({check.split(';')[-1].strip()} -> {out.stdout.strip()})")
    print(f"  workbench: median {wb * 1000:.0f} ms  runs " + " ".join(f"{t * 1000:.0f}" for t in times["workbench"]))
    print(f"  pandas:    median {pd_ * 1000:.0f} ms  runs " + " ".join(f"{t * 1000:.0f}" for t in times["pandas"]))
    print(f"  ratio {ratio:.2f}x (floor <= {RATIO_FLOOR}x)")
    return [
        Result("cold start: workbench first history", wb, "s", details=details),
        Result("cold start: import pandas", pd_, "s"),
        Result("cold start ratio (workbench/pandas)", ratio, "x", f"<= {RATIO_FLOOR}x", ratio <= RATIO_FLOOR, details),
    ]
