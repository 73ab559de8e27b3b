"""Pure chat-request validation: body bytes → struct (`decode_body`) → `TurnPlan` (`plan_chat`), as tables.

Each row names the parameter the 400 must point at, so a client (or a human reading the error) knows what to fix.
The HTTP layer only adds the envelope; these tables pin the rules themselves (issue 4, parity.md §4.1).
"""

from __future__ import annotations

import json

import pytest

from app.api.pipeline import decode_body
from app.codex.turn import HistoryMessage, HistoryToolCall, HistoryToolResult
from app.errors import ApiError
from app.model_ids import ResolvedModel
from app.openai.chat import ChatCompletionRequest, CompletionRequest
from app.translate.inbound.chat import plan_chat, plan_completion
from app.translate.plan import RequestInvalid, TurnPlan

USER = [{"role": "user", "content": "hi"}]
FN = {"type": "function", "function": {"name": "f"}}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def resolver(model: str) -> ResolvedModel | None:
    if model.lower().startswith("codev-5"):
        effort = "high" if model.lower().endswith("-high") else None
        return ResolvedModel(requested=model, model="gpt-5.2", effort=effort)
    return None


def plan(body: dict, *, ignore_system: bool = True, default_stream: bool = False) -> TurnPlan:
    req = decode_body(json.dumps(body).encode(), ChatCompletionRequest)
    return plan_chat(req, resolver, ignore_client_system_prompt=ignore_system, default_stream=default_stream)


def base(**extra: object) -> dict:
    return {"model": "codev-5", "messages": USER, **extra}


# ---- decode: malformed JSON and wrong types -------------------------------------------------------------------

DECODE_ERRORS = [
    pytest.param(b"", None, "invalid_json", id="empty-body"),
    pytest.param(b"   ", None, "invalid_json", id="blank-body"),
    pytest.param(b"{", None, "invalid_json", id="truncated"),
    pytest.param(b"not json", None, "invalid_json", id="garbage"),
    pytest.param(b"[]", None, "invalid_type", id="array-body"),
    pytest.param(b'"text"', None, "invalid_type", id="string-body"),
    pytest.param(b'{"model": 5, "messages": []}', "model", "invalid_type", id="model-int"),
    pytest.param(b'{"model": "codev-5", "messages": "hi"}', "messages", "invalid_type", id="messages-string"),
    pytest.param(b'{"model": "codev-5", "messages": [1]}', "messages[0]", "invalid_type", id="message-int"),
    pytest.param(b'{"model": "codev-5", "messages": [{}]}', "messages[0]", "invalid_type", id="message-no-role"),
    pytest.param(
        b'{"model": "codev-5", "messages": [{"role": "user", "content": 5}]}',
        "messages[0].content",
        "invalid_type",
        id="content-int",
    ),
    pytest.param(b'{"model": "codev-5", "messages": [], "stream": "yes"}', "stream", "invalid_type", id="stream-str"),
    pytest.param(b'{"model": "codev-5", "messages": [], "n": "two"}', "n", "invalid_type", id="n-str"),
    pytest.param(
        b'{"model": "codev-5", "messages": [], "stream_options": {"include_usage": "yes"}}',
        "stream_options.include_usage",
        "invalid_type",
        id="include-usage-str",
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [], "temperature": "hot"}', "temperature", "invalid_type", id="temp-str"
    ),
    pytest.param(
        b'{"model": "codev-5", "messages": [], "metadata": {"a": 1}}',
        "metadata[...]",
        "invalid_type",
        id="metadata-int",
    ),
]


@pytest.mark.parametrize(("raw", "param", "code"), DECODE_ERRORS)
def test_decode_errors_are_400_naming_the_parameter(raw: bytes, param: str | None, code: str) -> None:
    with pytest.raises(ApiError) as info:
        decode_body(raw, ChatCompletionRequest)
    assert info.value.status == 400
    assert info.value.code == code
    assert info.value.param == param
    assert info.value.message


def test_unknown_fields_are_ignored() -> None:
    assert plan(base(some_future_knob={"x": 1}, logit_bias={"1": 2.0})).turn.input_text == "hi"


# ---- plan: semantic checks in the reference's order ----------------------------------------------------------

INVALID = [
    pytest.param({"messages": USER}, 400, "model", "model_required", id="model-missing"),
    pytest.param({"model": "  ", "messages": USER}, 400, "model", "model_required", id="model-blank"),
    pytest.param({"model": "codev-5"}, 400, "messages", "invalid_request_error", id="messages-missing"),
    pytest.param({"model": "codev-5", "messages": []}, 400, "messages", "invalid_request_error", id="messages-empty"),
    pytest.param(base(n=2), 400, "n", "n_unsupported", id="n-2"),
    pytest.param(base(n=0), 400, "n", "n_unsupported", id="n-0"),
    pytest.param(base(logprobs=True), 400, "logprobs", "invalid_value", id="logprobs"),
    pytest.param(base(top_logprobs=3), 400, "top_logprobs", "invalid_value", id="top-logprobs"),
    pytest.param(
        base(tools=[{"type": "function", "function": {"name": "bad name"}}]),
        400,
        "tools[0].function.name",
        "invalid_value",
        id="tool-name",
    ),
    pytest.param(base(tools=[FN, FN]), 400, "tools[1].function.name", "invalid_value", id="tool-declared-twice"),
    pytest.param(
        base(tools=[{"type": "function", "function": {"name": "f", "parameters": [1]}}]),
        400,
        "tools[0].function.parameters",
        "invalid_value",
        id="tool-parameters-not-object",
    ),
    pytest.param(base(tools=[{"type": "function"}]), 400, "tools[0].function", "invalid_value", id="tool-no-fn"),
    pytest.param(base(tool_choice="required"), 400, "tool_choice", "invalid_value", id="required-without-tools"),
    pytest.param(base(tool_choice="always"), 400, "tool_choice", "invalid_value", id="tool-choice-unknown"),
    pytest.param(
        base(tools=[FN], tool_choice={"type": "function", "function": {"name": "g"}}),
        400,
        "tool_choice.function.name",
        "invalid_value",
        id="tool-choice-undeclared",
    ),
    pytest.param(
        base(tools=[FN], tool_choice={"type": "allowed_tools"}),
        400,
        "tool_choice.type",
        "invalid_value",
        id="tool-choice-type",
    ),
    pytest.param(
        base(functions=[{"name": "f"}], function_call={"name": "g"}),
        400,
        "function_call.name",
        "invalid_value",
        id="function-call-undeclared",
    ),
    pytest.param(
        base(response_format={"type": "json_schema"}),
        400,
        "response_format.json_schema",
        "invalid_value",
        id="json-schema-missing",
    ),
    pytest.param(
        base(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        400,
        "response_format.json_schema.schema",
        "invalid_value",
        id="json-schema-no-schema",
    ),
    pytest.param(
        base(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}),
        400,
        "response_format.json_schema.schema",
        "invalid_value",
        id="json-schema-invalid",
    ),
    pytest.param(
        base(response_format={"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}),
        400,
        "response_format.name",
        "invalid_value",
        id="json-schema-name",
    ),
    pytest.param(base(response_format={"type": "xml"}), 400, "response_format", "invalid_value", id="format-unknown"),
    pytest.param(
        base(messages=[*USER, {"role": "tool", "tool_call_id": "c9", "content": "42"}]),
        400,
        "messages[1].tool_call_id",
        "invalid_value",
        id="result-without-call",
    ),
    pytest.param(
        base(messages=[*USER, {"role": "assistant", "tool_calls": [CALL]}, *USER]),
        400,
        "messages[1].tool_calls[0]",
        "invalid_value",
        id="call-without-result",
    ),
    pytest.param(
        base(
            messages=[
                *USER,
                {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{x"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        ),
        400,
        "messages[1].tool_calls[0].function.arguments",
        "invalid_value",
        id="arguments-not-json",
    ),
    pytest.param(
        base(messages=[*USER, {"role": "function", "name": "f", "content": "42"}]),
        400,
        "messages[1].name",
        "invalid_value",
        id="function-result-without-call",
    ),
    pytest.param(base(model="gpt-4o"), 404, "model", "model_not_found", id="unknown-model"),
    pytest.param(base(reasoning_effort="max"), 400, "reasoning_effort", "invalid_value", id="effort-bad"),
    pytest.param(base(reasoning={"effort": "max"}), 400, "reasoning.effort", "invalid_value", id="reasoning-bad"),
    pytest.param(base(reasoning={"summary": "long"}), 400, "reasoning.summary", "invalid_value", id="summary-bad"),
    pytest.param(base(max_tokens=0), 400, "max_tokens", "invalid_value", id="max-tokens-0"),
    pytest.param(
        base(max_completion_tokens=-1), 400, "max_completion_tokens", "invalid_value", id="max-completion-neg"
    ),
    pytest.param(
        base(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role", "invalid_value", id="unknown-role"
    ),
    pytest.param(
        base(messages=[*USER, {"role": "assistant", "content": "a"}]), 400, "messages", "invalid_value", id="last-asst"
    ),
    pytest.param(
        base(messages=[{"role": "system", "content": "only system"}]), 400, "messages", "invalid_value", id="only-sys"
    ),
    pytest.param(
        base(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/i.png"}}]}]),
        400,
        "messages[0].content[0]",
        "invalid_value",
        id="image-part",
    ),
    pytest.param(
        base(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]),
        400,
        "messages[0].content[0]",
        "invalid_value",
        id="audio-part",
    ),
    pytest.param(
        base(messages=[{"role": "user", "content": [{"type": "hologram", "text": "x"}]}]),
        400,
        "messages[0].content[0].type",
        "invalid_value",
        id="unknown-part",
    ),
]


@pytest.mark.parametrize(("body", "status", "param", "code"), INVALID)
def test_invalid_requests_name_the_parameter(body: dict, status: int, param: str, code: str) -> None:
    with pytest.raises(RequestInvalid) as info:
        plan(body)
    assert (info.value.status, info.value.param, info.value.code) == (status, param, code)
    assert info.value.message


ORDER = [
    pytest.param({"messages": [], "n": 3}, "model", id="model-before-messages"),
    pytest.param({"model": "nope", "messages": [], "n": 3}, "messages", id="messages-before-n"),
    pytest.param({"model": "nope", "messages": USER, "n": 3, "logprobs": True}, "n", id="n-before-logprobs"),
    pytest.param({"model": "nope", "messages": USER, "logprobs": True}, "logprobs", id="logprobs-before-model-id"),
    pytest.param(
        {"model": "nope", "messages": [{"role": "robot", "content": "x"}]}, "model", id="model-id-before-roles"
    ),
]


@pytest.mark.parametrize(("body", "param"), ORDER)
def test_validation_order_follows_the_reference(body: dict, param: str) -> None:
    with pytest.raises(RequestInvalid) as info:
        plan(body)
    assert info.value.param == param


IGNORED_KNOBS = [
    pytest.param({"temperature": 1.7}, id="temperature"),
    pytest.param({"top_p": 0.3}, id="top_p"),
    pytest.param({"frequency_penalty": 1.0, "presence_penalty": -1.0}, id="penalties"),
    pytest.param({"logit_bias": {"50256": -100}}, id="logit_bias"),
    pytest.param({"seed": 42}, id="seed"),
    pytest.param({"stop": ["\n\n"]}, id="stop-list"),
    pytest.param({"stop": "END"}, id="stop-str"),
    pytest.param({"store": False, "service_tier": "auto"}, id="store"),
    pytest.param({"parallel_tool_calls": False}, id="parallel-tool-calls"),
    pytest.param({"tool_choice": "none"}, id="tool-choice-none"),
    pytest.param({"tool_choice": "auto"}, id="tool-choice-auto"),
    pytest.param({"response_format": {"type": "text"}}, id="response-format-text"),
    pytest.param({"logprobs": False}, id="logprobs-false"),
    pytest.param({"n": 1}, id="n-1"),
    pytest.param({"user": "u-1", "metadata": {"k": "v"}}, id="user-metadata"),
]


@pytest.mark.parametrize("extra", IGNORED_KNOBS)
def test_knobs_codex_cannot_honour_are_accepted(extra: dict) -> None:
    p = plan(base(**extra))
    assert p.turn.input_text == "hi"


# ---- plan: what the turn looks like ---------------------------------------------------------------------------


def test_earlier_turns_become_history_and_the_last_user_message_is_the_input() -> None:
    p = plan(
        base(
            messages=[
                {"role": "system", "content": "be terse"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer", "tool_calls": [{**CALL, "id": "call_1"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}]},
            ]
        )
    )
    assert p.turn.input_text == "second\npart"
    assert p.turn.history == (
        HistoryMessage("user", "first question"),
        HistoryMessage("assistant", "first answer"),
        HistoryToolCall("call_1", "f", "{}"),
        HistoryToolResult("call_1", "42"),
    )


def test_system_and_developer_messages_are_dropped_by_default() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "developer", "content": "D"}, *USER]
    assert plan(base(messages=msgs)).turn.developer_instructions is None


def test_system_and_developer_messages_become_developer_instructions_when_allowed() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "developer", "content": "D"}, *USER]
    assert plan(base(messages=msgs), ignore_system=False).turn.developer_instructions == "S\n\nD"


EFFORT = [
    pytest.param({}, None, id="none"),
    pytest.param({"model": "codev-5-high"}, "high", id="model-suffix"),
    pytest.param({"model": "codev-5-high", "reasoning_effort": "low"}, "low", id="reasoning_effort-overrides"),
    pytest.param({"model": "codev-5-high", "reasoning": {"effort": "minimal"}}, "minimal", id="reasoning.effort"),
]


@pytest.mark.parametrize(("extra", "effort"), EFFORT)
def test_reasoning_effort_overrides_the_model_suffix(extra: dict, effort: str | None) -> None:
    assert plan(base(**extra)).turn.effort == effort


STREAM = [
    pytest.param({}, False, False, id="default-off"),
    pytest.param({}, True, True, id="default-on"),
    pytest.param({"stream": False}, True, False, id="explicit-false-wins"),
    pytest.param({"stream": True}, False, True, id="explicit-true"),
]


@pytest.mark.parametrize(("extra", "default", "expected"), STREAM)
def test_stream_key_wins_over_the_default(extra: dict, default: bool, expected: bool) -> None:
    assert plan(base(**extra), default_stream=default).stream is expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param({}, False, id="empty"),
        pytest.param({"include_usage": False}, False, id="false"),
        pytest.param({"include_usage": True}, True, id="true"),
    ],
)
def test_include_usage(options: dict | None, expected: bool) -> None:
    extra = {"stream": True} if options is None else {"stream": True, "stream_options": options}
    assert plan(base(**extra)).include_usage is expected


def test_requested_model_is_echoed_as_sent() -> None:
    assert plan(base(model="CODEV-5")).requested_model == "CODEV-5"


# ---- legacy completions -------------------------------------------------------------------------------------

COMPLETIONS_INVALID = [
    pytest.param({"prompt": "x"}, "model", id="model-missing"),
    pytest.param({"model": "codev-5"}, "prompt", id="prompt-missing"),
    pytest.param({"model": "codev-5", "prompt": []}, "prompt", id="prompt-empty"),
    pytest.param({"model": "codev-5", "prompt": "x", "n": 2}, "n", id="n-2"),
    pytest.param({"model": "codev-5", "prompt": "x", "logprobs": 1}, "logprobs", id="logprobs"),
    pytest.param({"model": "codev-5", "prompt": "x", "echo": True}, "echo", id="echo"),
    pytest.param({"model": "codev-5", "prompt": "x", "suffix": "}"}, "suffix", id="suffix"),
    pytest.param({"model": "nope", "prompt": "x"}, "model", id="unknown-model"),
]


@pytest.mark.parametrize(("body", "param"), COMPLETIONS_INVALID)
def test_completions_invalid_requests_name_the_parameter(body: dict, param: str) -> None:
    req = decode_body(json.dumps(body).encode(), CompletionRequest)
    with pytest.raises(RequestInvalid) as info:
        plan_completion(req, resolver, default_stream=False)
    assert info.value.param == param


def test_completions_prompt_list_is_joined_into_one_input() -> None:
    req = decode_body(b'{"model": "codev-5", "prompt": ["a", "b"]}', CompletionRequest)
    assert plan_completion(req, resolver, default_stream=False).turn.input_text == "a\nb"
