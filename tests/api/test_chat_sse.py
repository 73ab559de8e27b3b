"""The chat SSE contract on raw bytes, and what codex is given as the transcript (issue 4, parity.md §4.4, §14).

All against the session app (keepalive every 300 ms) with the real codex binary and the offline model.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from app.offline_model import Text, Usage
from tests.api.chat_support import CHAT, MODEL, SseStream, chat_body

pytestmark = pytest.mark.codex


def stream(http: httpx.Client, body: dict, **headers: str) -> tuple[httpx.Response, SseStream]:
    with http.stream("POST", CHAT, json=body, headers=headers) as response:
        raw = response.read()
    return response, SseStream(raw)


def test_stream_headers(http, model) -> None:
    model.script(Text("hi"))
    response, _ = stream(http, chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-request-id"].startswith("req_")
    assert "content-length" not in response.headers


def test_frames_are_data_lines_separated_by_blank_lines(http, model) -> None:
    model.script(Text("a b", chunks=["a", " b"]))
    _, sse = stream(http, chat_body(stream=True))
    assert sse.raw.endswith(b"data: [DONE]\n\n")
    for frame in sse.frames:
        assert frame.startswith((b"data: ", b":")), frame
        assert b"\n" not in frame, frame
        assert b"\r" not in frame, frame


def test_chunk_order_without_usage(http, model) -> None:
    model.script(Text("one two three", chunks=["one", " two", " three"]))
    _, sse = stream(http, chat_body(stream=True))
    events = sse.events
    assert sse.data[-1] == "[DONE]"
    assert sse.data.count("[DONE]") == 1
    # role first, once
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for e in events if e["choices"] and "role" in e["choices"][0]["delta"]) == 1
    # every frame before the finish chunk has finish_reason null and usage null
    finish = [i for i, e in enumerate(events) if e["choices"] and e["choices"][0]["finish_reason"] is not None]
    assert finish == [len(events) - 1], "exactly one finish chunk, last before [DONE] without include_usage"
    for e in events[:-1]:
        assert e["choices"][0]["finish_reason"] is None
        assert e["usage"] is None
    last = events[-1]
    assert last["choices"][0]["delta"] == {}
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"] is None
    assert sse.text == "one two three"
    assert [e["choices"][0]["delta"]["content"] for e in events[1:-1]] == ["one", " two", " three"]


def test_usage_chunk_only_with_include_usage(http, model) -> None:
    model.script(Text("counted", usage=Usage(input_tokens=40, output_tokens=2, cached_tokens=8)))
    _, sse = stream(http, chat_body(stream=True, stream_options={"include_usage": True}))
    events = sse.events
    assert sse.data[-1] == "[DONE]"
    finish_idx = [i for i, e in enumerate(events) if e["choices"] and e["choices"][0]["finish_reason"]]
    usage_idx = [i for i, e in enumerate(events) if e["usage"] is not None]
    assert usage_idx == [len(events) - 1]
    assert finish_idx == [len(events) - 2], "the finish chunk comes right before the usage chunk"
    usage_chunk = events[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 40,
        "completion_tokens": 2,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_include_usage_false_sends_no_usage(http, model) -> None:
    model.script(Text("x"))
    _, sse = stream(http, chat_body(stream=True, stream_options={"include_usage": False}))
    assert all(e["usage"] is None for e in sse.events)
    assert all(e["choices"] for e in sse.events)


def test_id_created_model_are_stable(http, model) -> None:
    model.script(Text("a b c d", chunks=["a", " b", " c", " d"]))
    _, sse = stream(http, chat_body(stream=True, stream_options={"include_usage": True}))
    events = sse.events
    assert len(events) == 7
    assert {(e["id"], e["created"], e["model"], e["object"]) for e in events} == {
        (events[0]["id"], events[0]["created"], MODEL, "chat.completion.chunk")
    }
    assert events[0]["id"].startswith("chatcmpl-")


def test_model_echoes_the_requested_spelling(http, model) -> None:
    model.script(Text("x"))
    _, sse = stream(http, {**chat_body(stream=True), "model": "CodeV-5-High"})
    assert {e["model"] for e in sse.events} == {"CodeV-5-High"}


def test_role_chunk_arrives_before_the_model_answers(http, model) -> None:
    model.script(Text("late", first_byte_delay_s=1.5))
    started = time.monotonic()
    with http.stream("POST", CHAT, json=chat_body(stream=True)) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line)
        first_at = time.monotonic() - started
        rest = "".join(lines)
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert first_at < 1.0, f"role chunk after {first_at:.2f}s: headers must not wait for the model"
    assert "late" in rest


def test_keepalive_comments_while_the_model_pauses(http, model) -> None:
    model.script(Text("slow reply", chunks=["slow", " reply"], interval_s=0.8))
    _, sse = stream(http, chat_body(stream=True))
    assert sse.text == "slow reply"
    assert sse.comments, "a 0.8 s pause with a 300 ms keepalive interval must produce keepalive comments"
    assert all(c.startswith(b": keepalive") for c in sse.comments)
    kinds = [b"c" if f.startswith(b":") else b"d" for f in sse.frames]
    first_content = next(i for i, e in enumerate(sse.frames) if b'"content":"slow"' in e)
    second_content = next(i for i, e in enumerate(sse.frames) if b'"content":" reply"' in e)
    assert b"c" in kinds[first_content:second_content], "keepalives arrive during the pause"


def test_no_keepalive_header_disables_them(http, model) -> None:
    model.script(Text("slow reply", chunks=["slow", " reply"], interval_s=0.8))
    _, sse = stream(http, chat_body(stream=True), **{"X-No-Keepalive": "1"})
    assert sse.text == "slow reply"
    assert sse.comments == []


def test_non_stream_shape(http, model) -> None:
    model.script(Text("plain", usage=Usage(input_tokens=9, output_tokens=1)))
    response = http.post(CHAT, json=chat_body())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] == MODEL
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "plain", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] == 10


def test_stream_key_absent_means_json(http, model) -> None:
    model.script(Text("x"))
    response = http.post(CHAT, json=chat_body())
    assert response.headers["content-type"].startswith("application/json")


# ---- transcript --------------------------------------------------------------------------------------------


def conversation(input_items) -> list[tuple[str, str]]:
    """The user/assistant messages codex sent, minus its own preamble (AGENTS.md / environment context)."""
    out = []
    for item in input_items:
        if item.type != "message" or item.role not in ("user", "assistant"):
            continue
        if item.role == "user" and item.text.lstrip().startswith(("# AGENTS.md", "<environment_context>")):
            continue
        out.append((item.role, item.text))
    return out


def test_earlier_turns_reach_the_model_as_separate_messages(http, offline_model) -> None:
    messages = [
        {"role": "system", "content": "SYSTEM-MARKER be terse"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
    ]
    response = http.post(CHAT, json={"model": MODEL, "messages": messages})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "echo: And 3+3?"
    recorded = offline_model.requests[-1]
    assert conversation(recorded.input) == [
        ("user", "What is 2+2?"),
        ("assistant", "It is 4."),
        ("user", "And 3+3?"),
    ]


def test_client_system_prompt_reaches_the_model_by_default(http, offline_model) -> None:
    messages = [{"role": "system", "content": "SYSTEM-MARKER-7f3"}, {"role": "user", "content": "hi"}]
    assert http.post(CHAT, json={"model": MODEL, "messages": messages}).status_code == 200
    recorded = offline_model.requests[-1]
    assert any("SYSTEM-MARKER-7f3" in text for text in recorded.texts("developer"))
