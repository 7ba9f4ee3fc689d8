"""workbench benchmarks: figures and ratios, not pass/fail tests.

Run ``python -m bench`` (or ``make bench``) for everything, ``python -m bench engine`` or
``python -m bench coldstart`` for one benchmark. Importing this package does nothing.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

#: name -> "module:function"; each function returns a list of :class:`bench.report.Result`.
BENCHMARKS: dict[str, str] = {
    "engine": "bench.engine:run",
    "coldstart": "bench.coldstart:run",
    "yfcache": "bench.yfcache:run",
    "ib": "bench.ib:run",
    "tws": "bench.tws:run",
    "alpaca": "bench.alpaca:run",
    "widgets": "bench.widgets:run",
}
