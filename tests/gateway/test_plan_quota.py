"""The plan's quota, end to end with the real codex: the offline model sends the ChatGPT backend's
`x-codex-*` rate-limit headers, codex reports them as `account/rateLimits/updated`, the app shows them and,
once codex reports the usage limit reached, refuses new turns until the window resets."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from app.offline_model import Fail, Text, plan_headers
from tests.api_harness import ThreadedOfflineModel
from tests.conftest import wait_for
from tests.gateway.conftest import Gateway, chat_body

pytestmark = pytest.mark.codex
CHAT = "/v1/chat/completions"


def plan_of(gateway: Gateway) -> dict:
    return httpx.get(gateway.base_url + "/healthz", timeout=10).json()["plan"]


def test_the_plans_windows_show_on_healthz_metrics_and_usage(
    gateway: Gateway, offline_model: ThreadedOfflineModel
) -> None:
    reset = int(time.time()) + 3 * 3600
    offline_model.script(
        Text("ok", headers=plan_headers(42, reset, secondary_used_percent=7, secondary_resets_at=reset + 86400))
    )
    with gateway.client("carol") as carol:
        assert carol.post(CHAT, json=chat_body("quota?")).status_code == 200

    def primary() -> dict | None:
        limits = plan_of(gateway)["limits"]
        return limits[0]["primary"] if limits and limits[0]["primary"]["used_percent"] == 42 else None

    window = wait_for(primary, what="the plan snapshot on /healthz")
    assert (window["window_minutes"], window["resets_at"]) == (300, reset)
    plan = plan_of(gateway)
    assert plan["known"] is True and plan["usage_limit_reached"] is False
    assert plan["limits"][0]["limit_id"] == "codex"
    assert plan["limits"][0]["secondary"]["used_percent"] == 7

    metrics = httpx.get(gateway.base_url + "/metrics").text
    assert 'codex_plan_used_percent{limit="codex",window="primary"} 42' in metrics
    assert 'codex_plan_used_percent{limit="codex",window="secondary"} 7' in metrics
    assert f'codex_plan_resets_at_seconds{{limit="codex",window="primary"}} {reset}' in metrics
    assert "codex_plan_usage_limit_reached 0" in metrics

    usage = httpx.get(gateway.base_url + "/v1/usage", headers=gateway.headers("carol")).json()
    assert usage["plan"]["limits"][0]["primary"]["used_percent"] == 42


def test_usage_limit_reached_refuses_new_turns_until_the_reset(
    gateway: Gateway, offline_model: ThreadedOfflineModel
) -> None:
    reset = int(time.time()) + 4
    offline_model.script(
        Fail(429, "usage_limit_reached", "The usage limit has been reached", headers=plan_headers(100, reset))
    )
    with gateway.client("bob") as bob:
        hit = bob.post(CHAT, json=chat_body("one more"))
        assert hit.status_code == 429
        assert hit.json()["error"]["code"] == "usage_limit_exceeded"  # the turn that hit the limit
        assert 1 <= int(hit.headers["retry-after"]) <= 4  # from the window's reset, not a fixed 30 s
        seen = len(offline_model.requests)

        refused = bob.post(CHAT, json=chat_body("and now?"))
        error = refused.json()["error"]
        assert refused.status_code == 429
        assert (error["type"], error["code"]) == ("rate_limit_error", "usage_limit_reached")
        assert 1 <= int(refused.headers["retry-after"]) <= 4
        assert "x-ratelimit-remaining-requests" in refused.headers
        assert len(offline_model.requests) == seen  # no turn was started
        plan = plan_of(gateway)
        assert plan["usage_limit_reached"] is True and plan["blocked_until"] == reset
        assert "codex_plan_usage_limit_reached 1" in httpx.get(gateway.base_url + "/metrics").text
        with gateway.client("carol") as carol:  # the plan is shared: every key is refused
            assert carol.post(CHAT, json=chat_body("me too?")).json()["error"]["code"] == "usage_limit_reached"
        assert len(offline_model.requests) == seen

        def served() -> httpx.Response | None:
            r = bob.post(CHAT, json=chat_body("after the reset"))
            return r if r.status_code == 200 else None

        after = wait_for(served, timeout=30, interval=0.5, what="the first request after the reset")
    assert after.json()["choices"][0]["message"]["content"] == "echo: after the reset"
    assert len(offline_model.requests) == seen + 1
    assert plan_of(gateway)["usage_limit_reached"] is False
    lines = [line for line in gateway.log().splitlines() if "usage limit is reached" in line]
    assert lines and re.search(r"for \d s", lines[-1])
