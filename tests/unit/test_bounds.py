"""Request bounds (app.api.bounds): the depth guard is exact for valid JSON and never recurses; every count and
size limit answers a 400 naming the parameter (issue 13)."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from app.api.bounds import check_raw, check_request, json_depth_exceeds
from app.errors import ApiError
from app.openai.chat import ChatCompletionRequest, CompletionRequest
from app.openai.responses import ResponsesRequest
from app.settings import Settings

SMALL = Settings(max_json_depth=8, max_input_items=5, max_content_parts=7, max_text_bytes=2000, max_tools=3)


def reference_depth(value: object, depth: int = 0) -> int:
    if isinstance(value, list):
        return max([reference_depth(v, depth + 1) for v in value] or [depth + 1])
    if isinstance(value, dict):
        return max([reference_depth(v, depth + 1) for v in value.values()] or [depth + 1])
    return depth


def random_json(rng: random.Random, depth: int = 0) -> object:
    """Nested values whose strings are full of brackets, quotes and backslashes (the scanner's traps)."""
    roll = rng.random()
    if depth > 14 or roll < 0.3:
        return rng.choice(["[[", "}{", '"\\', 'x\\"[', "\\\\", "]]", "", 7, None, True, "ünï[còdé"])
    if roll < 0.65:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["k", "[", '{"', "\\"]) + str(i): random_json(rng, depth + 1) for i in range(rng.randint(0, 3))}


def test_depth_guard_matches_a_reference_on_random_documents():
    rng = random.Random(13)
    for _ in range(1500):
        doc = random_json(rng)
        raw = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        depth = reference_depth(doc)
        for limit in range(0, 17):
            assert json_depth_exceeds(raw, limit) == (depth > limit), (raw, depth, limit)


@pytest.mark.parametrize(
    ("raw", "deep"),
    [
        (b"[" * 100_000 + b"]" * 100_000, True),
        (b"[" * 16_000_000, True),
        (b"[]" * 1_000_000, False),
        (b'{"a":"' + b"[" * 100_000 + b'"}', False),
        (b'["\\\\", "\\"[[[[", ' + b"[" * 60 + b"]" * 60 + b"]", False),
        (json.dumps({"messages": [{"role": "user", "content": "a"}] * 300_000}).encode(), False),
    ],
    ids=["100k-nested", "16M-open", "1M-flat-pairs", "brackets-in-a-string", "escaped-backslash", "300k-messages"],
)
def test_depth_guard_on_hostile_shapes(raw, deep):
    assert json_depth_exceeds(raw, 64) is deep


def test_check_raw_is_a_400_not_a_recursion():
    with pytest.raises(ApiError) as info:
        check_raw(b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}", Settings())
    assert (info.value.status, info.value.code) == (400, "json_too_deep")


TOOL = {"type": "function", "function": {"name": "f"}}


def chat(**body: object) -> ChatCompletionRequest:
    return msgspec.json.decode(json.dumps({"model": "m", **body}).encode(), type=ChatCompletionRequest)


def responses(**body: object) -> ResponsesRequest:
    return msgspec.json.decode(json.dumps({"model": "m", **body}).encode(), type=ResponsesRequest)


def rejected(body: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        check_request(body, SMALL)
    assert info.value.status == 400
    return info.value


def test_within_every_bound_passes():
    check_request(chat(messages=[{"role": "user", "content": "hi"}] * 5, tools=[TOOL] * 3), SMALL)
    check_request(responses(input=[{"role": "user", "content": "hi"}] * 5, tools=[{"type": "function"}] * 3), SMALL)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (chat(messages=[{"role": "user", "content": "a"}] * 6), "messages", "array_above_max_length"),
        (responses(input=[{"role": "user", "content": "a"}] * 6), "input", "array_above_max_length"),
        (
            msgspec.json.decode(b'{"prompt":["a","b","c","d","e","f"]}', type=CompletionRequest),
            "prompt",
            "array_above_max_length",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}] * 6}]),
            "messages[0].content",
            "array_above_max_length",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}] * 4}] * 2),
            "messages",
            "too_many_content_parts",
        ),
        (chat(messages=[{"role": "user", "content": "a"}], tools=[TOOL] * 4), "tools", "too_many_tools"),
        (
            chat(messages=[{"role": "user", "content": "a"}], tools=[TOOL] * 2, functions=[{"name": "f"}] * 2),
            "functions",
            None,
        ),
        (responses(input="a", tools=[{"type": "function"}] * 4), "tools", "too_many_tools"),
        (chat(messages=[{"role": "user", "content": "é" * 1001}]), "messages", "input_too_large"),
        (responses(input="a", instructions="x" * 2001), "instructions", "input_too_large"),
        (
            chat(
                messages=[{"role": "user", "content": "a"}],
                tools=[{"type": "function", "function": {"name": "f", "description": "x" * 2000}}],
            ),
            "tools",
            "input_too_large",
        ),
    ],
    ids=[
        "chat-messages",
        "responses-input",
        "completion-prompts",
        "parts-in-one-message",
        "parts-in-total",
        "chat-tools",
        "tools-plus-functions",
        "responses-tools",
        "text-utf8-bytes",
        "instructions",
        "tool-schemas",
    ],
)
def test_each_bound_names_its_parameter(body, param, code):
    err = rejected(body)
    assert err.param == param
    if code is not None:
        assert err.code == code


def test_images_do_not_count_as_text():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 5000}}
    check_request(chat(messages=[{"role": "user", "content": [image, {"type": "text", "text": "what is it"}]}]), SMALL)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (json.dumps({"messages": [{"role": "user", "content": "a"}] * 6}).encode(), "messages"),
        (json.dumps({"input": [{"role": "user", "content": "a"}] * 6}).encode(), "input"),
        (json.dumps({"prompt": ["a"] * 6}).encode(), "prompt"),
        (json.dumps({"input": "a", "tools": [{"type": "function"}] * 4}).encode(), "tools"),
    ],
    ids=["messages", "input", "prompt", "tools"],
)
def test_counts_are_refused_before_the_real_decode(raw, param):
    with pytest.raises(ApiError) as info:
        check_raw(raw, SMALL)
    assert (info.value.status, info.value.param) == (400, param)


@pytest.mark.parametrize("raw", [b"{not json", b'{"messages": 5}', b'{"input": 7}', b"[]"])
def test_malformed_bodies_are_left_to_the_decoder(raw):
    check_raw(raw, SMALL)  # no bounds error: decode_body answers with its precise 400
