"""The issue-13 attacks on the real app: a 300,000-message body and 100,000-deep nesting are refused with 400s
naming what was wrong, and codex never sees them (no model request, no turn on the worker).

How fast they are refused is measured by `python -m bench bounds` (no timing assertions here); the client
timeout below only keeps a regression from hanging the run.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.chat_support import CHAT, MODEL, error_of
from tests.api_harness import ApiServer, ThreadedOfflineModel

pytestmark = pytest.mark.codex

MESSAGES_300K = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "a"}] * 300_000}).encode()
NESTED_100K = b'{"model":"codev-5","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
INPUT_300K = json.dumps({"model": MODEL, "input": [{"role": "user", "content": "a"}] * 300_000}).encode()


def turns_served(api: ApiServer) -> int:
    return sum(w["turns_served"] for w in api.health()["backend"]["workers"])


@pytest.mark.parametrize(
    ("path", "body", "param", "code"),
    [
        (CHAT, MESSAGES_300K, "messages", "array_above_max_length"),
        ("/v1/responses", INPUT_300K, "input", "array_above_max_length"),
        (CHAT, NESTED_100K, None, "json_too_deep"),
        ("/v1/responses", b'{"input":' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "json_too_deep"),
        ("/v1/completions", b'{"prompt":' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "json_too_deep"),
    ],
    ids=["chat-300k-messages", "responses-300k-items", "chat-100k-deep", "responses-100k-deep", "completions-deep"],
)
def test_hostile_bodies_are_400s_that_codex_never_sees(
    api: ApiServer, model: ThreadedOfflineModel, path: str, body: bytes, param: str | None, code: str
) -> None:
    seen, served = len(model.requests), turns_served(api)
    r = httpx.post(
        api.base_url + path,
        content=body,
        headers=api.headers(**{"Content-Type": "application/json"}),
        timeout=30,
    )
    assert r.status_code == 400, r.text[:500]
    err = error_of(r)
    assert (err["param"], err["code"]) == (param, code)
    assert len(model.requests) == seen
    assert turns_served(api) == served
    assert "RecursionError" not in api.log()


def test_a_body_within_the_bounds_still_runs(http: httpx.Client, model: ThreadedOfflineModel) -> None:
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(400)]
    r = http.post(CHAT, json={"model": MODEL, "messages": [*history, {"role": "user", "content": "last"}]})
    assert r.status_code == 200, r.text[:500]
    assert r.json()["choices"][0]["message"]["content"] == "echo: last"
