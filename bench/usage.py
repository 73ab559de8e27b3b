"""The usage ledger at 1,000,000 records: append cost, rotation, and `/v1/usage` / `/v1/usage/raw` latency.

Writes `BENCH_USAGE_RECORDS` (default 1,000,000) records spread over 30 days into a temporary ledger in the
app's own line format, rotated at 64 MiB like the default, then measures in-process (`UsageLog`) and through
the real app (`python -m app` with a CODEX_BIN that does not exist: no codex needed for these routes):

- append: time on the caller's side (the event loop) per record, and until the writer thread flushed them;
- the app's start-up pass over the ledger (hourly digests, today's tokens per key);
- `/v1/usage` over everything, over a range that cuts an hour (exact counting of the boundary cells), with a
  key filter, by day; `/v1/usage/raw` for the newest 200 and 10,000 records.
Usage: `python -m bench usage`.
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

from app.usage import UsageLog, UsageRecord

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-key-" + "u" * 20
KEYS = (b"default", b"alice", b"bob", b"carol")
MODELS = (b"codex-5", b"codex-5-high", b"gpt-5.2-codex-L")
RECORD = (
    b'{"ts":%d,"request_id":"req_bench_%08d","route":"/v1/chat/completions","model":"%s","key":"%s",'
    b'"stream":%s,"outcome":"completed","duration_ms":100,"input_tokens":%d,"cached_input_tokens":0,'
    b'"output_tokens":10,"reasoning_tokens":0,"total_tokens":%d}\n'
)
MAX_BYTES = 64 * 1024 * 1024


def write_ledger(path: Path, count: int, now_ms: int) -> int:
    """`count` records, oldest first, rotated like the app does (usage.ndjson.N … .1, usage.ndjson)."""
    span = 30 * 24 * 3600 * 1000
    chunks: list[bytes] = []
    size = 0
    files: list[bytes] = []
    for i in range(count):
        tokens = 100 + (i * 7919) % 4900
        line = RECORD % (
            now_ms - span + i * (span // count),
            i,
            MODELS[i % 3],
            KEYS[i % 4],
            b"true" if i % 2 else b"false",
            tokens - 10,
            tokens,
        )
        if size + len(line) > MAX_BYTES:
            files.append(b"".join(chunks))
            chunks, size = [], 0
        chunks.append(line)
        size += len(line)
    files.append(b"".join(chunks))
    for index, data in enumerate(reversed(files)):
        target = path if index == 0 else path.with_name(f"{path.name}.{index}")
        target.write_bytes(data)
    return len(files)


def _timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    count = int(os.environ.get("BENCH_USAGE_RECORDS", "1000000"))
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as tmp:
        ledger = Path(tmp) / "usage.ndjson"
        now = int(time.time() * 1000)
        started = time.perf_counter()
        files = write_ledger(ledger, count, now)
        total_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        took = time.perf_counter() - started
        print(f"ledger: {count:,} records, {files} files, {total_mb:.0f} MB (written in {took:.1f} s)")

        # Appends: the caller's cost (event loop side) and the writer's throughput, into a scratch ledger.
        scratch = UsageLog(Path(tmp) / "scratch.ndjson", max_bytes=MAX_BYTES)
        record = UsageRecord(
            ts=now, request_id="req_x", route="/v1/chat/completions", model="codex-5", key="alice", stream=False,
            outcome="completed", duration_ms=100, input_tokens=3100, output_tokens=12, total_tokens=3112,
        )  # fmt: skip
        n = 100_000
        started = time.perf_counter()
        for _ in range(n):
            scratch.append(record)
        queued = time.perf_counter() - started
        scratch.flush(60)
        written = time.perf_counter() - started
        scratch.close()
        print(f"append: {queued / n * 1e6:.1f} µs per record on the caller, {n / written:,.0f} records/s written")

        log = UsageLog(ledger, max_bytes=MAX_BYTES)
        started = time.perf_counter()
        log.load_today()
        print(f"in-process first pass (digests + today's tokens): {time.perf_counter() - started:.2f} s")
        cut = now - 7 * 86_400_000 + 12_345
        for label, fn in (
            ("summary, everything", lambda: log.summary(0, now + 1, None)),
            ("summary, 7 days from mid-hour, by day", lambda: log.summary(cut, now + 1, "day")),
            ("summary, one key, by hour", lambda: log.summary(0, now + 1, "hour", key="bob")),
            ("tail 10,000", lambda: log.tail(10_000)),
            ("tail 200 of one key", lambda: log.tail(200, key="carol")),
        ):
            ms, _ = _timed(fn)
            print(f"  {label}: {ms:.1f} ms")

        port = _port()
        env = {
            **os.environ,
            "PORT": str(port),
            "PROXY_API_KEY": KEY,
            "CODEX_HOME": str(Path(tmp) / "home"),
            "CODEX_BIN": str(Path(tmp) / "no-codex"),
            "PROXY_BACKEND": "offline",
            "PROXY_USAGE_LOG": str(ledger),
            "PROXY_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        app = subprocess.Popen([sys.executable, "-m", "app"], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {KEY}"}) as client:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                print(f"app start with the ledger: {time.perf_counter() - started:.1f} s")
                for label, path, params in (
                    ("GET /v1/usage", "/v1/usage", {}),
                    ("GET /v1/usage?group=day&start=<7 d ago>", "/v1/usage", {"group": "day", "start": cut}),
                    ("GET /v1/usage?key=bob&group=hour", "/v1/usage", {"key": "bob", "group": "hour"}),
                    ("GET /v1/usage/raw?limit=200", "/v1/usage/raw", {"limit": 200}),
                    ("GET /v1/usage/raw?limit=10000", "/v1/usage/raw", {"limit": 10000}),
                ):
                    ms, response = _timed(lambda p=path, q=params: client.get(p, params=q).raise_for_status())
                    body = response.json()  # type: ignore[attr-defined]
                    what = body["totals"]["requests"] if "totals" in body else len(body["data"])
                    print(f"  {label}: {ms:.1f} ms ({what:,})")
        finally:
            app.send_signal(signal.SIGINT)
            app.wait(30)
    return 0
