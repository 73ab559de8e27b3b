"""The convention any HTTP client can use (docs/offline-model.md "Convention"), straight over HTTP without codex.

The request bodies mimic what codex 0.169.0 sends (function tools, a `namespace` tool, `request_user_input`,
`text.format` json_schema); test_codex_tools.py proves the same rules through the real binary.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from app.offline_model import OfflineModel, Text

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get weather",
    "strict": False,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FILES = {
    "type": "namespace",
    "name": "files",
    "description": "File tools",
    "tools": [{"type": "function", "name": "read", "description": "Read", "strict": False, "parameters": {}}],
}
ASK = {"type": "function", "name": "request_user_input", "description": "Ask", "strict": False, "parameters": {}}
TOOLS = [ASK, WEATHER, FILES]


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def body(*items: dict[str, Any], tools: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": "offline",
        "stream": True,
        "input": list(items),
        "tools": TOOLS if tools is None else tools,
        **extra,
    }


def call_item(call_id: str, name: str, arguments: str = "{}", namespace: str | None = None) -> dict[str, Any]:
    item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
    return item | ({"namespace": namespace} if namespace else {})


def output_item(call_id: str, output: Any) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


class Answer:
    """One SSE response, parsed: the event kinds and the completed output items."""

    def __init__(self, sse: str) -> None:
        self.events: list[dict[str, Any]] = []
        for frame in sse.split("\n\n"):
            if frame.strip():
                _, data = frame.split("\n", 1)
                self.events.append(json.loads(data.removeprefix("data: ")))
        self.items = [e["item"] for e in self.events if e["type"] == "response.output_item.done"]

    @property
    def kinds(self) -> list[str]:
        return [i["type"] for i in self.items]

    @property
    def text(self) -> str:
        return "".join(p["text"] for i in self.items if i["type"] == "message" for p in i["content"])

    @property
    def calls(self) -> list[tuple[str | None, str, str]]:
        return [(i.get("namespace"), i["name"], i["arguments"]) for i in self.items if i["type"] == "function_call"]


async def ask(model: OfflineModel, payload: dict[str, Any]) -> Answer:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{model.base_url}/responses", json=payload)
    assert response.status_code == 200, response.text
    return Answer(response.text)


async def test_call_lines_become_parallel_calls_in_one_response(model: OfflineModel) -> None:
    text = 'Check both please.\ncall get_weather {"city": "Paris"}\n  call get_weather {"city":"Rome"}  \nthanks'

    answer = await ask(model, body(user(text)))

    assert answer.kinds == ["function_call", "function_call"]  # no message: other text is ignored for the reply
    assert answer.calls == [(None, "get_weather", '{"city": "Paris"}'), (None, "get_weather", '{"city":"Rome"}')]
    ids = [i["call_id"] for i in answer.items]
    assert len(set(ids)) == 2
    assert answer.events[-1]["type"] == "response.completed"
    [record] = model.requests
    assert record.rule == "calls"
    assert [c.call_id for c in record.calls] == ids


async def test_a_namespace_member_is_called_by_namespace_dot_name(model: OfflineModel) -> None:
    answer = await ask(model, body(user('call files.read {"path": "/tmp/x"}')))

    assert answer.calls == [("files", "read", '{"path": "/tmp/x"}')]


async def test_a_call_line_without_arguments_passes_an_empty_object(model: OfflineModel) -> None:
    answer = await ask(model, body(user("call request_user_input")))

    assert answer.calls == [(None, "request_user_input", "{}")]


@pytest.mark.parametrize(
    ("text", "tools", "expected"),
    [
        pytest.param(
            "call get_time {}",
            None,
            "offline model: cannot call get_time: no such tool is offered "
            "(offered: files.read, get_weather, request_user_input)",
            id="not-offered",
        ),
        pytest.param(
            "call read {}",
            None,
            "offline model: cannot call read: no such tool is offered "
            "(offered: files.read, get_weather, request_user_input)",
            id="namespace-member-needs-its-namespace",
        ),
        pytest.param(
            "call get_weather {}",
            [],
            "offline model: cannot call get_weather: no such tool is offered (offered: none)",
            id="no-tools",
        ),
        pytest.param(
            "call get_weather {city: Paris}",
            None,
            "offline model: cannot call get_weather: arguments are not valid JSON "
            "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
            id="invalid-json",
        ),
        pytest.param(
            'call get_weather ["Paris"]',
            None,
            'offline model: cannot call get_weather: arguments must be a JSON object, got ["Paris"]',
            id="not-an-object",
        ),
        pytest.param(
            'call get_weather {"city": "Paris"}\ncall nope {}\ncall get_weather {',
            None,
            "offline model: cannot call nope: no such tool is offered "
            "(offered: files.read, get_weather, request_user_input)\n"
            "offline model: cannot call get_weather: arguments are not valid JSON "
            "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
            id="one-bad-line-means-no-call-at-all",
        ),
    ],
)
async def test_a_call_that_cannot_be_made_is_answered_in_text(
    model: OfflineModel, text: str, tools: list[dict[str, Any]] | None, expected: str
) -> None:
    answer = await ask(model, body(user(text), tools=tools))

    assert answer.kinds == ["message"]
    assert answer.text == expected
    assert model.requests[0].rule == "call_error"


@pytest.mark.parametrize(
    "text",
    ["Call get_weather {}", "recall get_weather {}", "please call get_weather {} now"],
    ids=["capitalised", "prefix", "mid-line"],
)
async def test_only_whole_lowercase_call_lines_count(model: OfflineModel, text: str) -> None:
    answer = await ask(model, body(user(text)))

    assert answer.kinds == ["message"]
    assert answer.text == f"echo: {text}"


async def test_tabs_separate_a_call_line_like_spaces(model: OfflineModel) -> None:
    answer = await ask(model, body(user('\tcall\tget_weather\t{"city":"Oslo"}')))

    assert answer.calls == [(None, "get_weather", '{"city":"Oslo"}')]


async def test_call_lines_in_an_earlier_user_message_are_not_repeated(model: OfflineModel) -> None:
    answer = await ask(model, body(user("call get_weather {}"), user("and now?")))

    assert answer.text == "echo: and now?"


async def test_tool_outputs_at_the_end_are_reported_by_tool_name(model: OfflineModel) -> None:
    payload = body(
        user('call get_weather {"city":"Paris"}\ncall files.read {}'),  # the convention must not call again
        call_item("c1", "get_weather", '{"city":"Paris"}'),
        call_item("c2", "read", "{}", namespace="files"),
        output_item("c2", [{"type": "input_text", "text": "line "}, {"type": "input_text", "text": "two"}]),
        output_item("c1", "sunny 21C"),
        output_item("c9", "orphan"),
    )

    answer = await ask(model, payload)

    assert answer.kinds == ["message"]
    assert answer.text == "files.read returned: line two\nget_weather returned: sunny 21C\nc9 returned: orphan"
    assert model.requests[0].rule == "tool_outputs"


async def test_outputs_before_the_last_message_are_not_reported_again(model: OfflineModel) -> None:
    payload = body(
        user("call get_weather {}"),
        call_item("c1", "get_weather"),
        output_item("c1", "sunny"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
    )

    answer = await ask(model, payload)

    assert answer.calls == [(None, "get_weather", "{}")]  # the last user message still holds the call line


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "integer", "minimum": -50}},
    "required": ["city", "temp"],
    "additionalProperties": False,
}


def schema_format(schema: Any) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "name": "codex_output_schema", "strict": True, "schema": schema}}


async def test_an_output_schema_gets_a_valid_instance(model: OfflineModel) -> None:
    answer = await ask(model, body(user("weather as JSON"), text=schema_format(SCHEMA)))

    assert json.loads(answer.text) == {"city": "offline", "temp": 0}
    jsonschema.validate(json.loads(answer.text), SCHEMA)
    [record] = model.requests
    assert record.rule == "output_schema"
    assert record.output_schema == SCHEMA


async def test_json_object_format_gets_an_empty_object(model: OfflineModel) -> None:
    answer = await ask(model, body(user("json please"), text={"format": {"type": "json_object"}}))

    assert answer.text == "{}"


async def test_a_schema_the_model_cannot_satisfy_is_answered_in_text(model: OfflineModel) -> None:
    answer = await ask(model, body(user("x"), text=schema_format({"type": "string", "minLength": 3, "maxLength": 1})))

    assert answer.text == (
        "offline model: cannot build an instance of the output schema: minLength is larger than maxLength"
    )
    assert model.requests[0].rule == "schema_error"


async def test_with_a_schema_calls_come_first_and_the_final_answer_is_the_instance(model: OfflineModel) -> None:
    first = await ask(model, body(user("call get_weather {}"), text=schema_format(SCHEMA)))
    final = await ask(
        model,
        body(
            user("call get_weather {}"),
            call_item("c1", "get_weather"),
            output_item("c1", "x"),
            text=schema_format(SCHEMA),
        ),
    )

    assert first.calls == [(None, "get_weather", "{}")]
    assert json.loads(final.text) == {"city": "offline", "temp": 0}


@pytest.mark.parametrize(
    ("text", "reasoning", "kinds", "answer_text"),
    [
        pytest.param(
            "think: weigh it\nhello there", "weigh it", ["reasoning", "message"], "echo: hello there", id="then-echo"
        ),
        pytest.param(
            "think: only a thought", "only a thought", ["reasoning", "message"], "echo: only a thought", id="alone"
        ),
        pytest.param(
            "think: pick one\ncall get_weather {}", "pick one", ["reasoning", "function_call"], "", id="then-call"
        ),
        pytest.param("think: bad\ncall nope {}", "bad", ["reasoning", "message"], None, id="then-call-error"),
        pytest.param("I think: no", None, ["message"], "echo: I think: no", id="not-at-the-start"),
    ],
)
async def test_think_yields_a_reasoning_summary_before_the_answer(
    model: OfflineModel, text: str, reasoning: str | None, kinds: list[str], answer_text: str | None
) -> None:
    answer = await ask(model, body(user(text)))

    assert answer.kinds == kinds
    summaries = [p["text"] for i in answer.items if i["type"] == "reasoning" for p in i["summary"]]
    assert summaries == ([reasoning] if reasoning else [])
    if answer_text is not None:
        assert answer.text == answer_text


async def test_think_with_an_output_schema_and_tool_outputs(model: OfflineModel) -> None:
    schema_answer = await ask(model, body(user("think: shape it\nx"), text=schema_format(SCHEMA)))
    outputs_answer = await ask(
        model, body(user("think: report\ncall get_weather {}"), call_item("c1", "get_weather"), output_item("c1", "ok"))
    )

    assert schema_answer.kinds == ["reasoning", "message"]
    assert json.loads(schema_answer.text) == {"city": "offline", "temp": 0}
    assert outputs_answer.kinds == ["reasoning", "message"]
    assert outputs_answer.text == "get_weather returned: ok"


async def test_scripted_replies_and_failure_directives_win_over_the_convention(model: OfflineModel) -> None:
    model.script(Text("scripted"))
    scripted = await ask(model, body(user("call get_weather {}")))
    async with httpx.AsyncClient() as client:
        failed = await client.post(
            f"{model.base_url}/responses", json=body(user("call get_weather {}\n[[offline fail=503 code=busy]]"))
        )

    assert scripted.text == "scripted"
    assert failed.status_code == 503
    assert [r.reply for r in model.requests] == ["Text", "Fail"]
    assert model.requests[0].rule is None


async def test_a_directive_that_only_shapes_the_echo_leaves_the_convention_on(model: OfflineModel) -> None:
    answer = await ask(model, body(user("call get_weather {} [[offline chunks=2]]")))

    assert answer.calls == [(None, "get_weather", "{}")]


async def test_a_string_input_is_one_user_message(model: OfflineModel) -> None:
    answer = await ask(model, {"model": "offline", "input": "call get_weather {}", "tools": [WEATHER]})

    assert answer.calls == [(None, "get_weather", "{}")]
