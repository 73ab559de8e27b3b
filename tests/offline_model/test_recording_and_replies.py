"""What the offline model records about a request, the tool-call replies tests script, and bounded recording."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from app.offline_model import ContentPart, FunctionCall, OfflineModel, TextFormat, ToolCalls, Usage
from tests.conftest import wait_for

from .test_convention_http import FILES, WEATHER, Answer, ask, call_item, output_item, user

CODEX_LIKE = {
    "model": "offline",
    "stream": True,
    "tools": [WEATHER, FILES, {"type": "web_search"}],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "text": {"format": {"type": "json_schema", "name": "codex_output_schema", "strict": True, "schema": {}}},
    "input": [
        {
            "type": "message",
            "id": "msg_1",
            "role": "developer",
            "content": [{"type": "input_text", "text": "base prompt"}, {"type": "input_text", "text": "DEV"}],
        },
        user("weather?"),
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}]},
        call_item("c1", "get_weather", '{"city":"Paris"}'),
        call_item("c2", "read", "{}", namespace="files"),
        output_item("c1", "sunny"),
        output_item("c2", [{"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "data:x"}]),
    ],
}


async def test_the_record_keeps_tools_items_and_format_as_sent(model: OfflineModel) -> None:
    await ask(model, CODEX_LIKE)

    [r] = model.requests
    assert r.tools == ["get_weather", "files", "web_search"]  # the flat list older tests use
    weather, files, web = r.tool_specs
    assert (weather.type, weather.name, weather.parameters, weather.strict) == (
        "function",
        "get_weather",
        WEATHER["parameters"],
        False,
    )
    assert weather.declaration == WEATHER
    assert [(m.type, m.name, m.description) for m in files.tools] == [("function", "read", "Read")]
    assert web.declaration == {"type": "web_search"}
    assert sorted(r.functions) == ["files.read", "get_weather"]
    assert (r.tool_choice, r.parallel_tool_calls) == ("auto", True)
    assert r.text_format == TextFormat(type="json_schema", name="codex_output_schema", schema={}, strict=True)
    assert r.output_schema == {}
    assert r.texts("developer") == ["base prompt", "DEV"]
    assert [(i.type, i.call_id, i.name, i.namespace, i.arguments, i.output) for i in r.input[3:]] == [
        ("function_call", "c1", "get_weather", None, '{"city":"Paris"}', None),
        ("function_call", "c2", "read", "files", "{}", None),
        ("function_call_output", "c1", None, None, None, "sunny"),
        ("function_call_output", "c2", None, None, None, "a"),
    ]
    assert r.input[-1].parts == [ContentPart("input_text", "a"), ContentPart("input_image", image_url="data:x")]
    assert (r.input[0].id, r.input[2].type, r.input[2].text) == ("msg_1", "reasoning", "hmm")
    assert r.raw_size == len(r.raw)


async def test_a_request_without_a_format_has_no_output_schema(model: OfflineModel) -> None:
    await ask(model, {"model": "offline", "input": [user("hi")]})

    [r] = model.requests
    assert (r.text_format, r.output_schema, r.tool_specs, r.functions) == (None, None, [], {})


async def test_tool_calls_stream_reasoning_then_message_then_calls(model: OfflineModel) -> None:
    model.script(
        ToolCalls(
            reasoning="plan it",
            text="Let me look.",
            calls=[
                FunctionCall("get_weather", '{"city":"Paris"}', "c1"),
                FunctionCall("read", "{}", "c2", namespace="files"),
            ],
        )
    )

    answer = await ask(model, {"model": "offline", "input": [user("x")]})

    assert answer.kinds == ["reasoning", "message", "function_call", "function_call"]
    assert [e["output_index"] for e in answer.events if e["type"] == "response.output_item.done"] == [0, 1, 2, 3]
    assert answer.text == "Let me look."
    assert answer.calls == [(None, "get_weather", '{"city":"Paris"}'), ("files", "read", "{}")]
    [r] = model.requests
    assert r.reply == "ToolCalls"
    # output = 3 message words + (1 + 1) + (1 + 1) call words + 2 reasoning words
    assert r.usage == Usage(input_tokens=11, output_tokens=9, reasoning_tokens=2)


async def test_argument_deltas_follow_chunks(model: OfflineModel) -> None:
    model.script(
        ToolCalls(
            calls=[
                FunctionCall("get_weather", '{"city":"Paris"}', "c1", chunks=['{"ci', 'ty":"Pa', 'ris"}']),
                FunctionCall("get_weather", '{"city":"Rome"}', "c2", chunks=4),
                FunctionCall("get_weather", "{}", "c3"),
            ]
        )
    )

    answer = await ask(model, {"model": "offline", "input": [user("x")]})

    by_item: dict[str, list[str]] = {}
    for e in answer.events:
        if e["type"] == "response.function_call_arguments.delta":
            by_item.setdefault(e["item_id"], []).append(e["delta"])
    assert list(by_item.values()) == [['{"ci', 'ty":"Pa', 'ris"}'], ['{"ci', 'ty":', '"Rom', 'e"}'], ["{}"]]
    added = [e["item"] for e in answer.events if e["type"] == "response.output_item.added"]
    assert [(i["arguments"], i["status"]) for i in added] == [("", "in_progress")] * 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FunctionCall("f", "{}", chunks=["{"]), "join to exactly"),
        (lambda: FunctionCall("f", "{}", chunks=0), ">= 1"),
        (lambda: ToolCalls(calls=[FunctionCall("f", "{}"), FunctionCall("g", "{}")]), "distinct call ids"),
        (lambda: ToolCalls(calls=[], text="ab", text_chunks=["a"]), "join to exactly"),
    ],
    ids=["chunks-differ", "zero-chunks", "same-call-id", "text-chunks-differ"],
)
def test_inconsistent_scripts_are_refused_when_written(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_function_call_keeps_its_positional_form() -> None:
    call = FunctionCall("get_weather", '{"city":"Paris"}', "call_w1", Usage(input_tokens=1, output_tokens=2))

    assert (call.call_id, call.chunks, call.namespace, call.argument_deltas()) == (
        "call_w1",
        None,
        None,
        ['{"city":"Paris"}'],
    )
    assert FunctionCall("f", "{}").call_id == "call_offline_1"


async def test_hold_after_pauses_the_stream_until_release(model: OfflineModel) -> None:
    model.script(ToolCalls(calls=[FunctionCall("a", "{}", "c1"), FunctionCall("b", "{}", "c2")], hold_after=1))
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{model.base_url}/responses", json={"model": "offline", "input": [user("x")]}) as resp,
    ):
        lines = resp.aiter_lines()
        seen: list[str] = []
        while '"response.output_item.done"' not in "".join(seen):
            seen.append(await anext(lines))
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.held == 1, what="stream held"))
        assert model.requests[0].outcome == "pending"
        assert len(model.requests[0].calls) == 1

        model.release()
        rest = "\n".join([line async for line in lines])

    answer = Answer("\n".join(seen) + "\n" + rest)
    assert [c[1] for c in answer.calls] == ["a", "b"]
    assert model.held == 0
    assert model.requests[0].outcome == "completed"


def post_many(model: OfflineModel, n: int) -> list[int]:
    statuses = []
    with httpx.Client() as client:
        for i in range(n):
            payload = {"model": "offline", "input": [user(f"request {i} " + "x" * 1000)]}
            statuses.append(client.post(f"{model.base_url}/responses", json=payload).status_code)
    return statuses


async def test_bounded_recording_keeps_the_newest_requests_and_caps_raw() -> None:
    async with OfflineModel(max_recorded=3, max_raw_bytes=64) as model:
        statuses = await anyio.to_thread.run_sync(post_many, model, 5)

        assert statuses == [200] * 5
        assert [r.index for r in model.requests] == [2, 3, 4]
        assert [r.last_user_text.split()[1] for r in model.requests] == ["2", "3", "4"]
        assert all(len(r.raw) == 64 and r.raw_size > 1000 for r in model.requests)
        # the reply was chosen from the whole body, before the record was trimmed
        assert model.requests[-1].reply_text.startswith("echo: request 4 xxx")


async def test_recording_is_unbounded_by_default(model: OfflineModel) -> None:
    await anyio.to_thread.run_sync(post_many, model, 4)

    assert [r.index for r in model.requests] == [0, 1, 2, 3]
    assert json.loads(model.requests[0].raw)["input"][0]["content"][0]["text"].startswith("request 0")


@pytest.mark.parametrize("kwargs", [{"max_recorded": -1}, {"max_raw_bytes": -1}])
def test_negative_bounds_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        OfflineModel(**kwargs)


async def test_release_before_the_hold_lets_the_stream_through(model: OfflineModel) -> None:
    model.release()
    model.script(ToolCalls(calls=[FunctionCall("a", "{}", "c1")], hold_after=1))

    with anyio.fail_after(10):
        answer = await ask(model, {"model": "offline", "input": [user("x")]})

    assert [c[1] for c in answer.calls] == ["a"]
