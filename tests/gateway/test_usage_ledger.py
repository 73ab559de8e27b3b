"""The usage ledger at scale, on the real app: a million records of history plus 200 requests at once.

The app runs with a CODEX_BIN that does not exist, so every generation request is answered at once with 503
`worker_not_ready` and recorded as `rejected` — 200 concurrent requests that exercise the HTTP stack and the
ledger's writer without 200 codex turns. (Timings are for `python -m bench usage`, not asserted here.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from app.usage import UsageRecord
from tests.api_harness import ApiServer, ThreadedOfflineModel, offline_env

pytestmark = pytest.mark.codex
HISTORY = 1_000_000
CONCURRENT = 200
KEYS = ("default", "alice", "bob", "carol")
MODELS = ("codev-5", "codev-5-high", "codev-5.2-L")


RECORD = (
    b'{"ts":%d,"request_id":"req_hist_%08d","route":"/v1/chat/completions","model":"%s","key":"%s",'
    b'"stream":%s,"outcome":"completed","duration_ms":100,"input_tokens":%d,"cached_input_tokens":0,'
    b'"output_tokens":10,"reasoning_tokens":0,"total_tokens":%d}\n'
)


def write_history(path: Path, now_ms: int) -> tuple[int, dict[str, int]]:
    """HISTORY records over the last 30 days (oldest first), in the ledger's own line format (a template, much
    faster than encoding a million structs); returns the total tokens and the requests per key."""
    span = 30 * 24 * 3600 * 1000
    keys = [k.encode() for k in KEYS]
    models = [m.encode() for m in MODELS]
    total = 0
    with path.open("wb") as f:
        for chunk in range(0, HISTORY, 50_000):
            lines = []
            for i in range(chunk, min(HISTORY, chunk + 50_000)):
                tokens = 100 + (i * 7919) % 4900
                total += tokens
                lines.append(
                    RECORD
                    % (
                        now_ms - span + i * (span // HISTORY),
                        i,
                        models[i % len(models)],
                        keys[i % len(keys)],
                        b"true" if i % 2 == 0 else b"false",
                        tokens - 10,
                        tokens,
                    )
                )
            f.write(b"".join(lines))
    per_key = {k: len(range(i, HISTORY, len(KEYS))) for i, k in enumerate(KEYS)}
    return total, per_key


@pytest.fixture(scope="module")
def ledger_app(offline_model: ThreadedOfflineModel, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("ledger")
    ledger = workdir / "usage.ndjson"
    total, per_key = write_history(ledger, int(time.time() * 1000))
    env = offline_env(offline_model, CODEX_BIN=str(workdir / "missing-codex"), PROXY_USAGE_LOG=str(ledger))
    server = ApiServer(workdir, env).start(ready_timeout=120, expect_ready=False)
    try:
        yield server, ledger, total, per_key
    finally:
        server.stop()


async def _burst(server: ApiServer) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=server.base_url, headers=server.headers(), limits=limits, timeout=60) as c:
        body = {"model": "codev-5", "messages": [{"role": "user", "content": "anyone?"}]}
        return await asyncio.gather(*(c.post("/v1/chat/completions", json=body) for _ in range(CONCURRENT)))


def test_concurrent_requests_leave_intact_records_next_to_a_million_old_ones(ledger_app) -> None:
    server, ledger, total, per_key = ledger_app
    responses = asyncio.run(_burst(server))
    assert {r.status_code for r in responses} == {503}
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == CONCURRENT

    raw = httpx.get(server.base_url + "/v1/usage/raw", params={"limit": CONCURRENT}, headers=server.headers()).json()
    assert {rec["request_id"] for rec in raw["data"]} == ids
    assert {rec["outcome"] for rec in raw["data"]} == {"rejected"}
    # Every line of every file decodes on its own: nothing torn or interleaved.
    files = sorted(ledger.parent.glob("usage.ndjson*"))
    lines = [line for path in files for line in path.read_bytes().splitlines()]
    assert len(lines) == HISTORY + CONCURRENT
    decoder = msgspec.json.Decoder(UsageRecord)
    assert sum(1 for line in lines if decoder.decode(line).request_id in ids) == CONCURRENT

    summary = httpx.get(server.base_url + "/v1/usage", headers=server.headers(), timeout=120).json()
    assert summary["totals"]["requests"] == HISTORY + CONCURRENT
    assert summary["totals"]["total_tokens"] == total
    expected = {k: n + (CONCURRENT if k == "default" else 0) for k, n in per_key.items()}
    assert {k: v["requests"] for k, v in summary["by_key"].items()} == expected
    days = httpx.get(server.base_url + "/v1/usage", params={"group": "day"}, headers=server.headers()).json()
    assert sum(b["totals"]["total_tokens"] for b in days["buckets"]) == total
    assert 30 <= len(days["buckets"]) <= 31
