"""Provider failures through the real codex binary → OpenAI errors with the right status (issue 4, parity.md §10).

Before the first byte a failure is a proper HTTP status with the error envelope; once SSE headers are out it
is exactly one `data: {"error":…}` event followed by `data: [DONE]`. The mapping of provider replies to codex's
`codexErrorInfo` is measured in docs/offline-model.md; this pins what clients see.
"""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from app.errors import LOGIN_HINT
from app.offline_model import Disconnect, Fail, StreamError, Text
from app.settings import default_codex_bin
from tests.api.chat_support import CHAT, SseStream, chat_body, error_of, wait_idle
from tests.api_harness import ApiServer, offline_env

pytestmark = pytest.mark.codex


# (reply, status, type, code, Retry-After expected)
TABLE = [
    pytest.param(
        Fail(400, "context_length_exceeded"),
        400,
        "invalid_request_error",
        "context_length_exceeded",
        False,
        id="context-window-400",
    ),
    pytest.param(
        StreamError("context_length_exceeded"),
        400,
        "invalid_request_error",
        "context_length_exceeded",
        False,
        id="context-window-stream",
    ),
    pytest.param(
        Fail(429, "usage_limit_reached"), 429, "rate_limit_error", "usage_limit_exceeded", True, id="usage-limit"
    ),
    pytest.param(
        Fail(429, "insufficient_quota"), 429, "rate_limit_error", "usage_limit_exceeded", True, id="insufficient-quota"
    ),
    pytest.param(
        Fail(429, "rate_limit_exceeded"), 429, "rate_limit_error", "rate_limit_exceeded", True, id="rate-limit-429"
    ),
    pytest.param(
        StreamError("rate_limit_exceeded"), 429, "rate_limit_error", "rate_limit_exceeded", True, id="rate-limit-stream"
    ),
    pytest.param(
        Fail(401, "invalid_api_key"), 503, "server_error", "codex_login_required", True, id="upstream-401-login"
    ),
    pytest.param(
        Fail(503, "server_is_overloaded"), 503, "server_error", "server_overloaded", True, id="overloaded-503"
    ),
    pytest.param(
        StreamError("server_is_overloaded"), 503, "server_error", "server_overloaded", True, id="overloaded-stream"
    ),
    pytest.param(Fail(404, "model_not_found"), 404, "invalid_request_error", "model_not_found", False, id="model-404"),
    pytest.param(Fail(500, "server_error"), 502, "server_error", "upstream_error", False, id="upstream-500"),
    pytest.param(Fail(502, "bad_gateway"), 502, "server_error", "upstream_error", False, id="upstream-502"),
    pytest.param(Fail(504, "gateway_timeout"), 504, "timeout_error", "upstream_timeout", False, id="upstream-504"),
    pytest.param(Disconnect(), 502, "server_error", "upstream_error", False, id="provider-disconnect"),
    pytest.param(StreamError("boom", after_text="partial "), 502, "server_error", "upstream_error", False, id="mid"),
]


@pytest.mark.parametrize(("reply", "status", "type_", "code", "retry_after"), TABLE)
def test_non_stream_failure_status(http, model, reply, status: int, type_: str, code: str, retry_after: bool) -> None:
    model.script(reply)
    response = http.post(CHAT, json=chat_body())
    assert response.status_code == status, response.text
    err = error_of(response)
    assert (err["type"], err["code"]) == (type_, code)
    assert ("retry-after" in response.headers) is retry_after
    if retry_after:
        assert int(response.headers["retry-after"]) > 0
    assert "{" not in err["message"] or code == "upstream_error", "no raw internal JSON in a mapped message"


def test_upstream_401_says_the_login_needs_renewing(http, model) -> None:
    model.script(Fail(401, "invalid_api_key", message="token expired"))
    response = http.post(CHAT, json=chat_body())
    err = error_of(response)
    assert err["message"] == LOGIN_HINT
    assert "codex login" in err["message"]


STREAM_TABLE = [
    pytest.param(Fail(400, "context_length_exceeded"), "context_length_exceeded", id="context-window"),
    pytest.param(Fail(429, "usage_limit_reached"), "usage_limit_exceeded", id="usage-limit"),
    pytest.param(Fail(401, "invalid_api_key"), "codex_login_required", id="upstream-401"),
    pytest.param(StreamError("server_is_overloaded"), "server_overloaded", id="overloaded"),
    pytest.param(Disconnect(after_text="half an ans"), "upstream_error", id="provider-disconnect"),
]


@pytest.mark.parametrize(("reply", "code"), STREAM_TABLE)
def test_stream_failure_is_one_error_event_then_done(http, model, reply, code: str) -> None:
    model.script(reply)
    with http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        sse = SseStream(response.read())
    assert response.status_code == 200, "headers were committed before codex reported the failure"
    assert sse.data[-1] == "[DONE]"
    events = sse.events
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1
    assert events[-1] == errors[0], "nothing but [DONE] after the error event"
    assert set(errors[0]) == {"error"}
    assert errors[0]["error"]["code"] == code
    assert not any(e.get("choices") and e["choices"][0]["finish_reason"] for e in events), "no finish chunk"


def test_stream_partial_text_then_error(http, model) -> None:
    model.script(StreamError("boom", after_text="partial answer"))
    with http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        sse = SseStream(response.read())
    assert sse.text == "partial answer"
    assert sse.data[-2:][1] == "[DONE]"
    assert "error" in sse.events[-1]


def test_failures_leave_nothing_in_flight(api, http, model) -> None:
    model.script(Fail(503, "server_is_overloaded"), StreamError("x"))
    assert http.post(CHAT, json=chat_body()).status_code == 503
    with http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        response.read()
    wait_idle(api, model)


def test_the_next_request_after_a_failure_succeeds(http, model) -> None:
    model.script(Fail(500, "server_error"), Text("recovered"))
    assert http.post(CHAT, json=chat_body()).status_code == 502
    response = http.post(CHAT, json=chat_body())
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "recovered"


# ---- willRetry: true is not terminal ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retrying_api(offline_model, tmp_path_factory):
    """The app with codex allowed one stream retry, so a provider disconnect gives `error{willRetry:true}`.

    The app pins the offline provider's retries to 0 on codex's command line; a CODEX_BIN wrapper appends one
    more `-c` (later overrides win) — no app setting exists for this, and none should.
    """
    workdir = tmp_path_factory.mktemp("chat-retry")
    wrapper = Path(workdir) / "codex-with-retry"
    wrapper.write_text(f'#!/bin/sh\nexec {default_codex_bin()} "$@" -c model_providers.offline.stream_max_retries=1\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = offline_env(offline_model, CODEX_BIN=str(wrapper), PROXY_SSE_KEEPALIVE_MS="0")
    server = ApiServer(workdir, env).start()
    try:
        yield server
    finally:
        server.stop()


def test_will_retry_error_is_not_terminal_non_stream(retrying_api, model) -> None:
    model.script(Disconnect(), Text("second attempt"))
    with httpx.Client(base_url=retrying_api.base_url, headers=retrying_api.headers(), timeout=30) as client:
        response = client.post(CHAT, json=chat_body())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "second attempt"
    assert response.json()["choices"][0]["finish_reason"] == "stop"


def test_will_retry_error_is_not_terminal_stream(retrying_api, model) -> None:
    model.script(Disconnect(), Text("second attempt"))
    with (
        httpx.Client(base_url=retrying_api.base_url, headers=retrying_api.headers(), timeout=30) as client,
        client.stream("POST", CHAT, json=chat_body(stream=True)) as response,
    ):
        sse = SseStream(response.read())
    assert not [e for e in sse.events if "error" in e], sse.raw
    assert sse.text == "second attempt"
    assert sse.events[-1]["choices"][0]["finish_reason"] == "stop"
    assert sse.data[-1] == "[DONE]"
