"""Sampling profiles of a process under test with py-spy (a pinned test dependency), summarised as top frames.

`py-spy record --format raw` writes collapsed stacks (`frame;frame;leaf count`). The summary names the frames
with the most samples on top of the stack (self) and anywhere on it (inclusive), as shares of all samples, with
idle samples (the event loop waiting in epoll/select) dropped so the shares are of the CPU actually used.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec

_IDLE = re.compile(r"\b(select|poll|epoll_wait|_run_once \(asyncio|wait \(threading|_worker \(concurrent)")
# Frames under everything (process start-up, Granian's serve loop): left out of the inclusive list.
_SCAFFOLD = re.compile(r"multiprocessing/|<frozen runpy>|granian/server/|app/__main__\.py|threading\.py|runpy")
_LOCATION = re.compile(r" \((?P<file>[^()]*?):(?P<line>\d+)\)$")


class Frame(msgspec.Struct, frozen=True):
    frame: str
    share: float  # of all non-idle samples, 0..1


class Profile(msgspec.Struct, frozen=True):
    samples: int
    idle_samples: int
    self_top: list[Frame]
    inclusive_top: list[Frame]
    by_component: list[Frame] = msgspec.field(default_factory=list)
    note: str = ""


# Self time by where the leaf frame lives. Granian's Rust side (HTTP parsing, socket I/O, the hand-over to
# Python) shows up as the Python frame that called into it.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("granian/", "Granian (Rust: HTTP, sockets, ASGI hand-over)"),
    ("litestar/", "Litestar (routing, request, response, middleware)"),
    ("app/api/", "app/api (middleware, routes, pipeline)"),
    ("app/translate/", "app/translate (plans, encoders)"),
    ("app/codex/", "app/codex (JSON-RPC, pool, turn)"),
    ("app/", "app (other)"),
    ("asyncio/", "asyncio (event loop, tasks, streams)"),
    ("logging/", "logging"),
    ("json/", "json (stdlib)"),
    ("threading.py", "threads"),
    ("queue.py", "threads"),
    ("anyio/", "anyio"),
    ("msgspec", "msgspec"),
)


def component(frame: str) -> str:
    m = _LOCATION.search(frame)
    path = m.group("file") if m else frame
    for marker, name in COMPONENTS:
        if marker in path:
            return name
    return "other (stdlib, C)"


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


class Sampler:
    """`with Sampler(pid, out) as s:` records while the block runs; `s.summary()` afterwards."""

    def __init__(self, pid: int, out: Path, *, rate: int = 250, native: bool = False) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.native = native
        self.proc: subprocess.Popen[bytes] | None = None
        self.problem = ""

    def __enter__(self) -> Sampler:
        tool = py_spy()
        if tool is None:
            self.problem = "py-spy is not installed (pip install -e '.[test]')"
            return self
        argv = [tool, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw"]
        argv += ["--output", str(self.out), "--nonblocking", "--threads"] + (["--native"] if self.native else [])
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(2)  # py-spy writes its output on SIGINT
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            self.problem = "py-spy wrote no profile: " + err.decode(errors="replace").strip()[-300:]

    def summary(self, top: int = 12) -> Profile:
        if self.problem or not self.out.exists():
            return Profile(0, 0, [], [], note=self.problem or "no profile")
        return summarise(self.out.read_text(errors="replace"), top)


def _short(frame: str) -> str:
    """`handle (app/api/pipeline.py:123)` with the site-packages / repo prefix cut off."""
    m = _LOCATION.search(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    with contextlib.suppress(ValueError):
        path = str(Path(path).relative_to(Path(__file__).resolve().parent.parent))
    return f"{frame[: m.start()]} ({path}:{m.group('line')})"


def summarise(raw: str, top: int = 12) -> Profile:
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    comp_counts: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if _IDLE.search(frames[-1]):
            idle += count
            continue
        total += count
        self_counts[_short(frames[-1])] += count
        comp_counts[component(frames[-1])] += count
        for frame in {_short(f) for f in frames if not _SCAFFOLD.search(f)}:
            incl_counts[frame] += count
    if total == 0:
        return Profile(0, idle, [], [], note="no busy samples")
    return Profile(
        samples=total,
        idle_samples=idle,
        self_top=[Frame(f, c / total) for f, c in self_counts.most_common(top)],
        inclusive_top=[Frame(f, c / total) for f, c in incl_counts.most_common(top * 2)],
        by_component=[Frame(f, c / total) for f, c in comp_counts.most_common()],
    )
