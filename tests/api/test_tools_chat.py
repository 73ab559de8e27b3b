"""Issue 9 acceptance, chat: client tools and structured output through the real app, codex and offline model.

The official `openai` SDK is the client. The offline model calls tools when the last user message holds
`call <tool> <json>` lines and answers `<tool> returned: <output>` once the conversation ends with tool results
(docs/offline-model.md, "The convention"), so each test is a real tool loop: call → the test runs the tool →
result → final answer — and the recorded provider request shows what Codex really sent the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from app.offline_model import Text
from tests.api.chat_support import MODEL, wait_idle
from tests.api.responses_support import sdk_client

pytestmark = pytest.mark.codex

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def client(api) -> Iterator[openai.OpenAI]:
    with sdk_client(api) as c:  # closed after the test: an unclosed client leaves sockets to the GC
        yield c


def run_tool(name: str, arguments: str) -> str:
    """The 'client side' of the loop: a deterministic tool implementation."""
    args = json.loads(arguments)
    return {"get_weather": lambda: f"sunny 21C in {args['city']}", "get_time": lambda: "12:00"}[name]()


def test_non_stream_tool_loop_calls_then_answers_from_the_tool_result(api, client, offline_model):
    before = len(offline_model.requests)
    messages: list = [{"role": "user", "content": 'What is the weather?\ncall get_weather {"city": "Paris"}'}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert (call.type, call.function.name, call.function.arguments) == ("function", "get_weather", '{"city": "Paris"}')
    assert first.usage is not None and first.usage.prompt_tokens > 0

    messages += [choice.message.model_dump(exclude_none=True)]
    messages += [
        {"role": "tool", "tool_call_id": call.id, "content": run_tool(call.function.name, call.function.arguments)}
    ]
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "get_weather returned: sunny 21C in Paris"

    # Exactly two model requests: the abandoned item/tool/call was never answered (no third request), and the
    # follow-up carried the call and its result as real tool items, not as user text.
    requests = offline_model.requests[before:]
    assert len(requests) == 2
    follow_up = requests[1]
    assert [(i.type, i.call_id) for i in follow_up.input[-2:]] == [
        ("function_call", call.id),
        ("function_call_output", call.id),
    ]
    assert follow_up.input[-1].output == "sunny 21C in Paris"
    assert follow_up.input[-2].arguments == '{"city": "Paris"}'
    assert not any("sunny 21C" in i.text for i in follow_up.input if i.type == "message")
    wait_idle(api, offline_model)


def test_streamed_tool_call_fragments_accumulate_to_the_exact_arguments(api, client, offline_model):
    args = '{"city": "Zürich", "note": "' + "x" * 9000 + '"}'
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"call get_weather {args}"}],
        tools=[WEATHER],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    fragments = [tc for d in deltas for tc in d.tool_calls or []]
    first, *rest = fragments
    assert (first.index, first.type, first.function.name) == (0, "function", "get_weather")
    assert first.id and all(f.id is None and f.function.name is None for f in rest)
    assert "".join(f.function.arguments or "" for f in fragments) == args
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    wait_idle(api, offline_model)


def test_parallel_calls_of_one_response_come_back_together(client, offline_model):
    text = 'Both please:\ncall get_weather {"city": "Oslo"}\ncall get_time {}'
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], tools=[WEATHER, TIME]
    )
    calls = out.choices[0].message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city": "Oslo"}'),
        ("get_time", "{}"),
    ]
    assert len({c.id for c in calls}) == 2

    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], tools=[WEATHER, TIME], stream=True
    )
    indexed = [(tc.index, tc.function.name) for c in stream if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [i for i, name in indexed if name] == [0, 1]


def test_parallel_tool_calls_false_returns_at_most_one_call(client):
    text = 'call get_weather {"city": "Oslo"}\ncall get_time {}'
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], tools=[WEATHER, TIME], parallel_tool_calls=False
    )
    assert [c.function.name for c in out.choices[0].message.tool_calls or []] == ["get_weather"]


def test_text_before_a_call_is_kept(client, offline_model):
    from app.offline_model import FunctionCall, ToolCalls

    offline_model.script(ToolCalls(calls=[FunctionCall("get_time", "{}", call_id="call_t1")], text="Let me look."))
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "time?"}], tools=[TIME])
    message = out.choices[0].message
    assert message.content == "Let me look."
    assert [(c.id, c.function.name) for c in message.tool_calls or []] == [("call_t1", "get_time")]


def test_the_model_sees_only_the_clients_tools(client, offline_model):
    before = len(offline_model.requests)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[WEATHER, TIME])
    (request,) = offline_model.requests[before:]
    assert sorted(request.tools) == ["get_time", "get_weather", "request_user_input"]
    weather = next(t for t in request.tool_specs if t.name == "get_weather")
    assert weather.description == "Current weather for a city"
    assert weather.parameters == WEATHER["function"]["parameters"]


def test_tool_choice_none_offers_no_tools(client, offline_model):
    before = len(offline_model.requests)
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "call get_time {}"}], tools=[TIME], tool_choice="none"
    )
    assert out.choices[0].finish_reason == "stop" and not out.choices[0].message.tool_calls
    assert offline_model.requests[before:][0].tools == ["request_user_input"]


def test_named_tool_choice_offers_only_that_tool_and_tells_the_model(client, offline_model):
    before = len(offline_model.requests)
    out = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "call get_time {}"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in out.choices[0].message.tool_calls or []] == ["get_time"]
    (request,) = offline_model.requests[before:]
    assert sorted(request.tools) == ["get_time", "request_user_input"]
    assert any("must call the tool `get_time`" in t for t in request.texts("developer"))


def test_required_tool_choice_answered_in_text_is_an_error_not_a_success(client, offline_model):
    offline_model.script(Text("I would rather not."))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[TIME], tool_choice="required"
        )
    assert info.value.status_code == 502
    assert info.value.body["code"] == "tool_choice_not_followed"  # type: ignore[index]


class Weather(BaseModel):
    city: str
    temperature_c: int
    conditions: list[str]


def test_parse_with_a_pydantic_model_returns_valid_structured_output(client, offline_model):
    before = len(offline_model.requests)
    out = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "weather in Rome"}], response_format=Weather
    )
    parsed = out.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    (request,) = offline_model.requests[before:]
    schema = request.output_schema  # the SDK's strict schema reached the model as the turn's output schema
    assert schema is not None and schema["required"] == ["city", "temperature_c", "conditions"]
    assert schema["additionalProperties"] is False


def test_schema_violating_reply_is_a_clear_error(client, offline_model):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema, "strict": True}}
    offline_model.script(Text('{"n": "three"}'))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "n?"}], response_format=fmt)
    body = info.value.body
    assert info.value.status_code == 502
    assert body["code"] == "invalid_structured_output" and body["param"] == "response_format"  # type: ignore[index]
    assert "$.n" in body["message"]  # type: ignore[index]

    offline_model.script(Text("not json at all"))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "n?"}], response_format=fmt, stream=True
    )
    with pytest.raises(openai.APIError, match="not valid JSON"):
        list(stream)


def test_json_object_mode_returns_a_json_object(client):
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "give json"}], response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(out.choices[0].message.content or ""), dict)


PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_a_tool_result_with_an_image_reaches_the_model_as_a_tool_output(client, offline_model):
    before = len(offline_model.requests)
    messages = [
        {"role": "user", "content": "screenshot?"},
        {"role": "assistant", "tool_calls": [{"id": "c_img", "type": "function", "function": {"name": "get_time"}}]},
        {
            "role": "tool",
            "tool_call_id": "c_img",
            "content": [{"type": "text", "text": "here"}, {"type": "image_url", "image_url": {"url": PNG}}],
        },
    ]
    out = client.chat.completions.create(model=MODEL, messages=messages, tools=[TIME])  # type: ignore[arg-type]
    assert out.choices[0].message.content == "get_time returned: here"
    output = offline_model.requests[before:][0].input[-1]
    assert output.type == "function_call_output"
    assert [p.type for p in output.parts] == ["input_text", "input_image"]
