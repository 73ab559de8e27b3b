"""HTTP surface of chat: legacy routes, HEAD/OPTIONS, CORS in the app, bad input → envelope, body limit.

The default-settings checks use the session app (`PROXY_CORS_ALLOWED_ORIGINS=*`); the allowlist, the small
body limit and `PROXY_IGNORE_CLIENT_SYSTEM_PROMPT=false` share one private app (`configured_api`).
"""

from __future__ import annotations

import httpx
import pytest

from app.offline_model import Text
from tests.api.chat_support import CHAT, MODEL, SseStream, chat_body, error_of
from tests.api_harness import ApiServer, offline_env

pytestmark = pytest.mark.codex

ALLOWED = "https://app.example.com"


@pytest.fixture(scope="module")
def configured_api(offline_model, tmp_path_factory):
    env = offline_env(
        offline_model,
        PROXY_CORS_ALLOWED_ORIGINS=f"{ALLOWED},http://localhost:5173",
        PROXY_MAX_BODY_BYTES="4096",
        PROXY_IGNORE_CLIENT_SYSTEM_PROMPT="false",
    )
    server = ApiServer(tmp_path_factory.mktemp("chat-configured"), env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chttp(configured_api):
    with httpx.Client(base_url=configured_api.base_url, headers=configured_api.headers(), timeout=30) as client:
        yield client


# ---- legacy and method routes ------------------------------------------------------------------------------


def test_completions_non_stream_shape(http, model) -> None:
    model.script(Text("legacy"))
    response = http.post("/v1/completions", json={"model": MODEL, "prompt": "p"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["model"] == MODEL
    assert body["choices"] == [{"index": 0, "text": "legacy", "finish_reason": "stop", "logprobs": None}]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_completions_stream_shape(http, model) -> None:
    model.script(Text("x y", chunks=["x", " y"]))
    with http.stream("POST", "/v1/completions", json={"model": MODEL, "prompt": "p", "stream": True}) as response:
        sse = SseStream(response.read())
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse.events
    assert sse.data[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in events)
    assert [e["choices"][0]["text"] for e in events] == ["x", " y", ""]
    assert [e["choices"][0]["finish_reason"] for e in events] == [None, None, "stop"]
    assert len({(e["id"], e["created"]) for e in events}) == 1


def test_head_chat_completions(http) -> None:
    response = http.head(CHAT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == b""


def test_head_chat_completions_requires_auth(api) -> None:
    assert httpx.head(api.base_url + CHAT).status_code == 401


def test_options_is_204(api) -> None:
    response = httpx.options(api.base_url + CHAT)
    assert response.status_code == 204
    assert response.content == b""


def test_get_chat_completions_is_405_envelope(http) -> None:
    response = http.get(CHAT)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# ---- CORS ----------------------------------------------------------------------------------------------------


def test_wildcard_origin_without_credentials(http) -> None:
    response = http.post(CHAT, json={}, headers={"Origin": "https://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_allowed_origin_is_reflected_with_vary(chttp) -> None:
    response = chttp.head(CHAT, headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]
    assert response.headers["access-control-allow-credentials"] == "true"


def test_other_origin_gets_no_allow_origin(chttp) -> None:
    response = chttp.head(CHAT, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert "Origin" in response.headers["vary"]


def test_preflight_echoes_requested_headers(configured_api) -> None:
    response = httpx.options(
        configured_api.base_url + CHAT,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
    assert "POST" in response.headers["access-control-allow-methods"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        pytest.param("POST", CHAT, {}, 401, id="401-no-key"),
        pytest.param("POST", CHAT, {"Authorization": "Bearer x"}, 401, id="401-bad-key"),
        pytest.param("GET", "/v1/nope", {}, 404, id="404-route"),
        pytest.param("GET", CHAT, {}, 405, id="405-method"),
    ],
)
def test_cors_headers_on_errors(configured_api, method, path, headers, status) -> None:
    response = httpx.request(method, configured_api.base_url + path, headers={"Origin": ALLOWED, **headers})
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]
    assert response.headers["x-request-id"].startswith("req_")
    error_of(response)


def test_cors_headers_on_validation_error(chttp) -> None:
    response = chttp.post(CHAT, json={"model": MODEL, "messages": []}, headers={"Origin": ALLOWED})
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_cors_headers_on_stream(chttp) -> None:
    with chttp.stream("POST", CHAT, json=chat_body(stream=True), headers={"Origin": ALLOWED}) as response:
        response.read()
    assert response.headers["access-control-allow-origin"] == ALLOWED


# ---- system prompt passed through when allowed -------------------------------------------------------------


def test_system_prompt_becomes_developer_instructions_when_allowed(chttp, offline_model) -> None:
    messages = [
        {"role": "system", "content": "SYSTEM-MARKER-42 answer in French"},
        {"role": "developer", "content": "DEV-MARKER-43"},
        {"role": "user", "content": "hi"},
    ]
    assert chttp.post(CHAT, json={"model": MODEL, "messages": messages}).status_code == 200
    recorded = offline_model.requests[-1]
    developer = [i.text for i in recorded.input if i.type == "message" and i.role == "developer"]
    assert any("SYSTEM-MARKER-42 answer in French" in t and "DEV-MARKER-43" in t for t in developer), developer
    users = [i.text for i in recorded.input if i.type == "message" and i.role == "user"]
    assert not any("SYSTEM-MARKER-42" in t for t in users), "not flattened into the user text"


# ---- bad input ---------------------------------------------------------------------------------------------

BAD = [
    pytest.param(b"{", "invalid_json", None, id="invalid-json"),
    pytest.param(b"", "invalid_json", None, id="empty-body"),
    pytest.param(b'{"model": "codev-5", "messages": {"role": "user"}}', "invalid_type", "messages", id="wrong-type"),
    pytest.param(b'{"model": "codev-5", "messages": []}', "invalid_request_error", "messages", id="empty-messages"),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "wizard", "content": "x"}]}',
        "invalid_value",
        "messages[0].role",
        id="unknown-role",
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
        "invalid_value",
        "tools[0].function",
        id="tool-without-function",
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "user", "content": "x"}], "logprobs": true}',
        "invalid_value",
        "logprobs",
        id="logprobs",
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "user", "content": "x"}], '
        b'"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 3}}}}',
        "invalid_value",
        "response_format.json_schema.schema",
        id="response-format-bad-schema",
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "user", "content": "x"}, '
        b'{"role": "tool", "tool_call_id": "nope", "content": "r"}]}',
        "invalid_value",
        "messages[1].tool_call_id",
        id="tool-result-without-call",
    ),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}]}', "model_required", "model", id="no-model"),
]


@pytest.mark.parametrize(("raw", "code", "param"), BAD)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_bad_input_is_400_envelope(http, raw: bytes, code: str, param: str | None, stream: bool) -> None:
    if stream and raw.startswith(b"{") and raw.endswith(b"}"):
        raw = raw[:-1] + b', "stream": true}'
    response = http.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    err = error_of(response)
    assert err["type"] == "invalid_request_error"
    assert (err["code"], err["param"]) == (code, param)


def test_body_over_the_limit_is_413_envelope(chttp) -> None:
    response = chttp.post(CHAT, json=chat_body("x" * 8192))
    assert response.status_code == 413
    err = error_of(response)
    assert (err["type"], err["code"]) == ("invalid_request_error", "request_entity_too_large")


def test_default_limit_is_16_mib(http) -> None:
    response = http.post(CHAT, json=chat_body("x" * (16 * 1024 * 1024 + 1)))
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"
