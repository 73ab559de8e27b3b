"""Tool calls, tool outputs, output schemas and reasoning through the real `codex app-server` 0.169.0.

Two things are pinned here: the offline model's convention works on what codex really sends (tools inside a
`namespace`, `request_user_input`, `text.format`), and what app-server relays to its client for one and for
parallel calls, with and without `experimentalRawEvents` (docs/offline-model.md "Tool calls as codex relays
them"; the proxy's tool-calling code relies on these facts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from app.offline_model import FunctionCall, OfflineModel, Text, ToolCalls
from tests.conftest import wait_for

from .conftest import AppServer, app_server, codex_home

pytestmark = pytest.mark.codex

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get weather",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FILES = {
    "type": "namespace",
    "name": "files",
    "description": "File tools",
    "tools": [
        {
            "type": "function",
            "name": "read",
            "description": "Read a file",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ],
}
TOOLS = [WEATHER, FILES]
CANCELLED = "dynamic tool call was cancelled before receiving a response"


@pytest.fixture
def model(shared_model: OfflineModel) -> Iterator[OfflineModel]:
    """The shared model with earlier requests forgotten; a test must use every reply it scripts."""
    shared_model.requests.clear()
    yield shared_model
    assert shared_model.clear_script() == 0, "the test scripted replies codex never asked for"


def methods(events: list[dict[str, Any]]) -> list[str]:
    return [e["method"] for e in events]


def tool_requests(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("method") == "item/tool/call"]


def items(events: list[dict[str, Any]], method: str, kind: str) -> list[dict[str, Any]]:
    return [e["params"]["item"] for e in events if e.get("method") == method and e["params"]["item"]["type"] == kind]


async def until(
    codex: AppServer, thread_id: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 15
) -> list[dict[str, Any]]:
    """This thread's messages (notifications and server requests) until `done(seen)` holds."""
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(timeout):
        while not done(seen):
            event = await codex.events.get()
            if event.get("params", {}).get("threadId") in (thread_id, None):
                seen.append(event)
    return seen


async def answer(codex: AppServer, request: dict[str, Any], *texts: str) -> None:
    content = [{"type": "inputText", "text": t} for t in texts]
    await codex.send({"id": request["id"], "result": {"contentItems": content, "success": True}})


async def start(codex: AppServer, text: str, *, raw: bool = False, **turn: Any) -> tuple[str, str]:
    thread_id = await codex.start_thread(dynamicTools=TOOLS, experimentalRawEvents=raw)
    started = await codex.request(
        "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}], **turn}
    )
    return thread_id, started["turn"]["id"]


def items_events(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The `item/completed` notifications of `kind` items themselves (to find their position)."""
    return [e for e in events if e.get("method") == "item/completed" and e["params"]["item"]["type"] == kind]


def agent_text(events: list[dict[str, Any]]) -> str:
    return "".join(i["text"] for i in items(events, "item/completed", "agentMessage"))


# ---------------------------------------------------------------------------------------------------------------------
# The convention on what codex sends


async def test_call_lines_become_parallel_dynamic_tool_calls_and_outputs_come_back_by_name(
    codex: AppServer, model: OfflineModel
) -> None:
    text = 'Look these up:\ncall get_weather {"city": "Paris"}\ncall files.read {"path": "/etc/motd"}'
    thread_id, _ = await start(codex, text)

    events = await until(codex, thread_id, lambda seen: len(tool_requests(seen)) == 2)
    calls = {r["params"]["callId"]: r["params"] for r in tool_requests(events)}
    for request in tool_requests(events):
        await answer(codex, request, f"result of {request['params']['tool']}")
    events += await codex.read_turn(thread_id)

    assert sorted((p["tool"], p["namespace"], p["arguments"]) for p in calls.values()) == [
        ("get_weather", None, {"city": "Paris"}),
        ("read", "files", {"path": "/etc/motd"}),
    ]
    first, follow_up = model.requests
    assert first.rule == "calls"
    assert [(c.namespace, c.name, c.arguments) for c in first.calls] == [
        (None, "get_weather", '{"city": "Paris"}'),
        ("files", "read", '{"path": "/etc/motd"}'),
    ]
    assert follow_up.rule == "tool_outputs"
    assert agent_text(events) == "get_weather returned: result of get_weather\nfiles.read returned: result of read"


async def test_a_content_item_list_reaches_the_model_as_an_output_array(codex: AppServer, model: OfflineModel) -> None:
    thread_id, _ = await start(codex, "call get_weather {}")
    [request] = tool_requests(await until(codex, thread_id, lambda seen: bool(tool_requests(seen))))
    await answer(codex, request, "one, ", "two")
    events = await codex.read_turn(thread_id)

    [output] = [i for i in model.requests[1].input if i.type == "function_call_output"]
    assert [p.text for p in output.parts] == ["one, ", "two"]
    assert json.loads(model.requests[1].raw)["input"][-1]["output"] == [
        {"type": "input_text", "text": "one, "},
        {"type": "input_text", "text": "two"},
    ]
    assert agent_text(events) == "get_weather returned: one, two"


async def test_a_tool_that_is_not_offered_is_refused_in_text(codex: AppServer, model: OfflineModel) -> None:
    _, events = await codex.turn("call get_time {}", dynamicTools=TOOLS)

    assert tool_requests(events) == []
    assert agent_text(events) == (
        "offline model: cannot call get_time: no such tool is offered "
        "(offered: files.read, get_weather, request_user_input)"
    )


async def test_the_recorded_request_shows_tools_developer_messages_and_items(
    codex: AppServer, model: OfflineModel
) -> None:
    thread_id = await codex.start_thread(dynamicTools=TOOLS, developerInstructions="Answer like a pirate.")
    await codex.request(
        "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "call get_weather {}"}]}
    )
    [request] = tool_requests(await until(codex, thread_id, lambda seen: bool(tool_requests(seen))))
    await answer(codex, request, "rainy")
    await codex.read_turn(thread_id)

    first, follow_up = model.requests
    assert first.instructions is None  # 0.169.0 sends its base prompt as the first developer message instead
    assert "Answer like a pirate." in first.texts("developer")
    assert [s.name for s in first.tool_specs] == ["request_user_input", "get_weather", "files"]
    weather = first.tool_specs[1]
    assert weather.declaration == {
        "type": "function",
        "name": "get_weather",
        "description": "Get weather",
        "strict": False,
        "parameters": WEATHER["inputSchema"],
    }
    assert [(m.name, m.parameters) for m in first.tool_specs[2].tools] == [("read", FILES["tools"][0]["inputSchema"])]
    assert (first.tool_choice, first.parallel_tool_calls, first.text_format) == ("auto", True, None)
    tail = [(i.type, i.role, i.call_id, i.name) for i in follow_up.input[-3:]]
    call_id = first.calls[0].call_id
    assert tail == [
        ("message", "user", None, None),
        ("function_call", None, call_id, "get_weather"),
        ("function_call_output", None, call_id, None),
    ]
    assert follow_up.input[-1].output == "rainy"


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "when": {"type": "string", "format": "date"},
        "temps": {"type": "array", "items": {"type": "number", "minimum": -60}, "minItems": 2},
    },
    "required": ["city", "when", "temps"],
}


async def test_output_schema_arrives_as_text_format_and_is_answered_with_an_instance(
    codex: AppServer, model: OfflineModel
) -> None:
    thread_id = await codex.start_thread()
    await codex.request(
        "turn/start",
        {"threadId": thread_id, "input": [{"type": "text", "text": "weather report"}], "outputSchema": SCHEMA},
    )
    events = await codex.read_turn(thread_id)

    [request] = model.requests
    fmt = request.text_format
    assert fmt is not None
    # codex forwards the schema unchanged (no additionalProperties added), named codex_output_schema, strict
    assert (fmt.type, fmt.name, fmt.strict, fmt.schema) == ("json_schema", "codex_output_schema", True, SCHEMA)
    assert json.loads(request.raw)["text"] == {
        "format": {"type": "json_schema", "strict": True, "schema": SCHEMA, "name": "codex_output_schema"}
    }
    answer_value = json.loads(agent_text(events))
    jsonschema.validate(answer_value, SCHEMA)
    assert answer_value == {"city": "offline", "when": "2026-01-01", "temps": [0, 1]}


async def test_think_is_relayed_as_a_reasoning_summary_before_the_calls(codex: AppServer, model: OfflineModel) -> None:
    thread_id, _ = await start(codex, 'think: the user wants weather\ncall get_weather {"city": "Oslo"}')
    events = await until(codex, thread_id, lambda seen: bool(tool_requests(seen)))
    await answer(codex, tool_requests(events)[0], "cold")
    events += await codex.read_turn(thread_id)

    summaries = [i["summary"] for i in items(events, "item/completed", "reasoning")]
    assert summaries == [["the user wants weather"], ["the user wants weather"]]  # before the call and the answer
    first_reasoning = next(n for n, e in enumerate(events) if e in items_events(events, "reasoning"))
    assert events.index(tool_requests(events)[0]) > first_reasoning
    assert agent_text(events) == "get_weather returned: cold"


async def test_chunked_arguments_reach_the_client_whole(codex: AppServer, model: OfflineModel) -> None:
    model.script(FunctionCall("get_weather", '{"city":"Paris"}', "call_k", chunks=5), Text("done"))
    thread_id, _ = await start(codex, "go")

    events = await until(codex, thread_id, lambda seen: bool(tool_requests(seen)))
    await answer(codex, tool_requests(events)[0], "ok")
    events += await codex.read_turn(thread_id)

    assert tool_requests(events)[0]["params"]["arguments"] == {"city": "Paris"}
    # app-server has no notification for argument deltas: a client only ever sees the whole arguments
    assert not [m for m in methods(events) if "argument" in m.lower()]


# ---------------------------------------------------------------------------------------------------------------------
# What app-server relays for one and for parallel calls (docs/offline-model.md "Tool calls as codex relays them")


@pytest.mark.parametrize("raw", [False, True], ids=["plain", "raw-events"])
async def test_one_call_is_item_started_then_the_server_request_then_item_completed(
    codex: AppServer, model: OfflineModel, raw: bool
) -> None:
    model.script(FunctionCall("get_weather", '{"city":"Paris"}', "call_1"), Text("done"))
    thread_id, turn_id = await start(codex, "go", raw=raw)

    before = await until(
        codex,
        thread_id,
        lambda seen: bool(tool_requests(seen)) and (not raw or "rawResponse/completed" in methods(seen)),
    )
    [request] = tool_requests(before)
    await answer(codex, request, "sunny")
    after = await codex.read_turn(thread_id)

    assert request["params"] == {
        "threadId": thread_id,
        "turnId": turn_id,
        "callId": "call_1",
        "namespace": None,
        "tool": "get_weather",
        "arguments": {"city": "Paris"},
    }
    [started] = items(before, "item/started", "dynamicToolCall")
    assert (started["id"], started["status"]) == ("call_1", "inProgress")
    started_at = next(
        n for n, e in enumerate(before) if e["method"] == "item/started" and e["params"]["item"] == started
    )
    assert started_at < before.index(request)
    [completed] = items(after, "item/completed", "dynamicToolCall")
    assert (completed["status"], completed["success"], completed["contentItems"]) == (
        "completed",
        True,
        [{"type": "inputText", "text": "sunny"}],
    )
    raw_items = [e["params"]["item"] for e in before if e["method"] == "rawResponseItem/completed"]
    if raw:
        [raw_call] = [i for i in raw_items if i["type"] == "function_call"]
        assert (raw_call["call_id"], raw_call["name"], raw_call["arguments"]) == (
            "call_1",
            "get_weather",
            '{"city":"Paris"}',
        )
        # the raw item comes before codex starts the dynamic tool call
        raw_index = next(
            n
            for n, e in enumerate(before)
            if e["method"] == "rawResponseItem/completed" and e["params"]["item"] == raw_call
        )
        assert raw_index < before.index(request)
        [done] = [e["params"] for e in before if e["method"] == "rawResponse/completed"]
        assert done["responseId"] == model.requests[0].response_id
        assert done["usage"]["outputTokens"] == model.requests[0].usage.output_tokens  # type: ignore[union-attr]
    else:
        assert raw_items == []
        assert "rawResponse/completed" not in methods(before + after)


@pytest.mark.parametrize("raw", [False, True], ids=["plain", "raw-events"])
async def test_parallel_calls_all_arrive_before_any_is_answered(
    codex: AppServer, model: OfflineModel, raw: bool
) -> None:
    calls = [FunctionCall("get_weather", json.dumps({"city": c}), f"call_{c}") for c in ("Paris", "Rome", "Oslo")]
    model.script(ToolCalls(calls=calls), Text("done"))
    thread_id, _ = await start(codex, "go", raw=raw)

    before = await until(
        codex,
        thread_id,
        lambda seen: len(tool_requests(seen)) == 3 and (not raw or "rawResponse/completed" in methods(seen)),
    )
    requests = tool_requests(before)
    # answer in reverse order of arrival: the follow-up keeps the model's order regardless
    for request in reversed(requests):
        await answer(codex, request, f"weather in {request['params']['arguments']['city']}")
    after = await codex.read_turn(thread_id)

    assert sorted(r["params"]["callId"] for r in requests) == ["call_Oslo", "call_Paris", "call_Rome"]
    assert len(items(after, "item/completed", "dynamicToolCall")) == 3
    follow_up = model.requests[1]
    assert [(i.type, i.call_id) for i in follow_up.input if i.type.startswith("function_call")] == [
        ("function_call", "call_Paris"),
        ("function_call", "call_Rome"),
        ("function_call", "call_Oslo"),
        ("function_call_output", "call_Paris"),
        ("function_call_output", "call_Rome"),
        ("function_call_output", "call_Oslo"),
    ]
    if raw:
        raw_calls = [
            e["params"]["item"]["call_id"]
            for e in before
            if e["method"] == "rawResponseItem/completed" and e["params"]["item"]["type"] == "function_call"
        ]
        assert raw_calls == ["call_Paris", "call_Rome", "call_Oslo"]  # model order, unlike the server requests
        last_raw_call = max(
            n
            for n, e in enumerate(before)
            if e["method"] == "rawResponseItem/completed" and e["params"]["item"]["type"] == "function_call"
        )
        assert methods(before).index("rawResponse/completed") > last_raw_call


async def test_codex_dispatches_a_call_while_the_model_is_still_streaming(
    codex: AppServer, model: OfflineModel
) -> None:
    model.script(
        ToolCalls(
            calls=[FunctionCall("get_weather", "{}", "call_a"), FunctionCall("get_weather", "{}", "call_b")],
            hold_after=1,
        ),
        Text("done"),
    )
    thread_id, _ = await start(codex, "go", raw=True)

    early = await until(codex, thread_id, lambda seen: bool(tool_requests(seen)))
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.held == 1, what="model holding its 2nd call"))
    assert [r["params"]["callId"] for r in tool_requests(early)] == ["call_a"]
    assert "rawResponse/completed" not in methods(early)
    assert model.requests[0].outcome == "pending"

    model.release()
    late = await until(
        codex, thread_id, lambda seen: bool(tool_requests(seen)) and "rawResponse/completed" in methods(seen)
    )
    for request in tool_requests(early + late):
        await answer(codex, request, "ok")
    await codex.read_turn(thread_id)

    assert [r["params"]["callId"] for r in tool_requests(late)] == ["call_b"]


async def test_interrupt_with_unanswered_calls_fails_them_and_leaves_cancelled_outputs_in_history(
    model: OfflineModel, tmp_path: Path
) -> None:
    """Own app-server: codex logs ERROR lines for the cancelled calls, and the shared one must stay clean."""
    async with app_server(model, codex_home(tmp_path / "home")) as own:
        calls = [FunctionCall("get_weather", "{}", "call_x"), FunctionCall("get_weather", "{}", "call_y")]
        model.script(ToolCalls(calls=calls))
        thread_id, turn_id = await start(own, "go", raw=True)
        before = await until(
            own, thread_id, lambda seen: len(tool_requests(seen)) == 2 and "rawResponse/completed" in methods(seen)
        )

        await own.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        after = await own.read_turn(thread_id)
        await answer(own, tool_requests(before)[0], "too late")
        model.script(Text("fresh"))
        await own.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "again"}]})
        next_turn = await own.read_turn(thread_id)

        failed = items(after, "item/completed", "dynamicToolCall")
        assert sorted((i["id"], i["status"], i["success"]) for i in failed) == [
            ("call_x", "failed", False),
            ("call_y", "failed", False),
        ]
        [turn] = [e["params"]["turn"] for e in after if e["method"] == "turn/completed"]
        assert turn["status"] == "interrupted"
        cancelled_outputs = [
            e["params"]["item"]
            for e in after
            if e["method"] == "rawResponseItem/completed" and e["params"]["item"]["type"] == "function_call_output"
        ]
        assert sorted((o["call_id"], o["output"]) for o in cancelled_outputs) == [
            ("call_x", CANCELLED),
            ("call_y", CANCELLED),
        ]
        assert agent_text(next_turn) == "fresh"
        assert len(model.requests) == 2  # no follow-up for the interrupted calls; one request for the next turn
        history = model.requests[1].input
        assert [(i.call_id, i.output) for i in history if i.type == "function_call_output"] == [
            ("call_x", CANCELLED),
            ("call_y", CANCELLED),
        ]
        assert history[-2].role == "user" and history[-2].text.startswith("<turn_aborted>")
        await anyio.to_thread.run_sync(
            lambda: wait_for(lambda: any("could not find callback" in line for line in own.stderr), what="late answer")
        )
        assert sum(CANCELLED in line and "ERROR" in line for line in own.stderr) == 2


async def test_history_injected_on_a_fresh_thread_with_an_empty_turn_ends_with_the_tool_outputs(
    codex: AppServer, model: OfflineModel
) -> None:
    """The stateless continuation: `thread/inject_items` (call + output pairs), then `turn/start` with `input: []`."""
    thread_id = await codex.start_thread(dynamicTools=TOOLS)
    history = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "call get_weather {}"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    await codex.request("thread/inject_items", {"threadId": thread_id, "items": history})
    await codex.request("turn/start", {"threadId": thread_id, "input": []})
    events = await codex.read_turn(thread_id)

    [request] = model.requests
    assert [(i.type, i.role) for i in request.input[-3:]] == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert request.rule == "tool_outputs"
    assert agent_text(events) == "get_weather returned: sunny"


async def test_an_empty_text_input_adds_an_empty_user_message_after_injected_history(
    codex: AppServer, model: OfflineModel
) -> None:
    """The trap next to the test above: `input: [{type:text, text:""}]` is not "no input"."""
    thread_id = await codex.start_thread(dynamicTools=TOOLS)
    history = [
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    await codex.request("thread/inject_items", {"threadId": thread_id, "items": history})
    await codex.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": ""}]})
    await codex.read_turn(thread_id)

    [request] = model.requests
    assert (request.input[-1].type, request.input[-1].role, request.input[-1].text) == ("message", "user", "")
    assert request.rule is None


async def test_codex_printed_nothing_unexpected(codex: AppServer, model: OfflineModel) -> None:
    """Runs last in the module: the shared app-server logged no error or warning for anything above."""
    await codex.turn("final check")
    assert codex.unexpected_stderr() == []
