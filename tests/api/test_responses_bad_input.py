"""Bad `/v1/responses` bodies → a 400 (or 404) OpenAI error envelope naming the parameter; fuzzed bodies → no 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.api.responses_support import MODEL, assert_error_envelope

pytestmark = pytest.mark.codex


def msg(role: str, text: str = "hi") -> dict:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


BAD = [
    pytest.param({"model": MODEL, "input": 42}, "input", id="input-number"),
    pytest.param({"model": MODEL, "input": {"role": "user", "content": "hi"}}, "input", id="input-object"),
    pytest.param({"model": MODEL, "input": []}, "input", id="input-empty-list"),
    pytest.param({"model": MODEL}, "input", id="input-missing"),
    pytest.param({"model": MODEL, "input": ["hi"]}, "input[0]", id="input-item-not-object"),
    pytest.param({"model": MODEL, "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", id="item-ref"),
    pytest.param(
        {"model": MODEL, "input": [msg("user"), {"type": "function_call_output", "call_id": "c", "output": "x"}]},
        "input[1].call_id",
        id="output-without-call",
    ),
    pytest.param({"model": MODEL, "input": [{"type": "banana"}]}, "input[0].type", id="unknown-item-type"),
    pytest.param({"model": MODEL, "input": [msg("tool")]}, "input[0].role", id="role-tool"),
    pytest.param(
        {"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        "input[0].content[0]",
        id="input-image",
    ),
    pytest.param(
        {"model": MODEL, "input": [{"role": "user", "content": [{"type": "bogus", "text": "x"}]}]},
        "input[0].content[0].type",
        id="unknown-part-type",
    ),
    pytest.param({"model": MODEL, "input": [msg("user"), msg("assistant")]}, "input", id="last-is-assistant"),
    pytest.param(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "messages", id="messages-on-responses"
    ),
    pytest.param({"model": MODEL, "input": "hi", "n": 2}, "n", id="n-2"),
    pytest.param({"model": MODEL, "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id", id="prev"),
    pytest.param(
        {"model": MODEL, "input": "hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": []}}},
        "text.format.schema",
        id="json-schema-not-object",
    ),
    pytest.param(
        {"model": MODEL, "input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format", id="format-unknown"
    ),
    pytest.param({"model": MODEL, "input": "hi", "tool_choice": "required"}, "tool_choice", id="tool-choice-required"),
    pytest.param(
        {
            "model": MODEL,
            "input": "hi",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": {"type": "function", "name": "g"},
        },
        "tool_choice.name",
        id="tool-choice-undeclared",
    ),
    pytest.param({"model": MODEL, "input": "hi", "tools": [1]}, "tools[0]", id="tool-not-object"),
    pytest.param({"model": MODEL, "input": "hi", "tools": "all"}, "tools", id="tools-not-list"),
    pytest.param({"input": "hi"}, "model", id="model-missing"),
    pytest.param({"model": "  ", "input": "hi"}, "model", id="model-blank"),
    pytest.param({"model": MODEL, "input": "hi", "reasoning": {"effort": "max"}}, "reasoning.effort", id="effort"),
    pytest.param({"model": MODEL, "input": "hi", "reasoning": {"summary": "all"}}, "reasoning.summary", id="summary"),
    pytest.param({"model": MODEL, "input": "hi", "max_output_tokens": 0}, "max_output_tokens", id="max-tokens-0"),
    pytest.param({"model": MODEL, "input": "hi", "stream": "yes"}, "stream", id="stream-string"),
    pytest.param({"model": MODEL, "input": "hi", "instructions": ["a"]}, "instructions", id="instructions-list"),
    pytest.param({"model": MODEL, "input": "hi", "background": True}, "background", id="background"),
]


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as client:
        yield client


@pytest.mark.parametrize(("body", "param"), BAD)
def test_bad_body_is_a_400_naming_the_parameter(http, offline_model, body, param):
    before = len(offline_model.requests)
    resp = http.post("/v1/responses", json=body)
    err = assert_error_envelope(resp, 400, param)
    assert err["type"] == "invalid_request_error"
    assert len(offline_model.requests) == before, "a refused request must never reach the model"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_n_above_one_has_its_own_code(http, stream):
    err = assert_error_envelope(
        http.post("/v1/responses", json={"model": MODEL, "input": "x", "n": 3, "stream": stream}), 400, "n"
    )
    assert err["code"] == "n_unsupported"


def test_non_string_metadata_value_names_metadata(http):
    err = assert_error_envelope(
        http.post("/v1/responses", json={"model": MODEL, "input": "x", "metadata": {"k": 1}}), 400
    )
    assert err["param"].startswith("metadata"), err


def test_unknown_model_is_a_404_naming_model(http):
    err = assert_error_envelope(http.post("/v1/responses", json={"model": "gpt-nope", "input": "x"}), 404, "model")
    assert err["code"] == "model_not_found"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'"input"', b"null", b"\xff\xfe", b'{"model": "codev-5", "input": "x"' + b"}" * 2],
    ids=["empty", "truncated", "array", "string", "null", "not-utf8", "trailing-garbage"],
)
def test_malformed_json_is_a_400_envelope(http, raw):
    resp = http.post("/v1/responses", content=raw, headers={"content-type": "application/json"})
    assert_error_envelope(resp, 400)


def test_refusal_messages_say_what_to_do_instead(http):
    err = assert_error_envelope(
        http.post("/v1/responses", json={"model": MODEL, "input": "x", "previous_response_id": "resp_1"}), 400
    )
    assert "stateless" in err["message"] and "input" in err["message"]
    err = assert_error_envelope(http.post("/v1/responses", json={"model": MODEL, "messages": []}), 400)
    assert "input" in err["message"]


# ---- fuzzing ----------------------------------------------------------------------------------------------

FIELDS = [
    "model", "input", "instructions", "stream", "max_output_tokens", "reasoning", "metadata", "store", "user",
    "text", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "previous_response_id",
    "messages", "n", "include", "prompt_cache_key", "truncation", "background",
]  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["input_text", "output_text", "text", "input_image", "refusal", "x"])},
    optional={"text": st.text(max_size=20) | JSON},
)
ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "reasoning", "function_call", "item_reference", "x"]) | JSON,
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", ""]) | JSON,
        "content": st.text(max_size=20) | st.lists(PART, max_size=3) | JSON,
    },
)
VALUES = {
    "model": st.sampled_from([MODEL, "codev-5-low", "nope", ""]) | JSON,
    "input": st.text(max_size=30) | st.lists(ITEM, max_size=4) | JSON,
    "reasoning": st.fixed_dictionaries(
        {}, optional={"effort": st.sampled_from(["low", "high", "max"]) | JSON, "summary": JSON}
    )
    | JSON,
    "text": st.fixed_dictionaries({}, optional={"format": st.fixed_dictionaries({"type": st.text(max_size=12)})})
    | JSON,
    "stream": st.just(False) | JSON,  # non-stream keeps each example quick; stream=true shows up via JSON
}
PLAUSIBLE = {
    "instructions": st.text(max_size=20),
    "max_output_tokens": st.integers(1, 5000),
    "reasoning": st.fixed_dictionaries(
        {}, optional={"effort": st.sampled_from(["low", "high"]), "summary": st.sampled_from(["auto", "none"])}
    ),
    "metadata": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    "store": st.booleans(),
    "tools": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "web_search"])}), max_size=2),
    "tool_choice": st.sampled_from(["auto", "none"]),
    "parallel_tool_calls": st.booleans(),
    "include": st.lists(st.sampled_from(["reasoning.encrypted_content", "x"]), max_size=2),
    "temperature": st.floats(0, 2),
    "stream": st.booleans(),
}
USER_ITEM = st.fixed_dictionaries(
    {"role": st.just("user"), "content": st.text(min_size=1, max_size=20)}, optional={"type": st.just("message")}
)
ASSISTANT_ITEM = st.fixed_dictionaries(
    {"type": st.just("message"), "role": st.just("assistant"), "content": st.text(max_size=20)}
)
# Plausible bodies run real turns, so the success path (both wire formats) is fuzzed too, not only validation.
VALIDISH = st.fixed_dictionaries(
    {
        "model": st.just(MODEL),
        "input": st.text(min_size=1, max_size=30)
        | st.tuples(st.lists(ASSISTANT_ITEM | USER_ITEM, max_size=2), USER_ITEM).map(lambda t: [*t[0], t[1]]),
    },
    optional=PLAUSIBLE,
)
WILD = (
    st.fixed_dictionaries(
        {"model": VALUES["model"]},
        optional={f: VALUES.get(f, JSON) for f in FIELDS if f != "model"},
    )
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON, max_size=6)
    | JSON
)
# About one body in eight is plausible: enough turns to exercise success paths, few enough to stay fast.
BODY = st.integers(0, 7).flatmap(lambda i: VALIDISH if i == 0 else WILD)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(body=BODY)
def test_fuzzed_bodies_never_get_a_5xx(http, offline_model, body):
    offline_model.clear_script()
    resp = http.post("/v1/responses", content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    event(f"status {resp.status_code}")
    assert resp.status_code < 500, (body, resp.status_code, resp.text[:500])
    if resp.status_code != 200:
        assert_error_envelope(resp, resp.status_code)
    elif resp.headers["content-type"].startswith("application/json"):
        assert resp.json()["object"] == "response"
    else:
        assert b"event: response." in resp.content
