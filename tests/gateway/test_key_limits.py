"""Per-key limits on the real app: request rate, concurrency share and daily token budget, each per key."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from app.offline_model import Hang, Text, Usage
from tests.api_harness import ThreadedOfflineModel
from tests.conftest import wait_for
from tests.gateway.conftest import DAVE_TOKENS_PER_DAY, SHARE, Gateway, chat_body

pytestmark = pytest.mark.codex
CHAT = "/v1/chat/completions"
RATE_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
TOKEN_HEADERS = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")


def test_burst_past_one_keys_rate_is_429_and_another_key_is_unaffected(
    gateway: Gateway, offline_model: ThreadedOfflineModel
) -> None:
    with gateway.client("alice") as alice, gateway.client("bob") as bob:
        served = [alice.post(CHAT, json=chat_body(f"burst {i}")) for i in range(3)]
        assert [r.status_code for r in served] == [200, 200, 200]
        assert [r.headers["x-ratelimit-remaining-requests"] for r in served] == ["2", "1", "0"]
        assert {r.headers["x-ratelimit-limit-requests"] for r in served} == {"3"}
        assert all(r.headers["x-ratelimit-reset-requests"].endswith("s") for r in served)
        seen = len(offline_model.requests)

        refused = alice.post(CHAT, json=chat_body("one too many"))
        other = bob.post(CHAT, json=chat_body("same burst"))

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert all(h in refused.headers for h in RATE_HEADERS)
    assert other.status_code == 200, other.text
    assert (other.headers["x-ratelimit-limit-requests"], other.headers["x-ratelimit-remaining-requests"]) == (
        "600",
        "599",
    )
    assert len(offline_model.requests) == seen + 1  # the refused request never reached the model


def test_rate_headers_are_on_errors_and_streams_too(gateway: Gateway) -> None:
    with gateway.client("carol") as carol:
        invalid = carol.post(CHAT, json={"model": "codev-5", "messages": "not a list"})
        unknown = carol.post(CHAT, json=chat_body(model="no-such-model"))
        with carol.stream("POST", CHAT, json=chat_body("stream me", stream=True)) as stream:
            stream.read()
    assert (invalid.status_code, unknown.status_code, stream.status_code) == (400, 404, 200)
    for response in (invalid, unknown, stream):
        assert all(h in response.headers for h in RATE_HEADERS), response.headers
        assert not any(h in response.headers for h in TOKEN_HEADERS)  # carol has no token budget


def test_a_key_holding_its_concurrency_share_leaves_another_key_served_at_once(
    gateway: Gateway, offline_model: ThreadedOfflineModel
) -> None:
    base = offline_model.in_flight
    offline_model.script(*[Hang() for _ in range(SHARE)])
    with contextlib.ExitStack() as stack:
        bob = stack.enter_context(gateway.client("bob"))
        for i in range(SHARE):
            response = stack.enter_context(bob.stream("POST", CHAT, json=chat_body(f"long {i}", stream=True)))
            assert response.status_code == 200
        wait_for(lambda: offline_model.in_flight >= base + SHARE, what="bob's streams to reach the model")

        over = bob.post(CHAT, json=chat_body("over the share"))
        with gateway.client("carol") as carol:
            served = carol.post(CHAT, json=chat_body("my turn"))

        assert offline_model.in_flight >= base + SHARE  # bob's streams are still open
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "concurrency_exceeded"
    assert over.headers["retry-after"] == "1"
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"] == "echo: my turn"
    # Closing the streams gives bob's slots back (released when each response ended, not leaked).
    with gateway.client("bob") as bob:
        again = wait_for(
            lambda: (r := bob.post(CHAT, json=chat_body("slots back?"))).status_code == 200 and r,
            what="bob served again after his streams ended",
        )
    assert again.json()["choices"][0]["message"]["content"] == "echo: slots back?"


def test_token_budget_is_enforced_from_exact_usage(gateway: Gateway, offline_model: ThreadedOfflineModel) -> None:
    offline_model.script(Text("spent", usage=Usage(input_tokens=40, output_tokens=25)))
    with gateway.client("dave") as dave:
        first = dave.post(CHAT, json=chat_body("spend"))
        seen = len(offline_model.requests)
        second = dave.post(CHAT, json=chat_body("and more"))
    assert first.status_code == 200
    assert first.json()["usage"]["total_tokens"] == 65
    assert first.headers["x-ratelimit-limit-tokens"] == str(DAVE_TOKENS_PER_DAY)
    assert first.headers["x-ratelimit-remaining-tokens"] == str(DAVE_TOKENS_PER_DAY)  # checked before the turn
    assert second.status_code == 429
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "tokens_exceeded")
    assert second.headers["x-ratelimit-remaining-tokens"] == "0"
    assert 1 <= int(second.headers["retry-after"]) <= 86400
    assert len(offline_model.requests) == seen
    usage = httpx.get(gateway.base_url + "/v1/usage", headers=gateway.headers("dave")).json()
    assert usage["by_key"]["dave"]["total_tokens"] == 65
