"""Property-based fuzz of the tool and structured-output fields, both APIs, in process: never a 5xx, never a hang.

Bodies mix valid and broken tool declarations, tool_choice values, tool-call history and output formats. The
scripted model behind the seam honours whatever contract the request sets (it calls a declared tool when one is
required, answers with an instance of the output schema), so every 5xx would be the server's fault — except a
schema the instance generator cannot satisfy, where a 502 `invalid_structured_output` is the correct answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from app.codex import protocol as p
from app.codex.turn import TextDelta, ToolCall, ToolCallsRequested, TurnFinished, TurnRequest
from app.main import create_app
from app.offline_model.schema_instance import UnsupportedSchema, instance_for
from tests.seam import KEY, USAGE, ScriptedTurn
from tests.seam import settings as seam_settings


class ContractKeepingTurns:
    """Answers each turn the way a well-behaved model would for the contract the request set."""

    def __init__(self) -> None:
        self.unsatisfiable = False

    async def open(self, req: TurnRequest) -> ScriptedTurn:
        self.unsatisfiable = False
        if req.tools and "must call" in (req.developer_instructions or ""):
            tool = req.tools[0]
            name = tool.tools[0].name if isinstance(tool, p.DynamicNamespaceTool) else tool.name
            ns = tool.name if isinstance(tool, p.DynamicNamespaceTool) else None
            return ScriptedTurn(
                [
                    ToolCallsRequested((ToolCall("call_fz", name, "{}", ns),)),
                    TurnFinished(status="completed", usage=USAGE, reason="tool_calls"),
                ]
            )
        text = "fuzz"
        if req.output_schema is not None:
            try:
                text = json.dumps(instance_for(msgspec.json.decode(req.output_schema)))
            except (UnsupportedSchema, RecursionError):
                self.unsatisfiable = True
        elif "one JSON object" in (req.developer_instructions or ""):
            text = "{}"
        return ScriptedTurn([TextDelta(text), TurnFinished(status="completed", usage=USAGE)])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, ContractKeepingTurns]]:
    turns = ContractKeepingTurns()
    app = create_app(seam_settings(Path(tmp_path_factory.mktemp("fuzz"))), turns=turns)
    with TestClient(app=app, base_url="http://127.0.0.1") as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c, turns


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
names = st.sampled_from(["get_weather", "exec_command", "request_user_input", "bad name", "", "a" * 129, "f"])
schemas = st.one_of(
    st.just({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    st.just({"type": "array", "items": {"type": "integer"}, "minItems": 2}),
    st.just({"type": "string", "enum": ["x", "y"]}),
    st.just({"type": 5}),
    st.just({"$ref": "#/$defs/missing"}),
    st.just({"not": {}}),
    json_values,
)
function = st.fixed_dictionaries(
    {"name": names}, optional={"description": json_values | st.text(), "parameters": schemas, "strict": json_values}
)
chat_tool = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"), "function": function}),
    st.fixed_dictionaries({"type": st.sampled_from(["custom", "web_search", "function"])}),
    json_values,
)
flat_tool = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"), "name": names}, optional={"parameters": schemas}),
    st.fixed_dictionaries(
        {
            "type": st.just("namespace"),
            "name": names,
            "tools": st.lists(function.map(lambda f: {"type": "function", **f})),
        }
    ),
    chat_tool,
)
choice = st.one_of(
    st.sampled_from(["auto", "none", "required", "always"]),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "allowed_tools"]), "function": st.fixed_dictionaries({"name": names})}
    ),
    st.fixed_dictionaries({"type": st.just("function"), "name": names}),
    json_values,
)
call_ids = st.sampled_from(["c1", "c2", ""])
arguments = st.sampled_from(["{}", '{"a": 1}', "{bad", "", "[1]"]) | json_values
chat_messages = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": st.just("user"), "content": st.text(max_size=20)}),
        st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": st.text(max_size=20)}),
        st.fixed_dictionaries(
            {
                "role": st.just("assistant"),
                "tool_calls": st.lists(
                    st.fixed_dictionaries(
                        {
                            "id": call_ids,
                            "type": st.just("function"),
                            "function": st.fixed_dictionaries({"name": names, "arguments": arguments}),
                        }
                    ),
                    max_size=2,
                ),
            },
            optional={"content": st.none() | st.text(max_size=10)},
        ),
        st.fixed_dictionaries(
            {"role": st.just("tool"), "tool_call_id": call_ids | json_values, "content": st.text(max_size=10)}
        ),
        st.fixed_dictionaries({"role": st.just("function"), "name": names, "content": st.text(max_size=10)}),
    ),
    max_size=4,
)
# Most conversations end with a user message, as real ones do; some end elsewhere (a continuation or an error).
chat_messages = st.one_of(
    st.tuples(chat_messages, st.text(max_size=20)).map(lambda t: [*t[0], {"role": "user", "content": t[1]}]),
    st.tuples(chat_messages, st.text(max_size=20)).map(lambda t: [*t[0], {"role": "user", "content": t[1]}]),
    chat_messages,
    json_values,
)
response_format = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object", "xml"])}),
    st.fixed_dictionaries(
        {"type": st.just("json_schema")},
        optional={
            "json_schema": st.fixed_dictionaries(
                {}, optional={"name": names, "schema": schemas, "strict": st.booleans()}
            )
        },
    ),
    json_values,
)
chat_bodies = st.fixed_dictionaries(
    {"model": st.just("codev-5"), "messages": chat_messages},
    optional={
        "tools": st.lists(chat_tool, max_size=3) | json_values,
        "functions": st.lists(function, max_size=2),
        "tool_choice": choice,
        "function_call": choice,
        "parallel_tool_calls": st.booleans() | json_values,
        "response_format": response_format,
        "stream": st.booleans(),
    },
)
input_items = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "developer", "assistant"]), "content": st.text(max_size=20)}
        ),
        st.fixed_dictionaries(
            {"type": st.just("function_call"), "call_id": call_ids, "name": names, "arguments": arguments},
            optional={"namespace": st.sampled_from(["files", "client_tools"])},
        ),
        st.fixed_dictionaries(
            {"type": st.just("function_call_output"), "call_id": call_ids},
            optional={
                "output": st.text(max_size=10)
                | st.lists(st.fixed_dictionaries({"type": st.just("input_text"), "text": st.text(max_size=5)}))
            },
        ),
        st.fixed_dictionaries({"type": st.sampled_from(["reasoning", "item_reference", "custom_tool_call"])}),
    ),
    max_size=4,
)
input_items = st.one_of(
    st.tuples(input_items, st.text(max_size=20)).map(lambda t: [*t[0], {"role": "user", "content": t[1]}]),
    st.tuples(input_items, st.text(max_size=20)).map(lambda t: [*t[0], {"role": "user", "content": t[1]}]),
    input_items,
    json_values,
)
text_format = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object", "yaml"])}),
    st.fixed_dictionaries(
        {"type": st.just("json_schema")}, optional={"name": names, "schema": schemas, "strict": st.booleans()}
    ),
    json_values,
)
responses_bodies = st.fixed_dictionaries(
    {"model": st.just("codev-5"), "input": input_items | st.text(min_size=1, max_size=10)},
    optional={
        "tools": st.lists(flat_tool, max_size=3) | json_values,
        "tool_choice": choice,
        "parallel_tool_calls": st.booleans(),
        "text": st.fixed_dictionaries({}, optional={"format": text_format}),
        "instructions": st.text(max_size=10) | json_values,
        "stream": st.booleans(),
    },
)
# Mostly-valid bodies too, so the tool-call, continuation and structured paths run as often as the 400s.
ok_names = st.sampled_from(["get_weather", "exec_command", "request_user_input", "f"])
ok_schemas = st.sampled_from(
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"type": "array", "items": {"type": "integer"}, "minItems": 2},
        {"type": "string", "enum": ["x", "y"]},
    ]
)
ok_tools = st.lists(
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": ok_names})}),
    min_size=1,
    max_size=3,
    unique_by=lambda t: t["function"]["name"],
)
ok_choice = st.sampled_from(["auto", "none", "required"])
ok_user = st.text(max_size=20).map(lambda t: [{"role": "user", "content": t}])
ok_chat = st.fixed_dictionaries(
    {"model": st.just("codev-5"), "messages": ok_user, "tools": ok_tools},
    optional={
        "tool_choice": ok_choice,
        "parallel_tool_calls": st.booleans(),
        "stream": st.booleans(),
        "response_format": ok_schemas.map(
            lambda sc: {"type": "json_schema", "json_schema": {"name": "x", "schema": sc}}
        ),
    },
)
ok_responses = st.fixed_dictionaries(
    {"model": st.just("codev-5"), "input": st.text(min_size=1, max_size=10), "tools": ok_tools},
    optional={
        "tool_choice": ok_choice,
        "stream": st.booleans(),
        "text": ok_schemas.map(lambda sc: {"format": {"type": "json_schema", "name": "x", "schema": sc}}),
    },
)
bodies = st.one_of(
    ok_chat.map(lambda b: ("/v1/chat/completions", b)),
    ok_responses.map(lambda b: ("/v1/responses", b)),
    chat_bodies.map(lambda b: ("/v1/chat/completions", b)),
    responses_bodies.map(lambda b: ("/v1/responses", b)),
)
CONTRACT_CODES = {"invalid_structured_output"}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(case=bodies)
def test_no_tool_or_format_body_gets_a_5xx(client, case) -> None:
    http, turns = client
    route, body = case
    response = http.post(route, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    event(f"{route} {response.status_code}")
    if response.status_code >= 500:
        code = response.json()["error"]["code"]
        assert turns.unsatisfiable and code in CONTRACT_CODES, (response.status_code, response.text, body)
        return
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["type"], error
        return
    if response.headers["content-type"].startswith("text/event-stream"):
        failed = 'data: {"error":' in response.text or "event: response.failed" in response.text
        assert not failed or turns.unsatisfiable, (response.text[-500:], body)
