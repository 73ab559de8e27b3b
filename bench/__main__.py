"""`python -m bench` (what `make bench` runs): every benchmark section, then one Markdown + JSON report.

    python -m bench                  # full run (≈ 10 min): writes bench/report.md and bench/report.json
    python -m bench --quick          # ≤ 2 min subset for development: .bench/quick/
    python -m bench --tiny --out D   # seconds: the end-to-end check `make test` runs
    python -m bench relay streams    # some sections only (full sizes): .bench/partial/
    python -m bench --base REF       # compare the relay against another git ref ("" = no comparison)

Sections: overhead (items 1, 2a), relay (2), streams (3), codex (4), edge (5), usage (6), bounds. Each runs in its
own try: a failing section is reported as failed and the exit status is 1, the others still run. Benchmarks are
never part of `make test` (only the tiny run is, for the wiring, with no timing assertion).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import msgspec

from app.settings import default_codex_bin
from bench import report as rep
from bench.common import REPO, stop_all

SECTIONS: dict[str, str] = {
    "overhead": "bench.overhead",
    "relay": "bench.relay",
    "streams": "bench.streams",
    "codex": "bench.codex",
    "edge": "bench.edge",
    "usage": "bench.usage",
    "bounds": "bench.bounds",
}
# The tree before issue 15's relay work: the relay section runs it side by side with the working tree.
BASE_REF = "90c51b0"


class Size(msgspec.Struct, frozen=True):
    reps: int
    overhead_turns: int
    profile_turns: int  # 0: no py-spy profiles
    relay_count: int
    relay_seconds: float
    lever_reps: int
    streams_small: int
    streams_large: int
    hold_s: float
    cost_turns: int
    grid_workers: tuple[int, ...]
    grid_concurrency: tuple[int, ...]
    grid_reps: int
    grid_min_turns: int
    held_levels: tuple[int, ...]
    held_ms: int
    wrk_seconds: float
    usage_records: int


SIZES: dict[str, Size] = {
    "full": Size(
        reps=5, overhead_turns=30, profile_turns=40, relay_count=400, relay_seconds=2.5, lever_reps=5,
        streams_small=1000, streams_large=5000, hold_s=60, cost_turns=15, grid_workers=(1, 2, 4),
        grid_concurrency=(8, 32, 128), grid_reps=2, grid_min_turns=32, held_levels=(64, 128, 256, 512),
        held_ms=3000, wrk_seconds=4, usage_records=1_000_000,
    ),
    "quick": Size(
        reps=2, overhead_turns=6, profile_turns=0, relay_count=120, relay_seconds=1.0, lever_reps=0,
        streams_small=100, streams_large=300, hold_s=3, cost_turns=4, grid_workers=(1, 2), grid_concurrency=(8,),
        grid_reps=1, grid_min_turns=16, held_levels=(32, 64), held_ms=1000, wrk_seconds=1, usage_records=20_000,
    ),
    "tiny": Size(
        reps=1, overhead_turns=2, profile_turns=0, relay_count=6, relay_seconds=0.5, lever_reps=0,
        streams_small=3, streams_large=6, hold_s=0.5, cost_turns=1, grid_workers=(1,), grid_concurrency=(2,),
        grid_reps=1, grid_min_turns=2, held_levels=(4,), held_ms=200, wrk_seconds=1, usage_records=2_000,
    ),
}  # fmt: skip


class Context(msgspec.Struct):
    mode: str
    size: Size
    tmp: Path
    base_ref: str


def _settings(ctx: Context, names: list[str]) -> dict[str, str]:
    s = ctx.size
    return {
        "sections": ", ".join(names),
        "repetitions": str(s.reps),
        "relay": f"{s.relay_count} requests or {s.relay_seconds} s per cell and repetition; base ref "
        f"`{ctx.base_ref or 'none'}`",
        "app under test": "`python -m app` (Granian, 1 worker), JSON log lines at INFO into a file, no per-key "
        "request rate (`PROXY_KEY_REQUESTS_PER_MINUTE=0`)",
        "load generator": "bench/loadgen.py (asyncio, keep-alive HTTP/1.1, every answer checked); wrk for authd "
        "and Traefik",
        "CPU": "utime + stime of the process under test from /proc (its own threads, not its children)",
        "streams": f"{s.streams_small:,} and {s.streams_large:,}, held {s.hold_s:.0f} s",
        "worker grid": f"{s.grid_workers} workers × {s.grid_concurrency} concurrency, {s.grid_reps} repetition(s)",
        "usage ledger": f"{s.usage_records:,} records",
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="≤ 2 min subset (writes .bench/quick/)")
    size.add_argument("--tiny", action="store_true", help="seconds: checks the wiring only")
    parser.add_argument("--out", type=Path, help="report directory")
    parser.add_argument("--base", default=None, help=f"git ref for the relay's before/after (default {BASE_REF})")
    parser.add_argument("sections", nargs="*", help=f"default all: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.sections if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    names = args.sections or list(SECTIONS)
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    if args.out is not None:
        out = args.out
    elif mode == "full" and names == list(SECTIONS):
        out = REPO / "bench"
    else:
        out = REPO / ".bench" / (mode if mode != "full" else "partial")
    base_ref = args.base if args.base is not None else (BASE_REF if mode == "full" else "")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ctx = Context(mode=mode, size=SIZES[mode], tmp=Path(tmp), base_ref=base_ref)
        report = rep.Report(
            mode=mode,
            command="python -m bench"
            + (f" --{mode}" if mode != "full" else "")
            + "".join(f" {n}" for n in args.sections),
            started=rep.now(),
            machine=rep.machine(),
            versions=rep.versions(os.environ.get("CODEX_BIN") or default_codex_bin()),
            settings=_settings(ctx, names),
        )
        status = 0
        try:
            for name in names:
                print(f"== {name}", flush=True)
                t0 = time.monotonic()
                try:
                    section = importlib.import_module(SECTIONS[name]).run(ctx)
                except Exception as exc:  # one broken section must not lose the others' figures
                    traceback.print_exc()
                    section = rep.Section(id=name, title=name, error=f"{type(exc).__name__}: {exc}")
                    status = 1
                section.seconds = time.monotonic() - t0
                report.sections.append(section)
                for t in section.targets:
                    print(f"   {t.name}: {t.measured:,.3g} {t.unit} (target {t.target:,.3g}) {t.verdict()}", flush=True)
                print(f"   {section.seconds:.0f} s", flush=True)
                stop_all()  # nothing a section started outlives it, even when it failed half-way
        finally:
            stop_all()  # also on Ctrl-C
        report.seconds = time.monotonic() - started
        report.load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
        json_path, md_path = rep.write(report, out)
    print(f"written: {md_path} and {json_path.name} ({report.seconds / 60:.1f} min)")
    return status


sys.exit(main(sys.argv[1:]))
