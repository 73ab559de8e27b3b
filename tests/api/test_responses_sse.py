"""Raw SSE contract of `POST /v1/responses` with `stream:true`, checked on the bytes (no SSE library in between).

OpenAI's published event sequence for a text answer: response.created, response.in_progress,
response.output_item.added, response.content_part.added, response.output_text.delta…, response.output_text.done,
response.content_part.done, response.output_item.done, response.completed — every frame an `event:` line equal to
the payload's `type`, `sequence_number` strictly increasing from 1.
"""

from __future__ import annotations

import pytest

from app.offline_model import Fail, Reasoning, StreamError, Text, Usage
from tests.api.responses_support import MODEL, SseBody, post_stream

pytestmark = pytest.mark.codex

TEXT_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def text_stream(api, offline_model) -> tuple[object, SseBody]:
    """One streamed three-delta answer with known usage, shared by the read-only contract checks below."""
    offline_model.clear_script()
    usage = Usage(input_tokens=40, output_tokens=3, cached_tokens=8)
    offline_model.script(Text("alpha beta gamma", chunks=["alpha", " beta", " gamma"], usage=usage))
    return post_stream(api, {"model": MODEL, "input": "contract"})


def test_stream_is_event_stream_with_no_buffering_headers(text_stream):
    resp, _ = text_stream
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert "no-cache" in resp.headers["cache-control"]


def test_every_frame_has_an_event_line_equal_to_its_type(text_stream):
    _, body = text_stream
    assert body.frames
    for frame in body.frames:
        assert frame.raw.startswith(b"event: "), frame.raw
        assert frame.event == frame.data["type"], frame.raw


def test_events_follow_openais_text_sequence(text_stream):
    _, body = text_stream
    assert body.types == TEXT_SEQUENCE


def test_sequence_numbers_increase_by_one_from_one(text_stream):
    _, body = text_stream
    assert [f.data["sequence_number"] for f in body.frames] == list(range(1, len(body.frames) + 1))


def test_no_done_sentinel_and_nothing_after_completed(text_stream):
    _, body = text_stream
    assert b"[DONE]" not in body.raw
    tail = body.raw.split(b"event: response.completed", 1)[1]
    assert b"event:" not in tail and tail.count(b"data:") == 1


def test_created_and_in_progress_carry_an_in_progress_response(text_stream):
    _, body = text_stream
    created, in_progress = body.frames[0].data, body.frames[1].data
    for event in (created, in_progress):
        response = event["response"]
        assert response["object"] == "response"
        assert response["status"] == "in_progress"
        assert response["id"].startswith("resp_")
        assert response["model"] == MODEL
        assert response["output"] == []
        assert response["usage"] is None
    assert created["response"]["id"] == in_progress["response"]["id"]


def test_item_and_part_events_reference_the_same_message(text_stream):
    _, body = text_stream
    added = body.of("response.output_item.added")[0]
    item = added["item"]
    assert (added["output_index"], item["type"], item["role"], item["status"], item["content"]) == (
        0,
        "message",
        "assistant",
        "in_progress",
        [],
    )
    for kind in (
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
    ):
        for event in body.of(kind):
            assert (event["item_id"], event["output_index"], event["content_index"]) == (item["id"], 0, 0), event
    assert body.of("response.content_part.added")[0]["part"] == {
        "type": "output_text",
        "text": "",
        "annotations": [],
        "logprobs": [],
    }


def test_deltas_and_done_events_carry_the_text(text_stream):
    _, body = text_stream
    assert [e["delta"] for e in body.of("response.output_text.delta")] == ["alpha", " beta", " gamma"]
    assert body.of("response.output_text.done")[0]["text"] == "alpha beta gamma"
    assert body.of("response.content_part.done")[0]["part"]["text"] == "alpha beta gamma"
    done_item = body.of("response.output_item.done")[0]["item"]
    assert done_item["status"] == "completed"
    assert [p["text"] for p in done_item["content"]] == ["alpha beta gamma"]


def test_completed_is_last_and_carries_the_full_response_with_usage(text_stream):
    _, body = text_stream
    completed = body.frames[-1].data
    assert completed["type"] == "response.completed"
    response = completed["response"]
    assert response["id"] == body.frames[0].data["response"]["id"]
    assert response["status"] == "completed"
    assert response["error"] is None
    assert response["incomplete_details"] is None
    assert response["output"] == [body.of("response.output_item.done")[0]["item"]]
    assert response["usage"] == {
        "input_tokens": 40,
        "input_tokens_details": {"cached_tokens": 8},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 43,
    }


def test_keepalive_comments_arrive_during_a_pause(api, offline_model):
    offline_model.script(Text("slow answer", chunks=["slow", " answer"], interval_s=0.8))
    _, body = post_stream(api, {"model": MODEL, "input": "take your time"})
    assert body.comments, body.raw
    assert all(c.startswith(b": ") for c in body.comments)
    assert body.types[-1] == "response.completed"
    assert "".join(e["delta"] for e in body.of("response.output_text.delta")) == "slow answer"


def test_reasoning_summary_events_precede_the_message(api, offline_model):
    offline_model.script(Reasoning("think it through", then=Text("answer")))
    _, body = post_stream(api, {"model": MODEL, "input": "reason", "reasoning": {"summary": "auto"}})
    types = body.types
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
    ]
    assert body.of("response.output_item.added")[0]["item"]["type"] == "reasoning"
    summary = "".join(e["delta"] for e in body.of("response.reasoning_summary_text.delta"))
    assert summary == "think it through"
    closing = ["response.reasoning_summary_text.done", "response.reasoning_summary_part.done"]
    assert types[types.index(closing[0]) : types.index(closing[0]) + 3] == [*closing, "response.output_item.done"]
    message_added = body.of("response.output_item.added")[1]
    assert (message_added["output_index"], message_added["item"]["type"]) == (1, "message")
    output = body.frames[-1].data["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert [f.data["sequence_number"] for f in body.frames] == list(range(1, len(body.frames) + 1))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            StreamError(code="server_error", message="boom mid-stream", after_text="partial "), id="stream-error"
        ),
        pytest.param(StreamError(code="server_error", event="error"), id="error-event"),
        pytest.param(Fail(status=500, code="server_error", message="provider down"), id="http-500"),
        pytest.param(Fail(status=400, code="invalid_request_error", message="rejected"), id="http-400"),
    ],
)
def test_failures_end_with_response_failed_and_an_error_object(api, offline_model, reply):
    offline_model.script(reply)
    resp, body = post_stream(api, {"model": MODEL, "input": "this will fail"})
    assert resp.status_code == 200
    assert "response.completed" not in body.types
    last = body.frames[-1].data
    assert last["type"] == "response.failed", body.types
    assert body.types.count("response.failed") == 1
    response = last["response"]
    assert response["status"] == "failed"
    assert response["id"] == body.frames[0].data["response"]["id"]
    error = response["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert [f.data["sequence_number"] for f in body.frames] == list(range(1, len(body.frames) + 1))
    for frame in body.frames:
        assert frame.event == frame.data["type"]
