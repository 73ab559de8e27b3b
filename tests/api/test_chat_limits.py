"""Time limits and concurrency limits, each on a private app with short settings (issue 4).

Timeouts: `PROXY_IDLE_TIMEOUT_MS` (non-stream), `PROXY_STREAM_IDLE_TIMEOUT_MS` (stream) and `PROXY_TIMEOUT_MS`
(overall) each answer 504 / one error event and interrupt the turn: the offline model sees its request
cancelled and the in-flight gauge returns to 0. Concurrency: `PROXY_SSE_MAX_CONCURRENCY` → 429
`concurrency_exceeded`; a full worker (`WORKER_MAX_CONCURRENCY`) → 429 `worker_busy` with `Retry-After`.
"""

from __future__ import annotations

import time

import httpx
import pytest

from app.offline_model import Hang, Text
from tests.api.chat_support import CHAT, SseStream, chat_body, error_of, wait_idle
from tests.api_harness import ApiServer, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.codex


def private_app(offline_model, tmp_path_factory, name: str, **env: str):
    server = ApiServer(tmp_path_factory.mktemp(name), offline_env(offline_model, **env)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def timeouts_api(offline_model, tmp_path_factory):
    yield from private_app(
        offline_model,
        tmp_path_factory,
        "chat-timeouts",
        PROXY_TIMEOUT_MS="1500",
        PROXY_IDLE_TIMEOUT_MS="400",
        PROXY_STREAM_IDLE_TIMEOUT_MS="400",
        PROXY_SSE_KEEPALIVE_MS="100",
    )


@pytest.fixture(scope="module")
def busy_api(offline_model, tmp_path_factory):
    yield from private_app(
        offline_model,
        tmp_path_factory,
        "chat-busy",
        PROXY_SSE_MAX_CONCURRENCY="1",
        WORKER_MAX_CONCURRENCY="1",
        WORKER_QUEUE_TIMEOUT_MS="200",
    )


def client(server: ApiServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30)


def cancelled_and_idle(server: ApiServer, model, before: int) -> None:
    wait_for(lambda: model.cancelled > before, timeout=5, what="the model's request cancelled by the interrupt")
    assert model.requests[-1].outcome == "cancelled"
    wait_idle(server, model)


def ticks() -> Text:
    """12 deltas 0.2 s apart: never idle for 400 ms, but 2.2 s in total (explicit chunks: the default split
    caps at 8 pieces)."""
    return Text("tick " * 12, chunks=["tick "] * 12, interval_s=0.2)


# ---- timeouts ----------------------------------------------------------------------------------------------


def test_idle_timeout_non_stream_is_504(timeouts_api, model) -> None:
    before = model.cancelled
    model.script(Hang())
    started = time.monotonic()
    with client(timeouts_api) as http:
        response = http.post(CHAT, json=chat_body())
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    err = error_of(response)
    assert (err["type"], err["code"]) == ("timeout_error", "idle_timeout")
    assert elapsed < 1.4, f"400 ms idle timeout answered after {elapsed:.2f}s"
    cancelled_and_idle(timeouts_api, model, before)


def test_stream_idle_timeout_is_an_error_event(timeouts_api, model) -> None:
    before = model.cancelled
    model.script(Hang())
    with client(timeouts_api) as http, http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        sse = SseStream(response.read())
    assert response.status_code == 200
    assert sse.comments, "keepalives (100 ms) are sent while waiting, and do not reset the idle clock"
    assert sse.data[-1] == "[DONE]"
    assert sse.events[-1]["error"]["code"] == "idle_timeout"
    assert sse.events[-1]["error"]["type"] == "timeout_error"
    cancelled_and_idle(timeouts_api, model, before)


def test_idle_timeout_resets_on_every_delta(timeouts_api, model) -> None:
    model.script(Text("a b c d e", chunks=["a", " b", " c", " d", " e"], interval_s=0.25))
    with client(timeouts_api) as http:
        response = http.post(CHAT, json=chat_body())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "a b c d e"


def test_overall_timeout_non_stream_is_504(timeouts_api, model) -> None:
    before = model.cancelled
    model.script(ticks())  # never idle, but 2.2 s in total
    started = time.monotonic()
    with client(timeouts_api) as http:
        response = http.post(CHAT, json=chat_body())
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert error_of(response)["code"] == "request_timeout"
    assert 1.4 < elapsed < 2.2
    cancelled_and_idle(timeouts_api, model, before)


def test_overall_timeout_stream_is_an_error_event_after_content(timeouts_api, model) -> None:
    before = model.cancelled
    model.script(ticks())
    with client(timeouts_api) as http, http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        sse = SseStream(response.read())
    assert sse.text.startswith("tick")
    assert sse.events[-1]["error"]["code"] == "request_timeout"
    assert sse.data[-1] == "[DONE]"
    assert not any(e.get("choices") and e["choices"][0]["finish_reason"] for e in sse.events)
    cancelled_and_idle(timeouts_api, model, before)


# ---- concurrency ---------------------------------------------------------------------------------------------


def test_sse_concurrency_limit_is_429(busy_api, offline_model) -> None:
    with client(busy_api) as http:
        with http.stream("POST", CHAT, json=chat_body("[[offline hang]] one", stream=True)) as held:
            lines = held.iter_lines()
            next(lines)
            second = http.post(CHAT, json=chat_body("two", stream=True))
        assert second.status_code == 429
        err = error_of(second)
        assert (err["type"], err["code"]) == ("rate_limit_error", "concurrency_exceeded")
        wait_idle(busy_api, offline_model)
        with http.stream("POST", CHAT, json=chat_body("three", stream=True)) as again:
            raw = again.read()
            assert SseStream(raw).text == "echo: three", (again.status_code, raw)


def test_full_worker_is_429_worker_busy_with_retry_after(busy_api, offline_model) -> None:
    with client(busy_api) as http:
        with http.stream("POST", CHAT, json=chat_body("[[offline hang]] hold", stream=True)) as held:
            lines = held.iter_lines()
            next(lines)
            started = time.monotonic()
            busy = http.post(CHAT, json=chat_body("queued"))
            waited = time.monotonic() - started
        assert busy.status_code == 429
        err = error_of(busy)
        assert (err["type"], err["code"]) == ("rate_limit_error", "worker_busy")
        assert int(busy.headers["retry-after"]) >= 1
        assert 0.2 <= waited < 2.0, f"WORKER_QUEUE_TIMEOUT_MS=200 but answered after {waited:.2f}s"
        wait_idle(busy_api, offline_model)
        assert http.post(CHAT, json=chat_body("free")).json()["choices"][0]["message"]["content"] == "echo: free"
