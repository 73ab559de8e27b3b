"""An operator of the older implementation points their environment file at this app (issue 12).

One real app (`python -m app` under Granian, real codex, the offline model) started with old and new variables
side by side; each test checks that one of them is in force for real.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import httpx
import pytest

from app.offline_model import Text, Usage
from tests.api.chat_support import CHAT, chat_body, wait_idle
from tests.api_harness import API_KEY, ApiServer, offline_env
from tests.conftest import wait_for
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.codex
METRICS_TOKEN = "metrics-" + "m" * 24
PROMPT = "zebra-quartz-prompt-7781"


class Old(ApiServer):
    ledger: Path
    switch: Path
    receiver: OtlpReceiver


@pytest.fixture(scope="module")
def receiver():
    r = OtlpReceiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def old(offline_model, tmp_path_factory, receiver):
    work = tmp_path_factory.mktemp("migrated")
    env = offline_env(
        offline_model,
        TOKEN_LOG_PATH=str(work / "tokens.ndjson"),
        PROXY_SANDBOX_MODE="workspace-write",
        PROXY_APPROVAL_POLICY="on-request",
        PROXY_KILL_ON_DISCONNECT="false",
        PROXY_MAINTENANCE_FILE=str(work / "maintenance"),
        PROXY_MAINTENANCE_RETRY_AFTER="45",
        PROXY_METRICS_ALLOW_LOOPBACK="false",
        PROXY_METRICS_TOKEN=METRICS_TOKEN,
        PROXY_ENABLE_OTEL="true",
        PROXY_OTEL_EXPORTER_URL=receiver.url,
        PROXY_OTEL_SERVICE_NAME="old-env-proxy",
        OTEL_BSP_SCHEDULE_DELAY="100",  # read by the OpenTelemetry SDK itself: export batches every 0.1 s
        PROXY_TOOL_BLOCK_DEDUP="true",
        PROXY_TIMEOUT_MSS="1",
        PROXY_SSE_KEEPALIVE_MS="300",
    )
    server = ApiServer(work, env)
    server.start()
    try:
        server.ledger = work / "tokens.ndjson"  # type: ignore[attr-defined]
        server.switch = work / "maintenance"  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


def chat(server: ApiServer, text: str, **extra) -> httpx.Response:
    return httpx.post(server.base_url + CHAT, headers=server.headers(), json=chat_body(text, **extra), timeout=30)


def ledger(server) -> list[dict]:
    path: Path = server.ledger
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_each_old_variable_is_warned_about_exactly_once_in_the_log(old):
    log = old.log()
    assert len(re.findall(r"TOKEN_LOG_PATH is the older name of PROXY_USAGE_LOG", log)) == 1
    assert len(re.findall(r"PROXY_TOOL_BLOCK_DEDUP is not used by this app", log)) == 1
    assert len(re.findall(r"unknown variables.*: PROXY_TIMEOUT_MSS$", log, re.MULTILINE)) == 1


def test_token_log_path_is_where_the_ledger_lands(old):
    r = chat(old, "ledger please")
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    records = wait_for(
        lambda: [rec for rec in ledger(old) if rec["request_id"] == request_id], timeout=10, what="the usage record"
    )
    assert len(records) == 1
    assert records[0]["outcome"] == "completed"
    assert records[0]["output_tokens"] == r.json()["usage"]["completion_tokens"]


def test_sandbox_mode_and_approval_policy_reach_codex(old, model):
    assert chat(old, "permissions?").status_code == 200
    developer = "\n".join(i.text for i in model.requests[-1].input if i.role == "developer")
    assert "`sandbox_mode` is `workspace-write`" in developer
    assert "Approval policy is currently never" not in developer
    assert "How to request escalation" in developer  # on-request: codex tells the model it may ask


def test_the_plain_model_guarantee_holds_under_workspace_write(old, model):
    assert chat(old, "tools?").status_code == 200
    assert set(model.requests[-1].tools) <= {"request_user_input"}


def test_defaults_stay_read_only_and_never(api, model):
    assert chat(api, "defaults?").status_code == 200
    developer = "\n".join(i.text for i in model.requests[-1].input if i.role == "developer")
    assert "`sandbox_mode` is `read-only`" in developer
    assert "Approval policy is currently never" in developer


def test_kill_on_disconnect_false_lets_the_turn_finish_and_records_its_usage(old, model):
    model.script(Text(" ".join(["word"] * 30), interval_s=0.05, usage=Usage(input_tokens=11, output_tokens=30)))
    with (
        httpx.Client(base_url=old.base_url, headers=old.headers(), timeout=30) as client,
        client.stream("POST", CHAT, json=chat_body("keep going", stream=True)) as response,
    ):
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if '"content":"' in line and '"role"' not in line:
                break  # the model is mid-answer: drop the connection
    wait_for(lambda: model.requests[-1].outcome != "pending", timeout=15, what="the model's response to end")
    assert model.requests[-1].outcome == "completed"  # not interrupted by the disconnect
    records = wait_for(
        lambda: [rec for rec in ledger(old) if rec["request_id"] == request_id], timeout=10, what="the usage record"
    )
    assert (records[0]["outcome"], records[0]["output_tokens"]) == ("cancelled", 30)
    wait_idle(old, model)


def test_metrics_allow_loopback_false_needs_the_token_on_loopback(old):
    assert httpx.get(old.base_url + "/metrics").status_code == 403
    r = httpx.get(old.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    assert "codex_maintenance_mode 0" in r.text


def test_maintenance_drains_the_host_lets_a_stream_finish_and_flips_back(old, model):
    model.script(Text(" ".join(["slow"] * 20), interval_s=0.1))
    lines: list[str] = []

    def stream() -> None:
        with (
            httpx.Client(base_url=old.base_url, headers=old.headers(), timeout=30) as client,
            client.stream("POST", CHAT, json=chat_body("in flight", stream=True)) as response,
        ):
            lines.extend(line for line in response.iter_lines() if line)

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        wait_for(lambda: model.in_flight == 1, timeout=10, what="the stream to be in flight")
        old.switch.touch()
        refused = chat(old, "new request")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "45"
        assert refused.json()["error"]["code"] == "maintenance"
        assert httpx.get(old.base_url + "/readyz").status_code == 503
        assert httpx.get(old.base_url + "/healthz").status_code == 200
        metrics = httpx.get(old.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert "codex_maintenance_mode 1" in metrics.text
        reader.join(30)
        assert lines[-1] == "data: [DONE]"
        assert "".join(lines).count("slow") == 20  # the stream in flight finished whole
    finally:
        old.switch.unlink(missing_ok=True)
        reader.join(30)
    assert httpx.get(old.base_url + "/readyz").status_code == 200
    assert chat(old, "back again").status_code == 200


def test_one_request_produces_linked_spans_without_prompt_completion_or_key(old, receiver):
    r = chat(old, PROMPT)
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    completion = r.json()["choices"][0]["message"]["content"]
    assert PROMPT in completion  # the offline model echoes: the text must still not reach any span

    def spans():
        found = receiver.trace_of(request_id)
        return found if {"turn", "worker lease", "thread/start", "turn/start"} <= {s.name for s in found} else None

    trace = wait_for(spans, timeout=15, what="the request's spans at the OTLP receiver")
    by_name = {s.name: s for s in trace}
    http = by_name["POST /v1/chat/completions"]
    turn = by_name["turn"]
    assert http.parent_span_id == ""
    assert turn.parent_span_id == http.span_id
    for child in ("worker lease", "thread/start", "turn/start"):
        assert by_name[child].parent_span_id == turn.span_id, child
    assert {s.service for s in trace} == {"old-env-proxy"}
    assert receiver.paths[-1] == "/v1/traces"

    usage = r.json()["usage"]
    assert http.attributes["codex.request_id"] == request_id
    assert http.attributes["http.route"] == "/v1/chat/completions"
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["gen_ai.request.model"] == "codev-5"
    assert http.attributes["codex.key_name"] == "default"
    assert http.attributes["codex.outcome"] == "completed"
    assert http.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert http.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert turn.attributes["codex.status"] == "completed"
    assert turn.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert by_name["thread/start"].attributes["codex.thread_id"] == turn.attributes["codex.thread_id"]
    assert by_name["turn/start"].attributes["codex.turn_id"] == turn.attributes["codex.turn_id"]
    assert isinstance(by_name["worker lease"].attributes["codex.worker"], int)

    for span in trace:
        for value in span.attributes.values():
            text = str(value)
            assert PROMPT not in text and completion not in text and API_KEY not in text, (span.name, value)
