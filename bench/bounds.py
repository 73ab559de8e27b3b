"""How fast hostile bodies are refused (issue 13): the 300,000-message body, 100,000-deep nesting and other
shapes through the real app (`python -m app`, one worker, built-in offline model), plus the depth scan alone.

The acceptance target is a 400 within a second with codex untouched; `make test` asserts the 400 and that codex
saw nothing (tests/api/test_request_bounds.py); this measures the time (`python -m bench bounds`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from app.api.bounds import json_depth_exceeds
from bench.common import KEY, Server, Stat, app_env, free_port
from bench.report import Section, Table

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


def run(ctx) -> Section:
    rows: list[list[str]] = []
    reps = max(ctx.size.reps, 3)
    for name, raw in SHAPES.items():
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            json_depth_exceeds(raw, 64)
            times.append((time.perf_counter() - t) * 1000)
        rows.append([f"scan only: {name}", "–", Stat.of(times).fmt(1)])
    tmp: Path = ctx.tmp / "bounds"
    port = free_port()
    env = app_env(tmp, "app", port, PROXY_WORKER_COUNT="1", PROXY_LOG_LEVEL="WARNING")
    with Server([sys.executable, "-m", "app"], env, port=port, log=tmp / "app.log") as app:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        with httpx.Client(base_url=app.base, timeout=60, headers=headers) as client:
            for name, (path, body) in BODIES.items():
                times, status = [], 0
                for _ in range(reps):
                    t = time.perf_counter()
                    status = client.post(path, content=body).status_code
                    times.append((time.perf_counter() - t) * 1000)
                rows.append([name, str(status), Stat.of(times).fmt(1)])
    section = Section(
        id="bounds",
        title="Bounded requests: how fast hostile bodies are refused",
        text=(__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    section.tables.append(Table(title=f"{reps} repetitions, ms", columns=["body", "status", "time (ms)"], rows=rows))
    section.data = {"rows": rows}
    return section
