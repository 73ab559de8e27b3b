"""Past the process's connection budget a client gets a clear 503, never a hang (issue 15, item 3).

The real app (`python -m app`) on the fault double, whose `fault:silent` turns hold a stream open without a
thread each. `PROXY_MAX_CONNECTIONS=40` leaves an overload limit of 30 requests in flight (a quarter is kept for
probes); with no stream cap, the 31st request gets 503 `server_overloaded` with `Retry-After` and its connection
closed, while /healthz is still answered and the app serves again once the streams end.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.__main__ import granian_options
from app.settings import Settings
from tests.api_harness import API_KEY, ApiServer, fault_codex_bin

pytestmark = pytest.mark.faults

SILENT = json.dumps({"model": "codev-5", "stream": True, "messages": [{"role": "user", "content": "fault:silent"}]})


def _request(body: str) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


async def _head(port: int, raw: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    status = int((await asyncio.wait_for(reader.readline(), 20)).split()[1])
    headers = {}
    while (line := await asyncio.wait_for(reader.readline(), 20)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return reader, writer, status, headers


def test_the_connection_cap_follows_the_stream_cap() -> None:
    """Granian's backpressure is never below what the app itself may hold open (it was 1,024 whatever the caps)."""
    for streams, workers, per_worker in ((64, 2, 8), (5000, 2, 8), (0, 4, 128)):
        s = Settings(sse_max_concurrency=streams, worker_count=workers, worker_max_concurrency=per_worker)
        assert granian_options(s)["backpressure"] == s.connection_cap >= max(1024, streams + workers * per_worker)
        assert s.overload_limit >= streams + workers * per_worker
    assert Settings(max_connections=300).connection_cap == 300


async def test_past_the_overload_limit_a_request_gets_503_not_a_hang(tmp_path: Path) -> None:
    env = {
        "CODEX_BIN": fault_codex_bin(tmp_path / "bin", "normal"),
        "PROXY_BACKEND": "offline",
        "PROXY_MAX_CONNECTIONS": "40",
        "PROXY_SSE_MAX_CONCURRENCY": "0",
        "WORKER_MAX_CONCURRENCY": "100",
        "PROXY_KEY_REQUESTS_PER_MINUTE": "0",
        "PROXY_LOG_LEVEL": "WARNING",
    }
    server = await asyncio.to_thread(ApiServer(tmp_path, env).start)
    held: list[asyncio.StreamWriter] = []
    try:
        opened = await asyncio.gather(*(_head(server.port, _request(SILENT)) for _ in range(30)))
        held = [writer for _, writer, _, _ in opened]
        assert [status for _, _, status, _ in opened] == [200] * 30

        reader, writer, status, headers = await _head(server.port, _request(SILENT))
        body = json.loads(await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 20))
        assert (status, body["error"]["code"], headers["retry-after"]) == (503, "server_overloaded", "1")
        assert headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 20) == b""  # the server closed the refused connection
        writer.close()

        _, probe, status, _ = await _head(server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        probe.close()
        assert status == 200

        for w in held:
            w.close()
        held = []

        async def served() -> int:
            for _ in range(200):
                _, w, status, _ = await _head(server.port, _request(SILENT.replace("fault:silent", "hello")))
                w.close()
                if status == 200:
                    return status
                await asyncio.sleep(0.05)  # the closed streams are still being released
            return status

        assert await served() == 200
    finally:
        for w in held:
            w.close()
        await asyncio.to_thread(server.stop)
