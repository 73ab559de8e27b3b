"""1,000 sequential turns through one worker: latency, proxy RSS, codex RSS and child count over time.

Starts the real app (`python -m app`, one worker, built-in offline model) on a free loopback port and drives it
with non-stream chat completions. Memory must stay flat (ephemeral threads are unsubscribed after use).
Usage: `python -m bench turns` (`BENCH_TURNS`, default 1000).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-key-" + "b" * 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def main() -> int:
    total = int(os.environ.get("BENCH_TURNS", "1000"))
    port = _port()
    with tempfile.TemporaryDirectory(prefix="bench-turns-") as tmp:
        env = {
            **os.environ,
            "PORT": str(port),
            "PROXY_API_KEY": KEY,
            "PROXY_WORKER_COUNT": "1",
            "CODEX_HOME": str(Path(tmp) / "home"),
            "PROXY_LOG_LEVEL": "WARNING",
            "PROXY_KEY_REQUESTS_PER_MINUTE": "0",  # 1,000 turns in a row would pass the default 600/min
        }
        app = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                proxy = psutil.Process(app.pid)
                latencies: list[float] = []
                print(f"{'turns':>6} {'proxy MB':>9} {'codex MB':>9} {'children':>8} {'p50 ms':>7} {'p95 ms':>7}")
                for i in range(total + 1):
                    if i % max(1, total // 10) == 0:
                        children = [c for c in proxy.children(recursive=True) if c.is_running()]
                        codex_mb = sum(_rss_mb(c) for c in children)
                        window = latencies[-100:] or [0.0]
                        p95 = statistics.quantiles(window, n=20)[-1] if len(window) > 1 else window[0]
                        print(
                            f"{i:>6} {_rss_mb(proxy):>9.1f} {codex_mb:>9.1f} {len(children):>8} "
                            f"{statistics.median(window):>7.1f} {p95:>7.1f}",
                            flush=True,
                        )
                    if i == total:
                        break
                    started = time.perf_counter()
                    r = client.post(
                        "/v1/chat/completions",
                        json={"model": "codev-5", "messages": [{"role": "user", "content": f"turn {i}"}]},
                    )
                    r.raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            app.send_signal(signal.SIGINT)
            app.wait(30)
    return 0
