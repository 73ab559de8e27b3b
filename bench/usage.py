"""The usage ledger at 1,000,000 records: append cost, rotation, and `/v1/usage` / `/v1/usage/raw` latency.

Writes the records (1,000,000 in `make bench`) spread over 30 days into a temporary ledger in the
app's own line format, rotated at 64 MiB like the default, then measures in-process (`UsageLog`) and through
the real app (`python -m app` with a CODEX_BIN that does not exist: no codex needed for these routes):

- append: time on the caller's side (the event loop) per record, and until the writer thread flushed them;
- the app's start-up pass over the ledger (hourly digests, today's tokens per key);
- `/v1/usage` over everything, over a range that cuts an hour (exact counting of the boundary cells), with a
  key filter, by day; `/v1/usage/raw` for the newest 200 and 10,000 records.
Part of `make bench` (`python -m bench usage` for this section alone).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

from app.usage import UsageLog, UsageRecord
from bench.common import Server, Stat, free_port
from bench.report import Section, Table

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


def _timed(fn, repeat: int = 5) -> tuple[Stat, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return Stat.of(times), result


def run(ctx) -> Section:
    count = ctx.size.usage_records
    reps = max(ctx.size.reps, 5)
    tmp: Path = ctx.tmp / "usage"
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    ledger = tmp / "usage.ndjson"
    now = int(time.time() * 1000)
    started = time.perf_counter()
    files = write_ledger(ledger, count, now)
    total_mb = sum(p.stat().st_size for p in tmp.iterdir()) / 2**20
    rows.append(
        [
            "ledger written (records, files, MB, s)",
            f"{count:,} records, {files} files, {total_mb:.0f} MB in {time.perf_counter() - started:.1f} s",
        ]
    )

    # Appends: the caller's cost (event loop side) and the writer's throughput, into a scratch ledger.
    scratch = UsageLog(tmp / "scratch.ndjson", max_bytes=MAX_BYTES)
    record = UsageRecord(
        ts=now,
        request_id="req_x",
        route="/v1/chat/completions",
        model="codex-5",
        key="alice",
        stream=False,
        outcome="completed",
        duration_ms=100,
        input_tokens=3100,
        output_tokens=12,
        total_tokens=3112,
    )
    n = min(100_000, count)
    started = time.perf_counter()
    for _ in range(n):
        scratch.append(record)
    queued = time.perf_counter() - started
    scratch.flush(60)
    written = time.perf_counter() - started
    scratch.close()
    rows.append(["append: caller's cost per record (µs)", f"{queued / n * 1e6:.1f}"])
    rows.append(["append: records written per second", f"{n / written:,.0f}"])

    log = UsageLog(ledger, max_bytes=MAX_BYTES)
    started = time.perf_counter()
    log.load_today()
    first_pass = time.perf_counter() - started
    rows.append(["in-process first pass: hourly digests + today's tokens (s)", f"{first_pass:.2f}"])
    cut = now - 7 * 86_400_000 + 12_345
    for label, fn in (
        ("summary, everything", lambda: log.summary(0, now + 1, None)),
        ("summary, 7 days from mid-hour, by day", lambda: log.summary(cut, now + 1, "day")),
        ("summary, one key, by hour", lambda: log.summary(0, now + 1, "hour", key="bob")),
        ("tail 10,000", lambda: log.tail(10_000)),
        ("tail 200 of one key", lambda: log.tail(200, key="carol")),
    ):
        stat, _ = _timed(fn, reps)
        rows.append([f"in-process {label} (ms)", stat.fmt(1)])

    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PROXY_API_KEY": KEY,
        "CODEX_HOME": str(tmp / "home"),
        "CODEX_BIN": str(tmp / "no-codex"),
        "PROXY_BACKEND": "offline",
        "PROXY_USAGE_LOG": str(ledger),
        "PROXY_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    app = Server([sys.executable, "-m", "app"], env, port=port, log=tmp / "app.log", ready_path="/healthz")
    http: dict[str, Stat] = {}
    with app.start(timeout=300):  # Server.__enter__ keeps the started process
        rows.append(["app start with the ledger (s)", f"{time.perf_counter() - started:.1f}"])
        with httpx.Client(base_url=app.base, timeout=300, headers={"Authorization": f"Bearer {KEY}"}) as client:
            for label, path, params in (
                ("GET /v1/usage", "/v1/usage", {}),
                ("GET /v1/usage?group=day&start=<7 d ago>", "/v1/usage", {"group": "day", "start": cut}),
                ("GET /v1/usage?key=bob&group=hour", "/v1/usage", {"key": "bob", "group": "hour"}),
                ("GET /v1/usage/raw?limit=200", "/v1/usage/raw", {"limit": 200}),
                ("GET /v1/usage/raw?limit=10000", "/v1/usage/raw", {"limit": 10000}),
            ):
                stat, response = _timed(lambda p=path, q=params: client.get(p, params=q).raise_for_status(), reps)
                body = response.json()  # type: ignore[attr-defined]
                what = body["totals"]["requests"] if "totals" in body else len(body["data"])
                rows.append([f"{label} (ms; {what:,} records)", stat.fmt(1)])
                http[label] = stat
    section = Section(
        id="usage",
        title="6. Usage aggregation on a 1,000,000-record ledger",
        text=(__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    section.tables.append(
        Table(title=f"{reps} repetitions of each query, median (min–max)", columns=["figure", "value"], rows=rows)
    )
    section.data = {"rows": rows, "records": count}
    return section
