"""Helpers shared by the chat API tests: request bodies, raw SSE parsing, waiting for idle.

Script hygiene for the shared offline model is the autouse `script_guard` fixture in tests/api/conftest.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.api_harness import ApiServer, ThreadedOfflineModel
from tests.conftest import wait_for

MODEL = "codev-5"
CHAT = "/v1/chat/completions"


def chat_body(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


@dataclass
class SseStream:
    """A raw SSE body split into frames: `events` are decoded `data:` payloads, `comments` the `:` lines."""

    raw: bytes
    frames: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frames = [f for f in self.raw.split(b"\n\n") if f]

    @property
    def data(self) -> list[str]:
        return [f[len(b"data: ") :].decode() for f in self.frames if f.startswith(b"data: ")]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(d) for d in self.data if d != "[DONE]"]

    @property
    def comments(self) -> list[bytes]:
        return [f for f in self.frames if f.startswith(b":")]

    @property
    def text(self) -> str:
        return "".join(e["choices"][0]["delta"].get("content", "") for e in self.events if e.get("choices"))


def wait_idle(server: ApiServer, model: ThreadedOfflineModel | None = None, timeout: float = 10.0) -> None:
    """Until the app reports no in-flight turn (and the offline model no open response)."""
    wait_for(lambda: server.health()["backend"]["in_flight_turns"] == 0, timeout=timeout, what="in_flight_turns == 0")
    if model is not None:
        wait_for(lambda: model.in_flight == 0, timeout=timeout, what="offline model in_flight == 0")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The OpenAI error envelope's inner object; asserts the envelope shape and JSON content type."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
