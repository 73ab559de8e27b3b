"""Host header allowlist (app.api.hostguard) against DNS rebinding (issue 13)."""

from __future__ import annotations

import pytest

from app.api.hostguard import HostGuard, host_name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:11435", "localhost"),
        ("LOCALHOST", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:11435", "[::1]"),
        ("[::1]", "[::1]"),
        ("api.example.test.", "api.example.test"),
        ("api.example.test:443", "api.example.test"),
        ("rebind.evil.example", "rebind.evil.example"),
        ("localhost:x", "localhost:x"),
    ],
)
def test_host_name(header, name):
    assert host_name(header) == name


async def _status(guard: HostGuard, host: bytes | None) -> int:
    sent: list[dict] = []
    headers = [(b"host", host)] if host is not None else []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await guard({"type": "http", "method": "GET", "path": "/healthz", "headers": headers}, receive, send)
    return sent[0]["status"]


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


@pytest.mark.parametrize(
    ("host", "allowed", "status"),
    [
        (b"localhost:11435", (), 200),
        (b"127.0.0.1:11435", (), 200),
        (b"[::1]:11435", (), 200),
        (None, (), 200),
        (b"rebind.evil.example", (), 400),
        (b"rebind.evil.example:11435", (), 400),
        (b"localhost.evil.example", (), 400),
        (b"api.example.test", ("api.example.test",), 200),
        (b"API.example.test:443", ("api.example.test",), 200),
        (b"other.example.test", ("api.example.test",), 400),
        (b"anything", ("*",), 200),
    ],
)
async def test_only_named_hosts_are_answered(host, allowed, status):
    assert await _status(HostGuard(_ok, allowed), host) == status
