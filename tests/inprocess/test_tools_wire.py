"""Tool calls and structured output on the wire, both APIs, stream and non-stream — on scripted turn events.

What the real codex path proves end to end (tests/api/test_tools_*.py) is checked here for its many shapes in
milliseconds: exact frames, ids, indexes, held text, contract errors, and the TurnRequest the pipeline built.
"""

from __future__ import annotations

import json

import openai
import pytest

from app.codex.turn import HistoryMessage, HistoryToolCall, HistoryToolResult, TextDelta, ToolCall, TurnFinished
from tests.seam import USAGE, Seam, calls, text

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
TIME = {"type": "function", "function": {"name": "get_time"}}
FLAT_WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
USER = [{"role": "user", "content": "hi"}]
MODEL = "codev-5"


def sse(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


# ---- chat ---------------------------------------------------------------------------------------------------


async def test_chat_body_with_calls_has_null_content_and_tool_calls_finish(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_weather", '{"city":"Rome"}'), ToolCall("c2", "get_time", "{}")))
    out = await s.sdk.chat.completions.create(model=MODEL, messages=USER, tools=[WEATHER, TIME])  # type: ignore[list-item]
    message = out.choices[0].message
    assert (message.content, out.choices[0].finish_reason) == (None, "tool_calls")
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("c1", "get_weather", '{"city":"Rome"}'),
        ("c2", "get_time", "{}"),
    ]
    req = s.turns.last
    assert [t.name for t in req.tools] == ["get_weather", "get_time"]
    assert bytes(req.tools[1].input_schema) == b'{"type":"object","properties":{}}'  # filled in for dynamicTools


async def test_chat_stream_sends_name_first_then_argument_fragments(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_weather", '{"a":1}'), before=["Checking."]))
    r = await s.http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": USER, "tools": [WEATHER], "stream": True}
    )
    events = sse(r.text)
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Checking."}
    assert deltas[2] == {
        "tool_calls": [
            {"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        ]
    }
    assert deltas[3] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"
    assert r.text.endswith("data: [DONE]\n\n")


async def test_chat_history_becomes_typed_items_in_order(s: Seam) -> None:
    messages = [
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "let me see",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "warm"}]},
        {"role": "developer", "content": "D2"},
    ]
    s.turns.script(text("ok"))
    messages.append({"role": "user", "content": "and now?"})
    await s.sdk.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    req = s.turns.last
    assert req.developer_instructions == "S1"
    assert req.history == (
        HistoryMessage("user", "q"),
        HistoryMessage("assistant", "let me see"),
        HistoryToolCall("c1", "get_weather", "{}"),
        HistoryToolResult("c1", "warm"),
        HistoryMessage("developer", "D2"),
    )
    assert req.input_text == "and now?"


async def test_chat_conversation_ending_with_a_tool_result_continues_without_new_input(s: Seam) -> None:
    s.turns.script(text("done"))
    messages = [
        *USER,
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_time"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
    ]
    out = await s.sdk.chat.completions.create(model=MODEL, messages=messages, tools=[TIME])  # type: ignore[arg-type]
    assert out.choices[0].message.content == "done"
    assert (s.turns.last.input_text, s.turns.last.history[-1]) == ("", HistoryToolResult("c1", "12:00"))


async def test_legacy_functions_and_function_call_history(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c9", "get_time", "{}")), text("fine"))
    fns = [{"name": "get_time"}]
    out = await s.http.post("/v1/chat/completions", json={"model": MODEL, "messages": USER, "functions": fns})
    assert out.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    messages = [
        *USER,
        {"role": "assistant", "content": None, "function_call": {"name": "get_time", "arguments": "{}"}},
        {"role": "function", "name": "get_time", "content": "noon"},
    ]
    out = await s.http.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "functions": fns})
    assert out.status_code == 200, out.text
    assert s.turns.last.history[-1] == HistoryToolResult("call_legacy_1", "noon")


async def test_required_tool_choice_holds_streamed_text_until_the_call(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_time", "{}"), before=["a", "b"]))
    r = await s.http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": USER, "tools": [TIME], "tool_choice": "required", "stream": True},
    )
    deltas = [e["choices"][0]["delta"] for e in sse(r.text) if e["choices"]]
    assert deltas[1] == {"content": "ab"}  # released in one piece, right before the call
    assert "tool_calls" in deltas[2]
    assert "must call at least one" in (s.turns.last.developer_instructions or "")


async def test_required_tool_choice_without_a_call_streams_an_error_and_no_text(s: Seam) -> None:
    s.turns.script(text("just text"))
    r = await s.http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": USER, "tools": [TIME], "tool_choice": "required", "stream": True},
    )
    assert "just text" not in r.text
    (error,) = [e for e in sse(r.text) if "error" in e]
    assert error["error"]["code"] == "tool_choice_not_followed"


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        pytest.param('{"n": 1}', None, id="valid"),
        pytest.param('{"n": "x"}', "does not match the schema at $.n", id="wrong-type"),
        pytest.param("{}", "does not match the schema at $", id="missing"),
        pytest.param("```json\n{}\n```", "not valid JSON", id="fenced"),
    ],
)
async def test_json_schema_answers_are_validated(s: Seam, reply: str, fragment: str | None) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    s.turns.script(text(reply))
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": True}}
    r = await s.http.post("/v1/chat/completions", json={"model": MODEL, "messages": USER, "response_format": fmt})
    sent = s.turns.last.output_schema
    assert sent is not None and json.loads(bytes(sent)) == schema
    if fragment is None:
        assert r.status_code == 200 and json.loads(r.json()["choices"][0]["message"]["content"]) == {"n": 1}
    else:
        assert r.status_code == 502, r.text
        assert r.json()["error"]["code"] == "invalid_structured_output"
        assert fragment in r.json()["error"]["message"]


async def test_json_object_mode_tells_the_model_and_checks_the_answer(s: Seam) -> None:
    s.turns.script(text("[1]"), text('{"a": 1}'))
    body = {"model": MODEL, "messages": USER, "response_format": {"type": "json_object"}}
    assert (await s.http.post("/v1/chat/completions", json=body)).status_code == 502
    assert (await s.http.post("/v1/chat/completions", json=body)).status_code == 200
    assert "one JSON object" in (s.turns.last.developer_instructions or "")
    assert s.turns.last.output_schema is None


async def test_a_usage_record_is_written_for_a_tool_call_turn(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_time", "{}")))
    await s.sdk.chat.completions.create(model=MODEL, messages=USER, tools=[TIME])  # type: ignore[list-item]
    (record,) = (await s.http.get("/v1/usage/raw")).json()["data"]
    assert (record["outcome"], record["total_tokens"]) == ("completed", USAGE.total_tokens)


# ---- responses -----------------------------------------------------------------------------------------------


async def test_responses_body_holds_function_call_items_with_their_own_ids(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_weather", '{"x":1}'), ToolCall("c2", "get_weather", "{}"), before=["hm"]))
    out = await s.sdk.responses.create(model=MODEL, input="hi", tools=[FLAT_WEATHER])  # type: ignore[list-item]
    assert [o.type for o in out.output] == ["message", "function_call", "function_call"]
    fc = [o for o in out.output if o.type == "function_call"]
    assert [(o.call_id, o.arguments, o.status) for o in fc] == [
        ("c1", '{"x":1}', "completed"),
        ("c2", "{}", "completed"),
    ]
    assert len({o.id for o in out.output}) == 3


async def test_responses_stream_indexes_items_in_order(s: Seam) -> None:
    s.turns.script(calls(ToolCall("c1", "get_weather", "{}"), before=["hm"]))
    r = await s.http.post(
        "/v1/responses", json={"model": MODEL, "input": "hi", "tools": [FLAT_WEATHER], "stream": True}
    )
    events = sse(r.text)
    added = [(e["output_index"], e["item"]["type"]) for e in events if e["type"] == "response.output_item.added"]
    assert added == [(0, "message"), (1, "function_call")]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert (done["output_index"], done["arguments"], done["name"]) == (1, "{}", "get_weather")
    final = events[-1]
    assert final["type"] == "response.completed"
    assert [o["type"] for o in final["response"]["output"]] == ["message", "function_call"]


async def test_responses_accept_the_chat_style_nested_declaration_and_echo_what_was_offered(s: Seam) -> None:
    tools = [WEATHER, {"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]}]
    out = await s.http.post("/v1/responses", json={"model": MODEL, "input": "hi", "tools": tools})
    assert out.status_code == 200, out.text
    assert [(t["type"], t["name"]) for t in out.json()["tools"]] == [("function", "get_weather")]
    assert [t.name for t in s.turns.last.tools] == ["get_weather"]


async def test_responses_named_tool_choice_echo_and_namespace(s: Seam) -> None:
    ns = {"type": "namespace", "name": "files", "description": "d", "tools": [{"type": "function", "name": "read"}]}
    s.turns.script(calls(ToolCall("c1", "read", "{}", namespace="files")))
    out = await s.http.post(
        "/v1/responses",
        json={
            "model": MODEL,
            "input": "hi",
            "tools": [ns, FLAT_WEATHER],
            "tool_choice": {"type": "function", "name": "read"},
        },
    )
    body = out.json()
    assert body["tool_choice"] == {"type": "function", "name": "read"}
    assert body["output"][0]["namespace"] == "files"
    assert [t["type"] for t in body["tools"]] == ["namespace"]  # only the named tool was offered


async def test_responses_text_format_json_schema_is_echoed(s: Seam) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    s.turns.script(text('{"a": "b"}'))
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    out = await s.http.post("/v1/responses", json={"model": MODEL, "input": "hi", "text": {"format": fmt}})
    assert out.json()["text"]["format"] == fmt


async def test_responses_follow_up_with_string_and_part_outputs(s: Seam) -> None:
    s.turns.script(text("ok"))
    items = [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "a", "output": "one"},
        {"type": "function_call_output", "call_id": "b", "output": [{"type": "input_text", "text": "two"}]},
    ]
    out = await s.http.post("/v1/responses", json={"model": MODEL, "input": items, "tools": [FLAT_WEATHER]})
    assert out.status_code == 200, out.text
    assert s.turns.last.history[-2:] == (HistoryToolResult("a", "one"), HistoryToolResult("b", "two"))
    assert s.turns.last.input_text == ""


async def test_a_failed_turn_after_calls_is_still_an_error(s: Seam) -> None:
    from app.codex.turn import CodexError

    s.turns.script([TextDelta("x"), TurnFinished(status="failed", usage=None, error=CodexError("boom"))])
    with pytest.raises(openai.APIStatusError) as info:
        await s.sdk.responses.create(model=MODEL, input="hi", tools=[FLAT_WEATHER])  # type: ignore[list-item]
    assert info.value.status_code == 502


# ---- tool types Codex cannot offer --------------------------------------------------------------------------


async def test_chat_refuses_a_tool_type_codex_cannot_offer(s: Seam) -> None:
    r = await s.http.post(
        "/v1/chat/completions",
        json={"model": MODEL, "messages": USER, "tools": [WEATHER, {"type": "custom", "name": "grammar"}]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "tools[1].type"
    assert "only as functions" in r.json()["error"]["message"]
    assert s.turns.requests == []  # refused before any turn


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_names_the_tool_types_left_out_in_a_header(s: Seam, stream: bool) -> None:
    s.turns.script(text("ok"))
    tools = [FLAT_WEATHER, {"type": "web_search"}, {"type": "file_search"}, {"type": "web_search"}]
    r = await s.http.post("/v1/responses", json={"model": MODEL, "input": "hi", "tools": tools, "stream": stream})
    assert r.status_code == 200
    assert r.headers["x-codex-tools-left-out"] == "web_search,file_search"
    assert [t.name for t in s.turns.last.tools] == ["get_weather"]


async def test_responses_with_only_function_tools_has_no_left_out_header(s: Seam) -> None:
    s.turns.script(text("ok"))
    r = await s.http.post("/v1/responses", json={"model": MODEL, "input": "hi", "tools": [FLAT_WEATHER]})
    assert r.status_code == 200 and "x-codex-tools-left-out" not in r.headers
