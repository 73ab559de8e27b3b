"""Helpers shared by the `/v1/responses` API tests: raw SSE parsing on bytes and the official SDK client.

Kept out of conftest.py on purpose: the chat tests live in the same folder and own their own helpers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import openai

MODEL = "codev-5"  # an advertised dev id; the offline model answers whatever codex model it maps to


@dataclass
class Frame:
    """One SSE frame as it was on the wire: its `event:` name (or None) and the decoded `data:` JSON."""

    event: str | None
    data: dict[str, Any]
    raw: bytes


@dataclass
class SseBody:
    frames: list[Frame]
    comments: list[bytes]
    raw: bytes

    @property
    def types(self) -> list[str]:
        return [f.data["type"] for f in self.frames]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f.data for f in self.frames if f.data["type"] == kind]


def parse_sse(raw: bytes) -> SseBody:
    """Split a complete `text/event-stream` body into frames (blank-line separated) and `:` comment blocks.

    Strict on purpose: every frame must have exactly one `data:` line holding a JSON object; LF and CRLF both
    count as line ends (the SSE spec allows either).
    """
    text = raw.replace(b"\r\n", b"\n")
    frames: list[Frame] = []
    comments: list[bytes] = []
    for block in text.split(b"\n\n"):
        if not block.strip():
            continue
        lines = block.split(b"\n")
        if all(line.startswith(b":") for line in lines):
            comments.append(block)
            continue
        event = None
        data: list[bytes] = []
        for line in lines:
            if line.startswith(b":"):
                continue
            field, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if field == b"event":
                assert event is None, f"two event: lines in one frame: {block!r}"
                event = value.decode()
            elif field == b"data":
                data.append(value)
            else:
                raise AssertionError(f"unexpected SSE field {field!r} in {block!r}")
        assert len(data) == 1, f"expected exactly one data: line per frame: {block!r}"
        frames.append(Frame(event=event, data=json.loads(data[0]), raw=block))
    return SseBody(frames=frames, comments=comments, raw=raw)


def post_stream(api: Any, body: dict[str, Any], timeout: float = 30) -> tuple[httpx.Response, SseBody]:
    """POST a streaming /v1/responses request and read the whole body as bytes."""
    with httpx.stream(
        "POST", api.base_url + "/v1/responses", json={"stream": True, **body}, headers=api.headers(), timeout=timeout
    ) as resp:
        raw = resp.read()
    return resp, parse_sse(raw)


def post(api: Any, body: Any, timeout: float = 30, **kwargs: Any) -> httpx.Response:
    return httpx.post(api.base_url + "/v1/responses", json=body, headers=api.headers(), timeout=timeout, **kwargs)


def sdk_client(api: Any) -> openai.OpenAI:
    """The official client against the proxy; retries off so a failure surfaces as the failure itself."""
    key = api.headers()["Authorization"].removeprefix("Bearer ")
    return openai.OpenAI(base_url=api.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


def assert_error_envelope(resp: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope with the expected status (and `param`); returns the inner error object."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param, err
    return err
