"""Issue 9 acceptance, Responses API: function calling, structured output, the real Obsidian Copilot shapes, the
OpenAI Agents SDK and client system prompts — real app, real codex, offline model, official clients."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from app.offline_model import Text
from tests.api.chat_support import wait_idle
from tests.api.responses_support import MODEL, sdk_client
from tests.api_harness import ApiServer, offline_env

pytestmark = pytest.mark.codex

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


@pytest.fixture
def client(api: ApiServer) -> Iterator[openai.OpenAI]:
    with sdk_client(api) as c:  # closed after the test: an unclosed client leaves sockets to the GC
        yield c


def test_function_call_loop_with_function_call_output_items(api, client, offline_model):
    before = len(offline_model.requests)
    items: list = [{"role": "user", "content": 'Weather?\ncall get_weather {"city": "Lima"}'}]
    first = client.responses.create(model=MODEL, input=items, tools=[WEATHER])
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert (call.name, call.arguments, call.status) == ("get_weather", '{"city": "Lima"}', "completed")
    assert call.id.startswith("fc_") and call.call_id
    assert [t.name for t in first.tools] == ["get_weather"]  # type: ignore[union-attr]
    assert (first.tool_choice, first.parallel_tool_calls) == ("auto", True)

    items += [
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "warm"},
    ]
    final = client.responses.create(model=MODEL, input=items, tools=[WEATHER])
    assert final.output_text == "get_weather returned: warm"
    assert not [o for o in final.output if o.type == "function_call"]
    follow_up = offline_model.requests[before:][1]
    assert [(i.type, i.call_id) for i in follow_up.input[-2:]] == [
        ("function_call", call.call_id),
        ("function_call_output", call.call_id),
    ]
    wait_idle(api, offline_model)


def test_streamed_function_call_events_and_the_sdk_final_response(client):
    with client.responses.stream(model=MODEL, input='call get_weather {"city": "Kyiv"}', tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    i = kinds.index("response.output_item.added")
    assert kinds[i:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, delta, done = events[i], events[i + 1], events[i + 2]
    assert added.item.type == "function_call" and added.item.status == "in_progress"  # type: ignore[union-attr]
    assert delta.delta == '{"city": "Kyiv"}' and done.arguments == '{"city": "Kyiv"}'  # type: ignore[union-attr]
    assert delta.item_id == added.item.id  # type: ignore[union-attr]
    assert [o.type for o in final.output] == ["function_call"]
    assert [e.sequence_number for e in events] == sorted({e.sequence_number for e in events})


def test_namespace_tools_are_offered_as_a_codex_namespace_and_called_with_it(client, offline_model):
    files = {
        "type": "namespace",
        "name": "files",
        "description": "File access",
        "tools": [{"type": "function", "name": "read", "parameters": {"type": "object"}}],
    }
    before = len(offline_model.requests)
    out = client.responses.create(model=MODEL, input='call files.read {"path": "/a"}', tools=[files])  # type: ignore[list-item]
    (call,) = [o for o in out.output if o.type == "function_call"]
    assert (call.name, getattr(call, "namespace", None)) == ("read", "files")
    assert "files.read" in offline_model.requests[before:][0].functions


class City(BaseModel):
    name: str
    population: int


def test_responses_parse_with_a_pydantic_model(client):
    out = client.responses.parse(model=MODEL, input="a city please", text_format=City)
    assert isinstance(out.output_parsed, City)
    assert out.text.format.type == "json_schema"  # type: ignore[union-attr]


def test_schema_violation_streams_response_failed(api, offline_model):
    offline_model.script(Text("[1, 2]"))
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    body = {
        "model": MODEL,
        "input": "x",
        "stream": True,
        "text": {"format": {"type": "json_schema", "name": "a", "schema": schema, "strict": True}},
    }
    raw = [line for line in _post_stream(api, body) if line.startswith("data: ")]
    last = json.loads(raw[-1][6:])
    assert last["type"] == "response.failed"
    assert last["response"]["error"]["code"] == "invalid_structured_output"


def _post_stream(api: ApiServer, body: dict) -> list[str]:
    import httpx

    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as http:
        return http.post("/v1/responses", json=body).text.splitlines()


# ---- Obsidian Copilot's real request shapes (app-server-protocol.md §17) -------------------------------------


def obsidian_tools() -> list[dict]:
    names = [
        "localSearch", "webSearch", "getCurrentTime", "getTimeRangeMs", "getTimeInfoByEpoch", "readNote",
        "writeToFile", "replaceInFile", "getFileTree", "getTagList", "youtubeTranscription", "indexVault", "pomodoro",
    ]  # fmt: skip
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"Obsidian Copilot tool {name}",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": []},
            },
        }
        for name in names
    ]


def obsidian_body(input_items: list, *, stream: bool = True) -> dict:
    return {
        "model": MODEL,
        "temperature": 1,
        "stream": stream,
        "max_output_tokens": 65000,
        "text": {},
        "tools": obsidian_tools(),
        "tool_choice": "auto",
        "input": input_items,
    }


DEVELOPER = {"type": "message", "role": "developer", "content": "You are Obsidian Copilot. Use tools when useful."}


def test_obsidian_agent_request_calls_a_chat_style_tool(api, offline_model):
    import httpx

    before = len(offline_model.requests)
    user = {"type": "message", "role": "user", "content": 'call readNote {"query": "Daily"}'}
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as http:
        r = http.post("/v1/responses", json=obsidian_body([DEVELOPER, user], stream=False))
    assert r.status_code == 200, r.text
    calls = [o for o in r.json()["output"] if o["type"] == "function_call"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("readNote", '{"query": "Daily"}')]
    request = offline_model.requests[before:][0]
    assert len([t for t in request.tools if t != "request_user_input"]) == 13
    assert "You are Obsidian Copilot. Use tools when useful." in request.texts("developer")


def test_obsidian_follow_up_with_empty_assistant_message_function_call_and_output(api, offline_model):
    import httpx

    user = {"type": "message", "role": "user", "content": 'call readNote {"query": "Daily"}'}
    follow_up = [
        DEVELOPER,
        user,
        {"type": "message", "role": "assistant", "content": ""},
        {"type": "function_call", "name": "readNote", "arguments": '{"query": "Daily"}', "call_id": "call_ob_1"},
        {"type": "function_call_output", "call_id": "call_ob_1", "output": "Today: write tests"},
    ]
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as http:
        r = http.post("/v1/responses", json=obsidian_body(follow_up))
    assert r.status_code == 200, r.text
    datas = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    completed = datas[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["content"][0]["text"] == "readNote returned: Today: write tests"
    assert completed["response"]["max_output_tokens"] == 65000


# ---- client system prompts reach the model by default ----------------------------------------------------------

LONG_PROMPT = " ".join(f"rule{i}" for i in range(2000))


def prompt_tokens(api: ApiServer) -> tuple[int, int]:
    with sdk_client(api) as client:
        plain = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        system = client.chat.completions.create(
            model=MODEL, messages=[{"role": "system", "content": LONG_PROMPT}, {"role": "user", "content": "hi"}]
        )
    assert plain.usage is not None and system.usage is not None
    return plain.usage.prompt_tokens, system.usage.prompt_tokens


def test_a_2000_word_system_prompt_raises_prompt_tokens_accordingly(api):
    plain, system = prompt_tokens(api)
    assert system - plain >= 1990  # the offline model counts words: all 2,000 reached it (±codex joining parts)


@pytest.fixture(scope="module")
def ignoring_api(offline_model, tmp_path_factory):
    env = offline_env(offline_model, PROXY_IGNORE_CLIENT_SYSTEM_PROMPT="true")
    server = ApiServer(tmp_path_factory.mktemp("ignore-system"), env).start()
    try:
        yield server
    finally:
        server.stop()


def test_with_ignore_client_system_prompt_it_does_not(ignoring_api):
    plain, system = prompt_tokens(ignoring_api)
    assert system == plain


# ---- OpenAI Agents SDK -------------------------------------------------------------------------------------------


AGENT_SCRIPT = """
import asyncio, json, sys
import openai
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool, set_tracing_disabled

set_tracing_disabled(True)
seen = []

@function_tool
def lookup_capital(country: str) -> str:
    \"\"\"The capital city of a country.\"\"\"
    seen.append(country)
    return {"France": "Paris"}.get(country, "unknown")

async def main():
    async with openai.AsyncOpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0) as client:
        agent = Agent(
            name="geo",
            instructions="Answer with the tool.",
            tools=[lookup_capital],
            model=OpenAIResponsesModel(model=sys.argv[3], openai_client=client),
        )
        result = await Runner.run(agent, sys.argv[4], run_config=RunConfig(tracing_disabled=True))
        print(json.dumps({"seen": seen, "final": result.final_output}))

asyncio.run(main())
"""


def test_openai_agents_sdk_runs_an_agent_with_a_function_tool(api, tmp_path):
    """The Agents SDK is the client, in its own process (as an application would run it)."""
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    prompt = 'call lookup_capital {"country": "France"}'
    key = api.headers()["Authorization"][7:]
    proc = subprocess.run(
        [sys.executable, str(script), api.base_url + "/v1", key, MODEL, prompt],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"seen": ["France"], "final": "lookup_capital returned: Paris"}
