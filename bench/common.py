"""What every benchmark section shares: processes under test, their CPU and memory from /proc, statistics.

CPU is read from `/proc/<pid>/stat` (utime + stime of the process itself, all its threads, children excluded),
so "CPU per request" is what the process under test spent, whatever else runs on the machine: on a loaded
machine wall-clock figures move a lot, CPU per request much less.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY = "bench-key-" + "b" * 24
FAULT_DOUBLE = REPO / "tests" / "fakes" / "fault_app_server.py"
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (every thread, exited ones included; children not)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """Direct and indirect child pids of `pid` (from /proc, no psutil needed)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0]
    except OSError:
        return False
    return b"python" in Path(argv0.decode(errors="replace")).name.encode()


def fault_codex_bin(directory: Path, **env: str) -> str:
    """An executable standing in for CODEX_BIN that runs the fault double (tests/fakes/fault_app_server.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "fault-codex"
    exports = "".join(f"export {k}={v}\n" for k, v in env.items())
    script.write_text(f'#!/bin/sh\n{exports}exec {PY} {FAULT_DOUBLE} "$@"\n')
    script.chmod(0o755)
    return str(script)


RUNNING: set[Server] = set()  # started and not yet stopped: `stop_all` ends them whatever a section did


def stop_all() -> None:
    for server in list(RUNNING):
        server.stop(timeout=10)


class Server:
    """A process under test on a loopback port: started with `env`, polled until `ready_path` answers 200."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        port: int,
        log: Path,
        ready_path: str = "/readyz",
        cwd: Path = REPO,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.log_path = log
        self.ready_path = ready_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._worker: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[:3]} exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=2) as r:  # noqa: S310 - loopback
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.argv[:3]} not ready on {self.ready_path} after {timeout:.0f} s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""

    @property
    def worker_pid(self) -> int:
        """The process doing the work: Granian serves from a worker process it spawns even with one worker (the
        started process only supervises), so that child when there is one, else the started process itself."""
        if self._worker is None:
            direct = [pid for pid in children(self.pid) if _ppid(pid) == self.pid]
            pythons = [pid for pid in direct if _is_python(pid)]
            self._worker = pythons[0] if len(pythons) == 1 else self.pid
        return self._worker

    def cpu(self) -> float:
        """CPU seconds of the worker process (where requests are served)."""
        return cpu_seconds(self.worker_pid)

    def rss(self) -> float:
        """MiB resident in the worker plus the supervising process (what the host pays for the app)."""
        pids = {self.pid, self.worker_pid}
        return sum(rss_mib(pid) for pid in pids)

    def children(self) -> list[int]:
        return children(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        RUNNING.discard(self)
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kids = children(proc.pid)
            proc.kill()
            proc.wait(5)
            for pid in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_env(tmp: Path, name: str, port: int, **extra: str) -> dict[str, str]:
    """Environment for `python -m app` under test: its own home and work dirs, one known key, no request rate.

    Logging as in production (JSON lines at INFO, into the log file): its cost is part of what is measured."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROXY_", "WORKER_", "CODEX_"))},
        "PORT": str(port),
        "PROXY_HOST": "127.0.0.1",
        "PROXY_API_KEY": KEY,
        "CODEX_HOME": str(tmp / name / "home"),
        "PROXY_CODEX_WORKDIR": str(tmp / name / "work"),
        "PROXY_USAGE_LOG": str(tmp / name / "usage.ndjson"),
        "PROXY_KEY_REQUESTS_PER_MINUTE": "0",  # a benchmark sends far more than a person's 600/min
        "PROXY_LOG_LEVEL": "INFO",
        "PROXY_LOG_JSON": "true",
        **extra,
    }


# ---- statistics -----------------------------------------------------------------------------------------------


class Stat(msgspec.Struct, frozen=True):
    """The median of the repetitions and their range."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        data = [v for v in values if v == v]  # drop NaN (a repetition that measured nothing)
        if not data:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(data), min(data), max(data), len(data))

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        if self.n == 0:
            return "–"
        med, lo, hi = (f"{v:,.{digits}f}" for v in (self.median, self.min, self.max))
        span = f" ({lo}–{hi})" if self.n > 1 and lo != hi else ""
        return f"{med}{unit}{span}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    data = sorted(values)
    rank = max(1, min(len(data), math.ceil(q / 100 * len(data))))
    return data[rank - 1]
