"""Benchmark authd's /verify with wrk (32 connections, valid key): req/s and p99 per server variant.

Compares the shipped bare RSGI app against the same handler as bare ASGI and behind Litestar, each
with one and two Granian workers. The issue's target is the old Node ForwardAuth on this machine
class: 47,000-54,000 req/s, p99 2-3 ms. Environment: BENCH_DURATION (s, default 10),
BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_VARIANTS (comma list, default all).
Results go to stdout and .bench/authd.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY = "bench-key-0123456789abcdef"

# name -> (command, extra env)
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "rsgi-1w": ([PY, "-m", "authd"], {"AUTHD_INTERFACE": "rsgi", "AUTHD_WORKERS": "1"}),
    "rsgi-2w": ([PY, "-m", "authd"], {"AUTHD_INTERFACE": "rsgi", "AUTHD_WORKERS": "2"}),
    "asgi-1w": ([PY, "-m", "authd"], {"AUTHD_INTERFACE": "asgi", "AUTHD_WORKERS": "1"}),
    "asgi-2w": ([PY, "-m", "authd"], {"AUTHD_INTERFACE": "asgi", "AUTHD_WORKERS": "2"}),
    "litestar-1w": (
        [PY, "-m", "granian", "--interface", "asgi", "--factory", "--no-ws", "--http", "1", "--workers", "1"],
        {},
    ),
    "litestar-2w": (
        [PY, "-m", "granian", "--interface", "asgi", "--factory", "--no-ws", "--http", "1", "--workers", "2"],
        {},
    ),
}


@dataclass
class Result:
    variant: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(variant: str, out: str) -> Result:
    def grab(pattern: str) -> str | None:
        m = re.search(pattern, out, re.MULTILINE)
        return m.group(1) if m else None

    errors = sum(
        int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", grab(r"Socket errors: (.*)$") or "")
    )
    return Result(
        variant=variant,
        requests_per_s=float(grab(r"Requests/sec:\s+([\d.]+)") or 0),
        p50_ms=_ms(grab(r"^\s+50%\s+(\S+)") or "0ms"),
        p99_ms=_ms(grab(r"^\s+99%\s+(\S+)") or "0ms"),
        non_2xx=int(grab(r"Non-2xx or 3xx responses: (\d+)") or 0),
        errors=errors,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - loopback URL we built
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def run_variant(name: str, duration: int, connections: int, threads: int) -> Result:
    command, extra = VARIANTS[name]
    port = _free_port()
    env = {
        **os.environ,
        **extra,
        "PROXY_API_KEY": KEY,
        "AUTHD_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    env.pop("PROXY_API_KEYS_FILE", None)
    if command[2] == "granian":
        command = [*command, "--host", "127.0.0.1", "--port", str(port), "bench.authd_litestar:create_app"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/verify"
        wrk = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "-H", f"Authorization: Bearer {KEY}", url]
        subprocess.run([*wrk[:4], "-d2s", *wrk[4:]], check=True, capture_output=True)  # warm-up
        out = subprocess.run([*wrk[:4], f"-d{duration}s", *wrk[4:]], check=True, capture_output=True, text=True)
        return parse_wrk(name, out.stdout)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    duration = int(os.environ.get("BENCH_DURATION", "10"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "32"))
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    names = [n for n in os.environ.get("BENCH_VARIANTS", ",".join(VARIANTS)).split(",") if n]
    print(f"authd /verify, valid key, wrk -t{threads} -c{connections} -d{duration}s, {os.cpu_count()} CPUs")
    print(f"{'variant':<12} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'errors':>7}")
    results = []
    for name in names:
        r = run_variant(name, duration, connections, threads)
        results.append(r)
        print(
            f"{r.variant:<12} {r.requests_per_s:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>8} {r.errors:>7}"
        )
    out = REPO / ".bench" / "authd.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(f"written: {out.relative_to(REPO)}")
    return 0 if all(r.non_2xx == 0 and r.errors == 0 for r in results) else 1
