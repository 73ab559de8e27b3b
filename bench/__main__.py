"""`python -m bench [name ...]` (what `make bench` runs): run the registered benchmarks, default all.

Each benchmark is a module in this package with a `main() -> int`; add yours to BENCHMARKS.
Benchmarks are not part of `make test`: they need a quiet machine and take tens of seconds.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, str] = {
    "authd": "bench.authd",
    "turns": "bench.turns",
    "usage": "bench.usage",
    "bounds": "bench.bounds",
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"== {name}", flush=True)
        status |= importlib.import_module(BENCHMARKS[name]).main()
    return status


sys.exit(main(sys.argv[1:]))
