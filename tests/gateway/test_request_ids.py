"""A client's sane X-Request-Id is the request id everywhere (response, access log, usage record); an insane one
is replaced by a generated id."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_for
from tests.gateway.conftest import Gateway, chat_body

pytestmark = pytest.mark.codex
CHAT = "/v1/chat/completions"


def access_lines(gateway: Gateway, request_id: str) -> list[str]:
    return [line for line in gateway.log().splitlines() if "app.access" in line and f"id={request_id} " in line]


@pytest.mark.parametrize(
    ("kind", "call"),
    [
        ("success", ("POST", CHAT, chat_body("keep my id"))),
        ("error", ("POST", CHAT, chat_body(model="no-such-model"))),
        ("sse", ("POST", CHAT, chat_body("stream my id", stream=True))),
        ("unauthenticated", ("GET", "/v1/usage", None)),
    ],
    ids=["success", "error", "sse", "unauthenticated"],
)
def test_a_sane_client_id_is_echoed(gateway: Gateway, kind: str, call: tuple) -> None:
    method, path, body = call
    rid = f"req-abc-123.{kind}:x/y"
    headers = {"X-Request-Id": rid} if kind == "unauthenticated" else gateway.headers("carol", **{"X-Request-Id": rid})
    with httpx.stream(method, gateway.base_url + path, headers=headers, json=body, timeout=30) as r:
        r.read()
    assert r.headers["x-request-id"] == rid
    assert r.status_code == {"success": 200, "error": 404, "sse": 200, "unauthenticated": 401}[kind]
    if kind == "sse":
        assert r.headers["content-type"].startswith("text/event-stream")
    assert wait_for(lambda: access_lines(gateway, rid), what="the access line with the client's id")


@pytest.mark.parametrize(
    "value",
    [b"has space", b"x" * 129, b"caf\xe9", b"", b"tab\there"],
    ids=["space", "too-long", "non-ascii", "empty", "tab"],
)
def test_an_insane_client_id_is_replaced(gateway: Gateway, value: bytes) -> None:
    with gateway.client("carol") as carol:
        r = carol.post(CHAT, json=chat_body("replace it"), headers={"X-Request-Id": value})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    assert rid.startswith("req_") and rid.encode() != value


def test_the_access_line_and_the_usage_record_carry_the_clients_id(gateway: Gateway) -> None:
    rid = "client-trace-7f3a"
    with gateway.client("carol") as carol:
        r = carol.post(CHAT, json=chat_body("trace"), headers={"X-Request-Id": rid, "User-Agent": "trace-agent/1"})
        assert r.status_code == 200
        records = carol.get("/v1/usage/raw", params={"limit": 20}).json()["data"]
    assert [rec["key"] for rec in records if rec["request_id"] == rid] == ["carol"]
    (line,) = wait_for(lambda: access_lines(gateway, rid), what="the access line")
    assert " 200 " in line and "user=carol" in line and "outcome=completed" in line and "model=codev-5" in line
    assert f"tokens={r.json()['usage']['total_tokens']}" in line
    assert "trace-agent/1" in line
