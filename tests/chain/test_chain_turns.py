"""Turns through the whole public path, with the official SDK pointed at the Worker.

Usage is scripted on the model with numbers no hop could estimate, so equality proves it crossed intact.
"""

from __future__ import annotations

import json

import pytest
from openai.types import CompletionUsage
from openai.types.responses import ResponseUsage

from app.offline_model import Text, Usage
from tests.chain.conftest import Chain
from tests.conftest import wait_for

pytestmark = [pytest.mark.chain, pytest.mark.usefixtures("script_guard")]

MODEL = "codex-5"
REPORTED = Usage(input_tokens=321, output_tokens=7, cached_tokens=64, reasoning_tokens=5)


def assert_chat_usage(usage: CompletionUsage | None) -> None:
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (321, 7, 328)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 64
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 5


def assert_responses_usage(usage: ResponseUsage | None) -> None:
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (321, 7, 328)
    assert usage.input_tokens_details.cached_tokens == 64
    assert usage.output_tokens_details.reasoning_tokens == 5


def test_chat_non_stream_has_the_models_exact_usage(chain: Chain) -> None:
    chain.model.script(Text("through every hop", usage=REPORTED))
    with chain.openai(chain.keys.alice) as client:
        completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "through every hop"
    assert_chat_usage(completion.usage)


def test_chat_stream_has_every_delta_and_the_exact_usage(chain: Chain) -> None:
    chain.model.script(Text("one two three", chunks=["one", " two", " three"], usage=REPORTED))
    with chain.openai(chain.keys.alice) as client:
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == [
        "one",
        " two",
        " three",
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert_chat_usage(chunks[-1].usage)


def test_responses_non_stream_has_the_models_exact_usage(chain: Chain) -> None:
    chain.model.script(Text("answered", usage=REPORTED))
    with chain.openai(chain.keys.alice) as client:
        response = client.responses.create(model=MODEL, input="hi")
    assert response.status == "completed"
    assert response.output_text == "answered"
    assert_responses_usage(response.usage)


def test_responses_stream_has_every_event_and_the_exact_usage(chain: Chain) -> None:
    chain.model.script(Text("alpha beta", chunks=["alpha", " beta"], usage=REPORTED))
    with chain.openai(chain.keys.alice) as client:
        events = list(client.responses.create(model=MODEL, input="hi", stream=True))
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["alpha", " beta"]
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert events[-1].type == "response.completed"
    assert_responses_usage(events[-1].response.usage)


def test_stream_arrives_while_the_model_is_still_producing_and_keepalives_pass(chain: Chain) -> None:
    """Six deltas 400 ms apart. The first must reach the client while the model still has deltas to send
    (a hop that buffers would hand it over at the end), and the app's keepalive comments sent in the pauses
    (PROXY_SSE_KEEPALIVE_MS=200) must arrive between the deltas, not be dropped or held back by any hop.
    Judged by what the model had sent at each arrival, not by timing gaps, which a busy machine squeezes."""
    chunks = [f"part{i} " for i in range(6)]
    chain.model.script(Text("".join(chunks), chunks=chunks, interval_s=0.4))
    sent_when_received: list[int] = []
    keepalives_between_deltas = 0
    text = ""
    with chain.stream("/v1/responses", {"model": MODEL, "input": "stream please", "stream": True}) as r:
        assert "content-encoding" not in r.headers
        for line in r.iter_lines():
            if line.startswith(": keepalive") and 0 < len(sent_when_received) < len(chunks):
                keepalives_between_deltas += 1
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "response.output_text.delta":
                    sent_when_received.append(chain.model.progress()[0])
                    text += event["delta"]
    assert text == "".join(chunks)
    assert sent_when_received[0] < len(chunks), sent_when_received
    assert keepalives_between_deltas >= 1


def test_client_disconnect_at_the_worker_interrupts_the_turn(chain: Chain) -> None:
    """The client goes away after the first delta of a long answer: the Worker drops its origin request,
    Traefik its upstream, the app interrupts the Codex turn, and codex closes its model request, which the
    offline model records as cancelled long before the answer could have finished."""
    chunks = [f"w{i} " for i in range(60)]  # 0.25 s apart: 15 s if nobody interrupted it
    chain.model.script(Text("".join(chunks), chunks=chunks, interval_s=0.25))
    cancelled_before = chain.model.cancelled
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "long one"}]}
    with chain.stream("/v1/chat/completions", body) as r:
        request_id = r.headers["x-request-id"]
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                break  # the first delta is in: hang up
    sent, _ = wait_for(
        lambda: (p := chain.model.progress())[1] == "cancelled" and p, timeout=30, what="the model's cancellation"
    )
    assert sent < len(chunks)
    assert chain.model.cancelled == cancelled_before + 1
    chain.app.wait_logged(request_id)


WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def test_a_streamed_tool_call_and_its_follow_up_pass_every_hop_intact(chain: Chain) -> None:
    """The call's fragments reach the client whole through the Worker and Traefik; the result goes back the same
    way and the model sees it as a real tool output."""
    from app.offline_model import FunctionCall, ToolCalls

    args = '{"city": "Zürich", "pad": "' + "x" * 4000 + '"}'
    chain.model.script(ToolCalls(calls=[FunctionCall("get_weather", args, call_id="call_chain_1")], usage=REPORTED))
    ask = {"role": "user", "content": "weather?"}
    with chain.openai(chain.keys.alice) as client:
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=[ask], tools=[WEATHER], stream=True)  # type: ignore[list-item]
        )
        fragments = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert (fragments[0].id, fragments[0].function.name) == ("call_chain_1", "get_weather")  # type: ignore[union-attr]
        assert "".join(f.function.arguments or "" for f in fragments) == args  # type: ignore[union-attr]
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
            "tool_calls"
        ]
        call = {"id": "call_chain_1", "type": "function", "function": {"name": "get_weather", "arguments": args}}
        messages = [ask, {"role": "assistant", "tool_calls": [call]}]
        messages.append({"role": "tool", "tool_call_id": "call_chain_1", "content": "sunny"})
        final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    assert final.choices[0].message.content == "get_weather returned: sunny"
    follow_up = chain.model.requests[-1]
    assert [(i.type, i.call_id) for i in follow_up.input[-2:]] == [
        ("function_call", "call_chain_1"),
        ("function_call_output", "call_chain_1"),
    ]
