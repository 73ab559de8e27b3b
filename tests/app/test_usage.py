"""`/v1/usage`: every generation request leaves one record with Codex's exact token counts."""

from __future__ import annotations

import time

import httpx
import pytest

from app.offline_model import Text
from tests.api_harness import ApiServer, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.codex


def chat(api, text: str) -> httpx.Response:
    return httpx.post(
        api.base_url + "/v1/chat/completions",
        headers=api.headers(),
        json={"model": "codev-5-low", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def test_usage_sums_exactly_what_the_responses_reported(api):
    start = int(time.time() * 1000)
    first = chat(api, "one two three")
    second = httpx.post(
        api.base_url + "/v1/responses", headers=api.headers(), json={"model": "codev-5", "input": "four"}, timeout=30
    )
    r = httpx.get(api.base_url + "/v1/usage", params={"start": start, "group": "hour"}, headers=api.headers())
    assert r.status_code == 200
    body = r.json()
    totals = body["totals"]
    u1, u2 = first.json()["usage"], second.json()["usage"]
    assert totals["requests"] == 2
    assert totals["input_tokens"] == u1["prompt_tokens"] + u2["input_tokens"]
    assert totals["output_tokens"] == u1["completion_tokens"] + u2["output_tokens"]
    assert set(body["by_model"]) == {"codev-5-low", "codev-5"}
    assert sum(b["totals"]["requests"] for b in body["buckets"]) == 2


def test_raw_records_carry_the_request_id_and_outcome(api):
    response = chat(api, "trace me")
    raw = httpx.get(api.base_url + "/v1/usage/raw", params={"limit": 1}, headers=api.headers()).json()["data"]
    assert len(raw) == 1
    record = raw[0]
    assert record["request_id"] == response.headers["x-request-id"]
    assert (record["route"], record["outcome"], record["key"]) == ("/v1/chat/completions", "completed", "default")
    assert record["output_tokens"] == response.json()["usage"]["completion_tokens"]


@pytest.mark.parametrize(
    "params", [{"group": "week"}, {"start": "yesterday"}, {"limit": "0"}], ids=["group", "start", "limit"]
)
def test_bad_parameters_are_400_envelopes(api, params):
    path = "/v1/usage/raw" if "limit" in params else "/v1/usage"
    r = httpx.get(api.base_url + path, params=params, headers=api.headers())
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_usage_needs_the_key(api):
    r = httpx.get(api.base_url + "/v1/usage")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer realm=api"


def test_a_client_that_leaves_mid_stream_is_recorded_as_cancelled(api, offline_model):
    offline_model.script(Text("slow words arrive one by one", interval_s=0.3))
    body = {"model": "codev-5", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with httpx.stream("POST", api.base_url + "/v1/chat/completions", headers=api.headers(), json=body) as r:
        request_id = r.headers["x-request-id"]
        next(line for line in r.iter_lines() if '"content":"slow' in line)

    def recorded() -> dict | None:
        raw = httpx.get(api.base_url + "/v1/usage/raw", params={"limit": 5}, headers=api.headers()).json()["data"]
        return next((rec for rec in raw if rec["request_id"] == request_id), None)

    record = wait_for(recorded, timeout=10, what="the cancelled stream's usage record")
    assert (record["outcome"], record["stream"]) == ("cancelled", True)


def test_a_request_no_worker_could_take_is_recorded_as_rejected(offline_model, tmp_path):
    server = ApiServer(tmp_path, offline_env(offline_model, CODEX_BIN=str(tmp_path / "missing-codex")))
    server.start(expect_ready=False)
    try:
        r = chat(server, "anyone there?")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "worker_not_ready"
        raw = httpx.get(server.base_url + "/v1/usage/raw", headers=server.headers()).json()["data"]
        assert [(rec["request_id"], rec["outcome"]) for rec in raw] == [(r.headers["x-request-id"], "rejected")]
    finally:
        server.stop()
