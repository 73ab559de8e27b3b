"""`/metrics`: Prometheus text with bounded labels, served to loopback."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.codex


def sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" ([0-9.e+]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name}{{{want}}} missing from /metrics"
    return float(match.group(1))


def test_metrics_count_requests_turns_and_tokens(api):
    before = httpx.get(api.base_url + "/metrics").text
    r = httpx.post(
        api.base_url + "/v1/chat/completions",
        headers=api.headers(),
        json={"model": "codev-5", "messages": [{"role": "user", "content": "count me"}]},
        timeout=30,
    )
    usage = r.json()["usage"]
    after = httpx.get(api.base_url + "/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    labels = {"route": "/v1/chat/completions", "method": "POST", "status": "2xx"}
    old = sample(before, "codex_http_requests_total", **labels) if "/v1/chat/completions" in before else 0
    assert sample(text, "codex_http_requests_total", **labels) == old + 1
    assert sample(text, "codex_turns_total", outcome="completed") >= 1
    assert sample(text, "codex_tokens_total", kind="input") >= usage["prompt_tokens"]
    assert sample(text, "codex_workers_ready") == 1
    assert sample(text, "codex_turns_in_flight") == 0


def test_client_paths_never_become_labels(api):
    httpx.get(api.base_url + "/no/such/path/with-a-unique-name")
    text = httpx.get(api.base_url + "/metrics").text
    assert "with-a-unique-name" not in text
    assert sample(text, "codex_http_requests_total", route="unmatched", method="GET", status="4xx") >= 1
