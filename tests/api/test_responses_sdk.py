"""Issue 5 acceptance with the official `openai` package as the client: create, stream helper, raw stream events.

Every test goes client → real app (Granian) → real `codex app-server` → offline model, so the usage numbers the
SDK parses are the ones the offline model reported, relayed by codex as token-usage deltas.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from app.offline_model import Reasoning, Text, Usage
from tests.api.responses_support import MODEL, sdk_client

pytestmark = pytest.mark.codex


@pytest.fixture(scope="module")
def client(api) -> Iterator[openai.OpenAI]:
    with sdk_client(api) as c:
        yield c


def test_create_returns_the_offline_models_echo_as_output_text(client, offline_model):
    resp = client.responses.create(model=MODEL, input="hello responses")
    assert resp.output_text == "echo: hello responses"
    assert resp.status == "completed"
    assert resp.model == MODEL


def test_create_reports_exact_usage_from_the_model(client, offline_model):
    usage = Usage(input_tokens=123, output_tokens=45, cached_tokens=67)
    offline_model.script(Text("fixed answer", usage=usage))
    resp = client.responses.create(model=MODEL, input="count my tokens")
    assert resp.output_text == "fixed answer"
    assert resp.usage is not None
    assert resp.usage.input_tokens == 123
    assert resp.usage.input_tokens_details.cached_tokens == 67
    assert resp.usage.output_tokens == 45
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.usage.total_tokens == 168


def test_create_reports_reasoning_tokens_and_the_summary_item(client, offline_model):
    usage = Usage(input_tokens=50, output_tokens=30, reasoning_tokens=20)
    offline_model.script(Reasoning("weighing the options", then=Text("decided", usage=usage)))
    resp = client.responses.create(model=MODEL, input="think first", reasoning={"effort": "low", "summary": "auto"})
    assert resp.output_text == "decided"
    assert resp.usage is not None
    assert resp.usage.output_tokens_details.reasoning_tokens == 20
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (50, 30, 80)
    kinds = [item.type for item in resp.output]
    assert kinds == ["reasoning", "message"]
    reasoning = resp.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["weighing the options"]
    assert resp.reasoning is not None and resp.reasoning.summary == "auto"


def test_stream_helper_accumulates_the_same_text_and_a_final_response(client, offline_model):
    usage = Usage(input_tokens=11, output_tokens=3)
    offline_model.script(Text("one two three", chunks=["one", " two", " three"], usage=usage))
    with client.responses.stream(model=MODEL, input="stream it") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["one", " two", " three"]
    assert final.output_text == "one two three"
    assert final.status == "completed"
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)


def test_stream_helper_carries_reasoning_summary_events(client, offline_model):
    offline_model.script(Reasoning("a short thought", then=Text("after thinking")))
    with client.responses.stream(model=MODEL, input="think", reasoning={"summary": "detailed"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "a short thought"
    assert types.index("response.reasoning_summary_text.done") < types.index("response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "after thinking"


def test_raw_stream_events_have_strictly_increasing_sequence_numbers(client, offline_model):
    offline_model.script(Text("a b c d e", chunks=["a", " b", " c", " d", " e"]))
    events = list(client.responses.create(model=MODEL, input="raw", stream=True))
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a b c d e"
