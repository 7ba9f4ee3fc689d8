"""``python -m bench [--check] [engine|coldstart ...]``: run benchmarks, print a table and the floors not met,
write results/latest.json. With ``--check`` (``make bench CHECK=1``) the exit status is 1 if any floor is not met
(2 if a benchmark itself failed)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from . import BENCHMARKS
from .report import Result, floors_summary, table, unmet, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="fewer orders / runs (a smoke test)")
    parser.add_argument("--profile", action="store_true", help="engine: also cProfile the user-path loop")
    parser.add_argument("--check", action="store_true", help="exit 1 if any floor is not met")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    results: list[Result] = []
    failed: list[str] = []
    t0 = time.perf_counter()
    for name in names:
        module, func = BENCHMARKS[name].split(":")
        print(f"== {name} ==", flush=True)
        kwargs = {"quick": args.quick, **({"profile": True} if args.profile and name == "engine" else {})}
        try:
            results += getattr(importlib.import_module(module), func)(**kwargs)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(flush=True)
    print(table(results))
    print()
    print(floors_summary(results))
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    path = write_json(results)
    print(f"\nwrote {path} ({time.perf_counter() - t0:.1f} s total)")
    if args.check and failed:
        return 2
    return 1 if args.check and unmet(results) else 0


if __name__ == "__main__":
    sys.exit(main())
