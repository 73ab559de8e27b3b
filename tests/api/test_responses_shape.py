"""Non-stream `POST /v1/responses`: the response object's shape, and what codex-as-client style bodies may carry."""

from __future__ import annotations

import time

import pytest

from app.offline_model import Text, Usage
from tests.api.responses_support import MODEL, post

pytestmark = pytest.mark.codex


@pytest.fixture(scope="module")
def body(api, offline_model) -> dict:
    offline_model.clear_script()
    offline_model.script(Text("shaped answer", usage=Usage(input_tokens=9, output_tokens=2, cached_tokens=4)))
    resp = post(api, {"model": MODEL, "input": "shape please", "metadata": {"k": "v"}, "max_output_tokens": 64})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()


def test_top_level_fields(body):
    assert body["object"] == "response"
    assert body["id"].startswith("resp_") and len(body["id"]) > len("resp_")
    assert isinstance(body["created_at"], int) and abs(body["created_at"] - time.time()) < 120
    assert body["status"] == "completed"
    assert body["model"] == MODEL
    assert body["error"] is None
    assert body["incomplete_details"] is None


def test_request_parameters_are_echoed(body):
    assert body["metadata"] == {"k": "v"}
    assert body["max_output_tokens"] == 64
    assert body["previous_response_id"] is None
    assert body["store"] is False  # stateless: nothing is stored, whatever the client asked for


def test_output_is_one_completed_assistant_message(body):
    assert len(body["output"]) == 1
    message = body["output"][0]
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["status"] == "completed"
    assert message["id"].startswith("msg_")
    assert message["content"] == [{"type": "output_text", "text": "shaped answer", "annotations": [], "logprobs": []}]


def test_usage_is_exact(body):
    assert body["usage"] == {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
    }


def test_no_tools_are_reported_in_effect(body):
    assert body["tools"] == []
    assert body["tool_choice"] == "none"
    assert body["parallel_tool_calls"] is False


def test_ids_differ_between_responses(api, offline_model, body):
    other = post(api, {"model": MODEL, "input": "again"}).json()
    assert other["id"] != body["id"]
    assert other["output"][0]["content"][0]["text"] == "echo: again"


def test_input_items_with_roles_become_the_conversation(api, offline_model):
    """Message items in the typed and the easy form; the last user message is what the model answers."""
    before = len(offline_model.requests)
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
        {"role": "user", "content": "first question"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second question"}]},
    ]
    resp = post(api, {"model": MODEL, "input": items})
    assert resp.status_code == 200, resp.text
    assert resp.json()["output"][0]["content"][0]["text"] == "echo: second question"
    sent = offline_model.requests[before:]
    assert len(sent) == 1
    texts = [(i.role, i.text) for i in sent[0].input if i.type == "message"]
    assert any(role == "user" and "first question" in text for role, text in texts), texts
    assert any(role == "assistant" and "first answer" in text for role, text in texts), texts


def test_codex_cli_style_body_is_accepted_and_its_function_tools_offered(api, offline_model):
    """What `codex exec` sends (recorded from 0.169.0): built-in tool declarations, include, store:false, ..."""
    before = len(offline_model.requests)
    request = {
        "model": MODEL,
        "instructions": "You are a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: read-only"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}},
            {"type": "namespace", "name": "multi_agent_v1", "tools": []},
            {"type": "web_search"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "low", "summary": "auto"},
        "store": False,
        "stream": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0190-session",
        "text": {"verbosity": "low"},
        "client_metadata": {"session_id": "0190-session"},
    }
    resp = post(api, request)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["output"][-1]["content"][0]["text"] == "echo: list files"
    # The function tool is offered (in the proxy's namespace: codex reserves the name), web_search is left out, and the
    # empty namespace offers nothing; the response lists exactly what the model was offered.
    assert [t["name"] for t in out["tools"]] == ["exec_command"] and out["tool_choice"] == "auto"
    sent = offline_model.requests[before:]
    assert len(sent) == 1
    assert "client_tools.exec_command" in sent[0].functions
    assert not {"web_search", "multi_agent_v1"} & set(sent[0].tools)
