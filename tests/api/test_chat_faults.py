"""Worker faults the real codex binary cannot produce on cue, via the fault double (style.md rule 37).

Per-request faults are selected with `fault:<mode>` in the user text; the double logs every message it
receives to FAULT_LOG, which shows whether `turn/interrupt` arrived.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.api.chat_support import CHAT, SseStream, chat_body, error_of, wait_idle
from tests.api_harness import ApiServer, fault_codex_bin, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def fault_api(offline_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chat-faults")
    log = workdir / "fault.log"
    env = offline_env(
        offline_model,
        CODEX_BIN=fault_codex_bin(workdir / "bin", "normal", FAULT_LOG=str(log)),
        PROXY_IDLE_TIMEOUT_MS="500",
        PROXY_STREAM_IDLE_TIMEOUT_MS="500",
        WORKER_OVERLOAD_RETRIES="0",
        WORKER_BACKOFF_INITIAL_MS="50",
        WORKER_REQUEST_TIMEOUT_MS="1000",
        PROXY_SSE_KEEPALIVE_MS="0",
    )
    server = ApiServer(workdir, env).start()
    server.fault_log = log  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(fault_api):
    wait_for(lambda: httpx.get(fault_api.base_url + "/readyz").status_code == 200, timeout=20, what="a ready worker")
    with httpx.Client(base_url=fault_api.base_url, headers=fault_api.headers(), timeout=30) as client:
        yield client
    wait_idle(fault_api)


def received(log: Path, method: str) -> list[dict]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in entries if e["message"].get("method") == method]


def test_crash_mid_stream_is_one_error_event_then_done(http) -> None:
    started = time.monotonic()
    with http.stream("POST", CHAT, json=chat_body("fault:crash tell me more", stream=True)) as response:
        sse = SseStream(response.read())
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert sse.text.startswith("echo:"), "the delta sent before the crash was relayed"
    errors = [e for e in sse.events if "error" in e]
    assert len(errors) == 1
    assert errors[0]["error"]["code"] == "worker_exited"
    assert sse.events[-1] == errors[0]
    assert sse.data[-1] == "[DONE]"
    assert elapsed < 5, f"a crash must end the stream promptly, took {elapsed:.2f}s"


def test_crash_non_stream_is_502(http) -> None:
    response = http.post(CHAT, json=chat_body("fault:crash again"))
    assert response.status_code == 502
    err = error_of(response)
    assert (err["type"], err["code"]) == ("server_error", "worker_exited")


def test_overloaded_worker_is_503_with_retry_after(http) -> None:
    response = http.post(CHAT, json=chat_body("fault:overloaded please"))
    assert response.status_code == 503
    err = error_of(response)
    assert err["code"] == "server_overloaded"
    assert int(response.headers["retry-after"]) > 0


def test_overloaded_worker_stream_fails_before_headers(http) -> None:
    response = http.post(CHAT, json=chat_body("fault:overloaded please", stream=True))
    assert response.status_code == 503, "turn/start is answered before any SSE byte, so a real status is possible"
    assert error_of(response)["code"] == "server_overloaded"


def test_hung_turn_is_504_and_the_worker_is_replaced(http, fault_api) -> None:
    restarts = fault_api.health()["backend"]["restarts_total"]
    started = time.monotonic()
    response = http.post(CHAT, json=chat_body("fault:hang forever"))
    assert response.status_code == 504
    assert error_of(response)["code"] == "idle_timeout"
    assert time.monotonic() - started < 3
    # The hung worker is found by the liveness probe (no answer within WORKER_REQUEST_TIMEOUT_MS) and replaced.
    wait_for(
        lambda: fault_api.health()["backend"]["restarts_total"] > restarts and fault_api.health()["ok"],
        timeout=10,
        what="the hung worker to be replaced",
    )


def test_disconnect_sends_turn_interrupt_within_a_second(http, fault_api) -> None:
    log: Path = fault_api.fault_log
    before = len(received(log, "turn/interrupt"))
    with http.stream("POST", CHAT, json=chat_body("fault:slow long answer", stream=True)) as response:
        lines = response.iter_lines()
        next(line for line in lines if '"content":"w' in line)
        dropped = time.time()  # wall clock: FAULT_LOG stamps are time.time() in the double's process
    wait_for(lambda: len(received(log, "turn/interrupt")) > before, timeout=3, what="turn/interrupt at the worker")
    interrupt = received(log, "turn/interrupt")[-1]
    assert interrupt["t"] - dropped < 1.0, f"turn/interrupt {interrupt['t'] - dropped:.2f}s after the disconnect"
