"""The real pinned `codex app-server` talking to the offline model: what codex relays, and what it sent.

One model and one app-server per module (starting codex costs ~0.3 s); every test uses a fresh ephemeral
thread and scripts the model for exactly the requests it triggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from app.offline_model import (
    Disconnect,
    Fail,
    FunctionCall,
    OfflineModel,
    Reasoning,
    StreamError,
    Text,
    Usage,
)
from tests.conftest import wait_for

from .conftest import AppServer

pytestmark = pytest.mark.codex


@pytest.fixture
def model(shared_model: OfflineModel) -> OfflineModel:
    """The shared model, with the previous test's requests forgotten so indexes start at the test's first request."""
    shared_model.requests.clear()
    return shared_model


def of(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [e["params"] for e in events if e.get("method") == method]


def deltas(events: list[dict[str, Any]]) -> list[str]:
    return [p["delta"] for p in of(events, "item/agentMessage/delta")]


async def test_plain_turn_streams_the_echo_codex_sent(codex: AppServer, model: OfflineModel) -> None:
    _, events = await codex.turn("Say hello to the offline model")

    [request] = model.requests
    assert request.last_user_text == "Say hello to the offline model"
    assert request.model == "offline"
    assert request.stream is True
    # one item/agentMessage/delta per provider delta, unchanged
    assert deltas(events) == request.deltas
    assert "".join(deltas(events)) == "echo: Say hello to the offline model"
    [turn] = of(events, "turn/completed")
    assert turn["turn"]["status"] == "completed"


async def test_usage_reported_by_codex_is_what_the_model_sent(codex: AppServer, model: OfflineModel) -> None:
    thread_id, events = await codex.turn("count my tokens please")
    # thread/tokenUsage/updated may trail turn/completed (app-server-protocol.md §8)
    updates = of(events, "thread/tokenUsage/updated")
    while not updates:
        event = await codex.next_event()
        if event.get("method") == "thread/tokenUsage/updated" and event["params"]["threadId"] == thread_id:
            updates.append(event["params"])

    [request] = model.requests
    sent = request.usage
    assert sent is not None
    assert (
        sent.input_tokens == len(" ".join([request.instructions or ""] + [i.text for i in request.input]).split()) + 10
    )
    assert updates[-1]["tokenUsage"]["last"] == {
        "totalTokens": sent.total_tokens,
        "inputTokens": sent.input_tokens,
        "cachedInputTokens": 0,
        "cacheWriteInputTokens": 0,
        "outputTokens": sent.output_tokens,
        "reasoningOutputTokens": 0,
    }


async def test_provider_sees_no_builtin_tool_but_request_user_input(codex: AppServer, model: OfflineModel) -> None:
    await codex.turn("which tools do you have?")

    [request] = model.requests
    assert set(request.tools) <= {"request_user_input"}, request.tools


async def test_scripted_text_pins_the_exact_deltas(codex: AppServer, model: OfflineModel) -> None:
    model.script(
        Text("Hello world, again", chunks=["Hel", "lo world", ", again"], usage=Usage(input_tokens=7, output_tokens=3))
    )

    _, events = await codex.turn("anything")

    assert deltas(events) == ["Hel", "lo world", ", again"]
    [completed_item] = [p["item"] for p in of(events, "item/completed") if p["item"]["type"] == "agentMessage"]
    assert completed_item["text"] == "Hello world, again"


async def test_reasoning_summary_is_relayed_with_reasoning_tokens(codex: AppServer, model: OfflineModel) -> None:
    model.script(Reasoning("Weighing the options", then=Text("Decided.")))

    thread_id, events = await codex.turn("think first")
    updates = of(events, "thread/tokenUsage/updated")
    while not updates:
        event = await codex.next_event()
        if event.get("method") == "thread/tokenUsage/updated" and event["params"]["threadId"] == thread_id:
            updates.append(event["params"])

    summary = "".join(p["delta"] for p in of(events, "item/reasoning/summaryTextDelta"))
    assert summary == "Weighing the options"
    assert "".join(deltas(events)) == "Decided."
    sent = model.requests[0].usage
    assert sent is not None and sent.reasoning_tokens == 3
    assert updates[-1]["tokenUsage"]["last"]["reasoningOutputTokens"] == 3


async def test_function_call_becomes_a_dynamic_tool_call_and_its_output_reaches_the_model(
    codex: AppServer, model: OfflineModel
) -> None:
    model.script(FunctionCall("get_weather", '{"city":"Paris"}', "call_w1"), Text("It is sunny in Paris."))
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Get weather",
        "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    thread_id = await codex.start_thread(dynamicTools=[tool])
    await codex.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "Weather?"}]})

    call = await codex.next_event()
    while call.get("method") != "item/tool/call":
        call = await codex.next_event()
    assert call["params"]["tool"] == "get_weather"
    assert call["params"]["arguments"] == {"city": "Paris"}
    await codex.send(
        {"id": call["id"], "result": {"contentItems": [{"type": "inputText", "text": "sunny 21C"}], "success": True}}
    )
    events = await codex.read_turn(thread_id)

    assert "".join(deltas(events)) == "It is sunny in Paris."
    first, follow_up = model.requests
    assert "get_weather" in first.tools
    outputs = [i for i in follow_up.input if i.type == "function_call_output"]
    assert [(o.call_id, o.output) for o in outputs] == [("call_w1", "sunny 21C")]


# How codex 0.169.0 maps provider failures (retries 0); the table in docs/offline-model.md is this test.
FAILURES = [
    pytest.param(
        Fail(400, "context_length_exceeded", "Your input exceeds the context window of this model."),
        "contextWindowExceeded",
        id="http400-context_length_exceeded",
    ),
    pytest.param(Fail(400, "invalid_request_error", "bad"), "other", id="http400-other"),
    pytest.param(Fail(401, "invalid_api_key", "no"), {"httpConnectionFailed": {"httpStatusCode": 401}}, id="http401"),
    pytest.param(Fail(404, "model_not_found", "no such model"), "modelNotFound", id="http404-model_not_found"),
    pytest.param(
        Fail(429, "rate_limit_exceeded", "slow down"),
        {"responseTooManyFailedAttempts": {"httpStatusCode": 429}},
        id="http429-rate_limit",
    ),
    pytest.param(Fail(429, "usage_limit_reached", "limit"), "usageLimitExceeded", id="http429-usage_limit_reached"),
    pytest.param(Fail(429, "insufficient_quota", "quota"), "usageLimitExceeded", id="http429-insufficient_quota"),
    pytest.param(Fail(500, "server_error", "boom"), "internalServerError", id="http500"),
    pytest.param(Fail(502, "bad_gateway", "boom"), {"httpConnectionFailed": {"httpStatusCode": 502}}, id="http502"),
    pytest.param(Fail(503, "server_is_overloaded", "busy"), "serverOverloaded", id="http503-overloaded"),
    pytest.param(StreamError("context_length_exceeded", "too long"), "contextWindowExceeded", id="failed-context"),
    pytest.param(StreamError("insufficient_quota", "quota"), "usageLimitExceeded", id="failed-quota"),
    pytest.param(StreamError("rate_limit_exceeded", "slow down"), "rateLimitExceeded", id="failed-rate_limit"),
    pytest.param(StreamError("server_is_overloaded", "busy"), "serverOverloaded", id="failed-overloaded"),
    pytest.param(StreamError("server_error", "broke", after_text="partial "), "other", id="failed-other"),
    pytest.param(StreamError("invalid_prompt", "bad prompt"), "other", id="failed-invalid_prompt"),
    pytest.param(StreamError("server_error", "x", event="error"), "other", id="error-event"),
    pytest.param(Disconnect(after_text="partial "), "other", id="disconnect"),
]


@pytest.mark.parametrize(("reply", "info"), FAILURES)
async def test_provider_failure_maps_to_codex_error_info(
    codex: AppServer, model: OfflineModel, reply: Any, info: Any
) -> None:
    model.script(reply)

    _, events = await codex.turn("fail please")

    [error] = of(events, "error")
    assert error["error"]["codexErrorInfo"] == info
    assert error["willRetry"] is False
    [turn] = of(events, "turn/completed")
    assert turn["turn"]["status"] == "failed"
    assert turn["turn"]["error"]["codexErrorInfo"] == info
    # a failed turn leaves the thread in systemError, not idle (wait for turn/completed, not for idle)
    statuses = [p["status"]["type"] for p in of(events, "thread/status/changed")]
    assert statuses[-1] == "systemError"
    assert len(model.requests) == 1  # retries 0: codex did not retry


async def test_prompt_directive_sets_chunking_across_process_boundaries(codex: AppServer, model: OfflineModel) -> None:
    _, events = await codex.turn("one two three four five six [[offline chunks=3 interval_ms=20]]")

    assert deltas(events) == ["echo: one two", " three four", " five six"]


async def test_prompt_directive_fails_the_turn(codex: AppServer, model: OfflineModel) -> None:
    _, events = await codex.turn("[[offline fail=503 code=server_is_overloaded]]")

    [turn] = of(events, "turn/completed")
    assert turn["turn"]["error"]["codexErrorInfo"] == "serverOverloaded"


async def test_interrupt_during_a_hang_cancels_the_model_response(codex: AppServer, model: OfflineModel) -> None:
    thread_id = await codex.start_thread()
    started = await codex.request(
        "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "wait [[offline hang]]"}]}
    )
    cancelled_before = model.cancelled
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.in_flight == 1, what="model request in flight"))
    await codex.request("turn/interrupt", {"threadId": thread_id, "turnId": started["turn"]["id"]})
    events = await codex.read_turn(thread_id)

    assert of(events, "turn/completed")[0]["turn"]["status"] == "interrupted"
    await anyio.to_thread.run_sync(
        lambda: wait_for(lambda: model.cancelled == cancelled_before + 1, what="model saw codex go away")
    )
    assert model.in_flight == 0
    assert model.requests[-1].outcome == "cancelled"


async def test_codex_printed_nothing_unexpected(codex: AppServer, model: OfflineModel, tmp_path: Path) -> None:
    """Runs last in the module: everything above must not have made codex log errors or warnings."""
    await codex.turn("final check")
    assert codex.unexpected_stderr() == []
