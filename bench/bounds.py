"""How fast hostile bodies are refused (issue 13): the 300,000-message body, 100,000-deep nesting and other
shapes through the real app (`python -m app`, one worker, built-in offline model), plus the depth scan alone.

The acceptance target is a 400 within a second with codex untouched; `make test` asserts the 400 and that codex
saw nothing (tests/api/test_request_bounds.py), this prints the time. Usage: `python -m bench bounds`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.api.bounds import json_depth_exceeds
from bench.turns import KEY, REPO, _port

BODIES: dict[str, tuple[str, bytes]] = {
    "300k messages (10 MB)": (
        "/v1/chat/completions",
        json.dumps({"model": "codev-5", "messages": [{"role": "user", "content": "a"}] * 300_000}).encode(),
    ),
    "100k-deep nesting": ("/v1/chat/completions", b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "300k input items (10 MB)": (
        "/v1/responses",
        json.dumps({"model": "codev-5", "input": [{"role": "user", "content": "a"}] * 300_000}).encode(),
    ),
    "16 MB of [": ("/v1/chat/completions", b"[" * (16 * 2**20 - 1024)),
}
SHAPES = {
    "12.8 MB nested just below the limit": (b"[" * 64 + b"]" * 64) * 100_000,
    "16 MB of []": b"[]" * 8_000_000,
}


def main() -> int:
    print(f"{'body':<36} {'status':>6} {'median ms':>10} {'max ms':>8}")
    for name, raw in SHAPES.items():
        times = []
        for _ in range(3):
            t = time.perf_counter()
            json_depth_exceeds(raw, 64)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{'scan only: ' + name:<36} {'-':>6} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    port = _port()
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
        env = {
            **os.environ,
            "PORT": str(port),
            "PROXY_API_KEY": KEY,
            "PROXY_WORKER_COUNT": "1",
            "CODEX_HOME": str(Path(tmp) / "home"),
            "PROXY_LOG_LEVEL": "WARNING",
        }
        app = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        try:
            headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=headers) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                for name, (path, body) in BODIES.items():
                    times, status = [], 0
                    for _ in range(5):
                        t = time.perf_counter()
                        status = client.post(path, content=body).status_code
                        times.append((time.perf_counter() - t) * 1000)
                    print(f"{name:<36} {status:>6} {statistics.median(times):>10.1f} {max(times):>8.1f}", flush=True)
        finally:
            app.send_signal(signal.SIGINT)
            app.wait(30)
    return 0
