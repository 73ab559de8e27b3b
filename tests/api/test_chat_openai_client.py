"""The official `openai` package works unchanged against the real app + real codex + offline model (issue 4).

Usage is compared exactly with what the offline model reported in `response.completed`: the app must relay
codex's `thread/tokenUsage/updated` delta, never an estimate.
"""

from __future__ import annotations

import openai
import pytest

from app.offline_model import Reasoning, Text, Usage
from tests.api.chat_support import MODEL
from tests.api_harness import API_KEY

pytestmark = pytest.mark.codex


@pytest.fixture
def client(api) -> openai.OpenAI:
    with openai.OpenAI(base_url=api.base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=30) as c:
        yield c


def test_non_stream(client: openai.OpenAI, model) -> None:
    model.script(Text("Hello from offline.", usage=Usage(input_tokens=21, output_tokens=4)))
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert (choice.index, choice.message.role, choice.message.content) == (0, "assistant", "Hello from offline.")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 4)
    assert completion.usage.total_tokens == 25


def test_stream_without_usage(client: openai.OpenAI, model) -> None:
    model.script(Text("one two three", chunks=["one", " two", " three"]))
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}


def test_stream_include_usage_equals_what_the_model_reported(client: openai.OpenAI, model) -> None:
    reported = Usage(input_tokens=1234, output_tokens=56, cached_tokens=1000)
    model.script(Text("cached answer", usage=reported))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].choices == []
    usage = usage_chunks[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1234, 56, 1290)
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert model.requests[-1].usage == reported


def test_reasoning_tokens_are_reported_exactly(client: openai.OpenAI, model) -> None:
    reported = Usage(input_tokens=300, output_tokens=90, cached_tokens=128, reasoning_tokens=64)
    model.script(Reasoning("Weighing the options.", then=Text("Decided.", usage=reported)))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (300, 90, 390)
    assert usage.prompt_tokens_details.cached_tokens == 128
    assert usage.completion_tokens_details.reasoning_tokens == 64
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Decided."


def test_non_stream_usage_includes_cached_and_reasoning(client: openai.OpenAI, model) -> None:
    reported = Usage(input_tokens=77, output_tokens=33, cached_tokens=40, reasoning_tokens=20)
    model.script(Reasoning("Hmm.", then=Text("Done.", usage=reported)))
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (77, 33, 110)
    assert usage.prompt_tokens_details.cached_tokens == 40
    assert usage.completion_tokens_details.reasoning_tokens == 20


def test_default_echo_usage_is_not_a_character_estimate(client: openai.OpenAI, offline_model) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "count me in"}])
    assert completion.choices[0].message.content == "echo: count me in"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == offline_model.requests[-1].usage.output_tokens
    assert completion.usage.prompt_tokens == offline_model.requests[-1].usage.input_tokens


def test_wrong_key_is_authentication_error(api) -> None:
    bad = openai.OpenAI(base_url=api.base_url + "/v1", api_key="wrong-key", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.response.headers["www-authenticate"] == "Bearer realm=api"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o-nonexistent", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


def test_unknown_model_is_not_found_when_streaming(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-4o-nonexistent", messages=[{"role": "user", "content": "hi"}], stream=True
        )


def test_bad_request_names_the_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert info.value.param == "logprobs"


def test_legacy_completions(client: openai.OpenAI, model) -> None:
    model.script(Text("legacy text", usage=Usage(input_tokens=5, output_tokens=2)))
    completion = client.completions.create(model=MODEL, prompt="say it")
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.choices[0].text == "legacy text"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)


def test_legacy_completions_stream(client: openai.OpenAI, model) -> None:
    model.script(Text("a b c", chunks=["a", " b", " c"], usage=Usage(input_tokens=3, output_tokens=3)))
    chunks = list(
        client.completions.create(model=MODEL, prompt="x", stream=True, stream_options={"include_usage": True})
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "a b c"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 6
