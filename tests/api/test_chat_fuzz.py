"""Property-based fuzz of POST /v1/chat/completions against the running app: no generated body gets a 5xx.

Bodies are built from the request schema's field names with values of random JSON types, so almost all of them
fail validation before reaching codex; the rare valid one is answered by the offline model's echo.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.chat_support import CHAT, MODEL

pytestmark = [pytest.mark.codex, pytest.mark.slow]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "robot", ""]) | json_values
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "input_text", "image_url", "input_audio", "x"]) | json_values},
    optional={"text": st.text(max_size=20) | json_values, "image_url": json_values},
)
content = st.one_of(st.text(max_size=30), st.lists(parts, max_size=3), json_values)
message = (
    st.fixed_dictionaries(
        {}, optional={"role": roles, "content": content, "name": json_values, "tool_call_id": json_values}
    )
    | json_values
)
FIELDS = {
    "model": st.sampled_from([MODEL, "codev-5-high", "gpt-4o", "", " "]) | json_values,
    "messages": st.lists(message, max_size=4) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | json_values}),
    "n": st.integers(-2, 3) | json_values,
    "max_tokens": st.integers(-5, 5) | json_values,
    "max_completion_tokens": st.integers(-5, 5) | json_values,
    "reasoning_effort": st.sampled_from(["low", "high", "max"]) | json_values,
    "reasoning": json_values,
    "temperature": json_values,
    "top_p": json_values,
    "stop": json_values,
    "seed": json_values,
    "logprobs": st.booleans() | json_values,
    "top_logprobs": json_values,
    "tools": json_values,
    "tool_choice": json_values,
    "response_format": st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"]) | json_values}),
    "metadata": json_values,
    "user": json_values,
}
bodies = st.fixed_dictionaries({}, optional=FIELDS) | json_values


@pytest.fixture(scope="module")
def http(api):
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as client:
        yield client


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_generated_body_gets_a_5xx(http, body) -> None:
    raw = json.dumps(body).encode()
    response = http.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (response.status_code, response.text, raw[:500])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["type"], error
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.rstrip().endswith("data: [DONE]")
