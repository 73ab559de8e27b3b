"""`/metrics`: Prometheus text with bounded labels, served to loopback."""

from __future__ import annotations

import random
import re
import string

import httpx
import psutil
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
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    old = sample(before, "codex_http_requests_total", **labels) if want in before else 0
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


def series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def flood(api, rng: random.Random, count: int) -> None:
    """Requests with random 60 KB method names to the public /healthz and random methods on random paths."""
    with httpx.Client(base_url=api.base_url, timeout=10) as client:
        for i in range(count):
            method = "".join(rng.choices(string.ascii_uppercase, k=60_000 if i % 2 == 0 else rng.randint(3, 40)))
            path = (
                "/healthz" if i % 3 == 0 else "/" + "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 300)))
            )
            client.request(method, path)


def test_random_methods_and_paths_leave_metrics_and_memory_flat(api):
    rng = random.Random(13)
    flood(api, rng, 60)  # every label combination the flood can produce exists from here on
    rss_before = psutil.Process(api.proc.pid).memory_info().rss
    before = httpx.get(api.base_url + "/metrics").text
    flood(api, rng, 600)
    after = httpx.get(api.base_url + "/metrics").text
    rss_after = psutil.Process(api.proc.pid).memory_info().rss
    names = {line.split("{")[0].split(" ")[0] for line in series(after)}
    assert len(series(after)) == len(series(before)), set(series(after)) ^ set(series(before))
    assert abs(len(after) - len(before)) < 200  # only counter values changed
    assert sample(after, "codex_http_requests_total", route="unmatched", method="other", status="4xx") > 0
    assert "codex_http_requests_total" in names
    # Before the fix 200 such requests grew the app by 12 MB; 600 would have been ≈ 36 MB.
    assert rss_after - rss_before < 8 * 2**20, (rss_before, rss_after)
