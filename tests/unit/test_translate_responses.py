"""Pure tables for the Responses half of app.translate: `plan_responses` validation and `ResponseBuilder` events."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from app.codex.turn import TurnFinished, Usage
from app.model_ids import ResolvedModel
from app.openai import responses as r
from app.openai.errors import ErrorDetail
from app.translate.inbound.responses import plan_responses
from app.translate.outbound.accumulator import OutputAccumulator
from app.translate.outbound.responses import ResponsesEncoder
from app.translate.plan import RequestInvalid, TurnPlan

ENC = msgspec.json.Encoder()


def resolver(model: str) -> ResolvedModel | None:
    return ResolvedModel(requested=model, model="gpt-test", effort=None) if model == "m" else None


def plan(body: dict[str, Any], *, ignore_system: bool = False) -> TurnPlan:
    req = msgspec.json.decode(ENC.encode(body), type=r.ResponsesRequest)
    return plan_responses(req, resolver, ignore_client_system_prompt=ignore_system)


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}], **extra}


REFUSED = [
    pytest.param({"model": "m", "messages": []}, "messages", "invalid_value", id="messages"),
    pytest.param({"model": "m", "input": "x", "n": 2}, "n", "n_unsupported", id="n"),
    pytest.param({"input": "x"}, "model", "model_required", id="no-model"),
    pytest.param({"model": "m"}, "input", "invalid_value", id="no-input"),
    pytest.param({"model": "m", "input": []}, "input", "invalid_value", id="empty-input"),
    pytest.param({"model": "m", "input": "x", "previous_response_id": "r"}, "previous_response_id", None, id="prev"),
    pytest.param({"model": "m", "input": "x", "background": True}, "background", None, id="background"),
    pytest.param({"model": "m", "input": "x", "conversation": "c"}, "conversation", None, id="conversation"),
    pytest.param({"model": "m", "input": "x", "tool_choice": "required"}, "tool_choice", None, id="required"),
    pytest.param(
        {"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "f"}},
        "tool_choice.name",
        None,
        id="forced-undeclared",
    ),
    pytest.param(
        {"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}},
        "text.format.schema",
        None,
        id="json-schema-without-schema",
    ),
    pytest.param(
        {"model": "m", "input": "x", "tools": [{"type": "function", "name": "a.b"}]},
        "tools[0].name",
        None,
        id="tool-name",
    ),
    pytest.param(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "namespace", "name": "web", "tools": [{"type": "function", "name": "f"}]}],
        },
        "tools[0].name",
        None,
        id="reserved-namespace",
    ),
    pytest.param({"model": "m", "input": [{"type": "function_call"}]}, "input[0].call_id", None, id="call-without-id"),
    pytest.param(
        {"model": "m", "input": [user("a"), {"type": "function_call_output", "call_id": "c", "output": "x"}]},
        "input[1].call_id",
        None,
        id="output-without-call",
    ),
    pytest.param(
        {"model": "m", "input": [user("a"), {"type": "function_call", "call_id": "c", "name": "f", "arguments": "x"}]},
        "input[1].arguments",
        None,
        id="arguments-not-json",
    ),
    pytest.param({"model": "m", "input": [user("a"), {"type": "x"}]}, "input[1].type", None, id="unknown-item"),
    pytest.param({"model": "m", "input": [{"role": "tool", "content": "a"}]}, "input[0].role", None, id="role"),
    pytest.param(
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
        "input[0].content[0]",
        None,
        id="input-file",
    ),
    pytest.param({"model": "m", "input": [user("a"), {"role": "assistant", "content": "b"}]}, "input", None, id="last"),
    pytest.param({"model": "m", "input": [{"type": "reasoning", "summary": []}]}, "input", None, id="only-reasoning"),
    pytest.param({"model": "m", "input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort", None, id="effort"),
    pytest.param({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens", None, id="max-tokens"),
    pytest.param({"model": "unknown", "input": "x"}, "model", "model_not_found", id="unknown-model"),
]


@pytest.mark.parametrize(("body", "param", "code"), REFUSED)
def test_refused_bodies_name_the_parameter(body, param, code):
    with pytest.raises(RequestInvalid) as info:
        plan(body)
    assert info.value.param == param
    if code is not None:
        assert info.value.code == code
    assert info.value.status == (404 if code == "model_not_found" else 400)


@pytest.mark.parametrize(
    "tools", [["f"], [{"name": "f"}], [{"type": 3}]], ids=["not-object", "without-type", "type-not-string"]
)
def test_malformed_tool_declarations_fail_decoding_at_the_tool(tools):
    with pytest.raises(msgspec.ValidationError, match=r"\$\.tools\[0\]"):
        plan({"model": "m", "input": "x", "tools": tools})


def test_validation_order_reports_messages_before_n_and_model():
    with pytest.raises(RequestInvalid) as info:
        plan({"messages": [], "n": 2})
    assert info.value.param == "messages"


def test_string_input_is_the_turn_input():
    p = plan({"model": "m", "input": "hello"})
    assert p.turn.input_text == "hello"
    assert p.turn.history == ()
    assert p.requested_model == "m" and p.turn.model == "gpt-test"
    assert p.stream is False


def test_items_become_history_and_the_last_user_message_is_the_input():
    p = plan(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q1"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hidden"}]},
                user("q2"),
            ],
        }
    )
    assert p.turn.input_text == "q2"
    assert [(h.role, h.text) for h in p.turn.history] == [("user", "q1"), ("assistant", "a1")]


def test_system_and_developer_messages_and_instructions_become_developer_instructions():
    body = {
        "model": "m",
        "instructions": "be terse",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev rule"}]},
            {"role": "system", "content": "sys rule"},
            user("go"),
        ],
    }
    assert plan(body).turn.developer_instructions == "be terse\n\ndev rule\n\nsys rule"
    assert plan(body, ignore_system=True).turn.developer_instructions is None


def test_function_tools_are_offered_and_other_types_left_out_of_the_echo():
    p = plan(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "function", "name": "exec_command"}, {"type": "web_search"}],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
        }
    )
    assert p.turn.input_text == "x"
    assert [t.name for t in p.turn.tools] == ["exec_command"]
    assert [t.name for t in p.tools_echo] == ["exec_command"]
    assert (p.tool_choice_echo, p.parallel_tool_calls) == ("auto", True)


def test_reasoning_options_are_carried():
    p = plan({"model": "m", "input": "x", "reasoning": {"effort": "low", "summary": "detailed"}})
    assert (p.turn.effort, p.turn.summary, p.effort, p.summary) == ("low", "detailed", "low", "detailed")


# ---- ResponsesEncoder ---------------------------------------------------------------------------------------


def encoder(body: dict[str, Any] | None = None) -> ResponsesEncoder:
    return ResponsesEncoder(plan(body or {"model": "m", "input": "x"}), OutputAccumulator())


def finished(usage: Usage | None = None) -> TurnFinished:
    return TurnFinished(status="completed", usage=usage)


def text(e: ResponsesEncoder, delta: str) -> list[bytes]:
    item, opened = e.acc.text(delta)
    return e.text(item, delta, opened)


def reasoning(e: ResponsesEncoder, delta: str) -> list[bytes]:
    item, opened = e.acc.reasoning(delta)
    return e.reasoning(item, delta, opened)


def events(frames: list[bytes]) -> list[dict[str, Any]]:
    """Decode SSE frames, checking each `event:` line names its payload's `type`."""
    out = []
    for frame in frames:
        head, data = frame.decode().removesuffix("\n\n").split("\n", 1)
        payload = json.loads(data.removeprefix("data: "))
        assert head == f"event: {payload['type']}"
        out.append(payload)
    return out


def types(evs: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in evs]


def test_text_stream_follows_openais_sequence_with_consecutive_numbers():
    e = encoder()
    evs = events(
        e.opening() + text(e, "a") + text(e, "b") + e.closing(finished(Usage(input_tokens=3, output_tokens=2)))
    )
    assert types(evs) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [ev["sequence_number"] for ev in evs] == list(range(1, 11))
    final = evs[-1]["response"]
    assert final["usage"]["total_tokens"] == 5
    assert final["output"][0]["content"][0]["text"] == "ab"
    assert {ev["item_id"] for ev in evs[3:8]} == {final["output"][0]["id"]}


def test_an_empty_answer_still_opens_and_closes_the_message():
    e = encoder()
    assert types(events(e.opening() + e.closing(finished())))[2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_reasoning_is_closed_before_the_message_opens():
    e = encoder()
    frames = e.opening() + reasoning(e, "th") + reasoning(e, "ink") + text(e, "ok") + e.closing(finished())
    evs = events(frames)
    assert types(evs)[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    output = evs[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["reasoning", "message"]
    assert output[0]["summary"][0]["text"] == "think"
    assert [ev["output_index"] for ev in evs[2:9]] == [0] * 7
    assert evs[9]["output_index"] == 1


def test_failure_marks_the_partial_message_incomplete_and_reports_no_usage():
    e = encoder()
    e.opening()
    text(e, "part")
    (failed,) = events(e.failure(ErrorDetail(message="boom", type="server_error", param=None, code="upstream_error")))
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "upstream_error", "message": "boom"}
    assert failed["response"]["usage"] is None
    assert [(o["status"], o["content"][0]["text"]) for o in failed["response"]["output"]] == [("incomplete", "part")]


def test_non_stream_body_has_openais_shape():
    e = encoder({"model": "m", "input": "x", "metadata": {"a": "b"}})
    e.acc.text("hi")
    body = msgspec.to_builtins(e.body(finished(Usage(input_tokens=1, cached_input_tokens=1, output_tokens=1))))
    assert body["object"] == "response"
    assert body["id"].startswith("resp_") and isinstance(body["created_at"], int)
    assert (body["status"], body["model"]) == ("completed", "m")
    (message,) = body["output"]
    assert message["id"].startswith("msg_")
    assert message == {
        "id": message["id"],
        "status": "completed",
        "content": [{"text": "hi", "type": "output_text", "annotations": [], "logprobs": []}],
        "type": "message",
        "role": "assistant",
    }
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 1}
    assert (body["error"], body["incomplete_details"], body["metadata"]) == (None, None, {"a": "b"})
