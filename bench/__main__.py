"""``python -m bench [engine|coldstart ...]``: run benchmarks, print a table, write results/latest.json."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from . import BENCHMARKS
from .report import table, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="fewer orders / runs (a smoke test)")
    parser.add_argument("--profile", action="store_true", help="engine: also cProfile the submit loop")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    results = []
    t0 = time.perf_counter()
    for name in names:
        module, func = BENCHMARKS[name].split(":")
        print(f"== {name} ==", flush=True)
        kwargs = {"quick": args.quick, **({"profile": True} if args.profile and name == "engine" else {})}
        results += getattr(importlib.import_module(module), func)(**kwargs)
        print(flush=True)
    print(table(results))
    path = write_json(results)
    print(f"\nwrote {path} ({time.perf_counter() - t0:.1f} s total)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
