"""obsidian-xml output mode on scripted turns: blocks per chunk, bodies, mode selection, and `<use_tool>` history.

The real-codex counterparts (argument deltas split mid-tag, the recorded provider request of a follow-up) are in
tests/api/test_compat_codex.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from app.codex.turn import HistoryMessage, HistoryToolCall, HistoryToolResult, ReasoningDelta, ToolCall
from app.main import create_app
from app.translate.use_tool import parse
from tests.seam import KEY, ScriptedTurns, Seam, burst, calls, seam, text
from tests.seam import settings as seam_settings

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    },
}
NOTE = {"type": "function", "function": {"name": "writeToFile", "parameters": {"type": "object"}}}
FLAT_WEATHER = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
USER = [{"role": "user", "content": "weather?"}]
XML = {"x-proxy-output-mode": "obsidian-xml"}
MODEL = "codev-5"
ONE_BLOCK = re.compile(r"(\n\n)?<use_tool>\n(?:(?!<use_tool>).)*?\n</use_tool>", re.DOTALL)
ROME = ToolCall("c1", "get_weather", '{"city": "Rome", "days": 2}')
TRICKY = ToolCall("c2", "writeToFile", '{"path": "a.md", "content": "<b>x</b> & </content> done"}')


def sse(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


def deltas(raw: str) -> list[dict]:
    return [e["choices"][0]["delta"] for e in sse(raw) if e.get("choices")]


async def chat(s: Seam, *, stream: bool, headers: dict[str, str] = XML, **body: object):
    payload = {"model": MODEL, "messages": USER, "tools": [WEATHER, NOTE], "stream": stream, **body}
    return await s.http.post("/v1/chat/completions", json=payload, headers=headers)


async def test_each_streamed_call_is_one_complete_block_in_one_chunk(s: Seam) -> None:
    s.turns.script(calls(ROME, TRICKY, before=["Let me check."]))
    r = await chat(s, stream=True)
    assert r.headers["x-proxy-output-mode"] == "obsidian-xml"
    contents = [d["content"] for d in deltas(r.text) if d.get("content")]
    assert contents[0] == "Let me check."
    blocks = contents[1:]
    assert len(blocks) == 2
    for chunk in blocks:
        assert ONE_BLOCK.fullmatch(chunk), chunk  # exactly one whole block, nothing before or after it
    parsed = parse("".join(blocks), {"get_weather": {"days": "integer"}})
    assert parsed is not None
    assert [(b.name, json.loads(b.arguments)) for b in parsed.blocks] == [
        ("get_weather", {"city": "Rome", "days": 2}),
        ("writeToFile", {"path": "a.md", "content": "<b>x</b> & </content> done"}),
    ]
    # delta.tool_calls alongside, and nothing but the finish after the last block
    calls_sent = [d["tool_calls"][0] for d in deltas(r.text) if d.get("tool_calls")]
    assert [c["id"] for c in calls_sent if "id" in c] == ["c1", "c2"]
    last_block = max(i for i, d in enumerate(deltas(r.text)) if d.get("content") in blocks)
    assert deltas(r.text)[last_block + 1 :] == [{}]
    assert sse(r.text)[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_non_stream_content_holds_the_blocks_and_the_calls(s: Seam) -> None:
    s.turns.script(calls(ROME, before=["Checking."]))
    r = await chat(s, stream=False)
    message = r.json()["choices"][0]["message"]
    assert message["content"].startswith("Checking.\n\n<use_tool>\n<name>get_weather</name>\n")
    assert message["content"].endswith("</use_tool>")
    assert "<city>Rome</city>" in message["content"] and "<days>2</days>" in message["content"]
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ROME.arguments}
    assert r.headers["x-proxy-output-mode"] == "obsidian-xml"


async def test_stream_and_body_show_the_same_text(s: Seam) -> None:
    s.turns.script(calls(ROME, TRICKY, before=["a"]), calls(ROME, TRICKY, before=["a"]))
    streamed = "".join(d.get("content") or "" for d in deltas((await chat(s, stream=True)).text))
    body = (await chat(s, stream=False)).json()["choices"][0]["message"]["content"]
    assert streamed == body


@pytest.mark.parametrize("spelling", ["obsidian", "obsidian_xml", "OBSIDIAN-XML", " obsidian-xml "])
async def test_the_older_header_spellings_select_obsidian_xml(s: Seam, spelling: str) -> None:
    s.turns.script(calls(ROME))
    r = await chat(s, stream=False, headers={"x-proxy-output-mode": spelling})
    assert r.headers["x-proxy-output-mode"] == "obsidian-xml"
    assert "<use_tool>" in r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("headers", [{}, {"x-proxy-output-mode": "openai"}, {"x-proxy-output-mode": "openai_json"}])
async def test_openai_json_is_the_default_and_keeps_content_null(s: Seam, headers: dict[str, str]) -> None:
    s.turns.script(calls(ROME))
    r = await chat(s, stream=False, headers=headers)
    assert r.headers["x-proxy-output-mode"] == "openai-json"
    assert r.json()["choices"][0]["message"]["content"] is None


async def test_an_unknown_mode_is_a_400_naming_the_header(s: Seam) -> None:
    r = await chat(s, stream=False, headers={"x-proxy-output-mode": "yaml"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "x-proxy-output-mode"


async def test_route_defaults_come_from_the_settings(tmp_path) -> None:
    async with seam(tmp_path, output_mode="obsidian-xml") as s:
        s.turns.script(calls(ROME), calls(ROME))
        r = await chat(s, stream=False, headers={})
        assert "<use_tool>" in r.json()["choices"][0]["message"]["content"]
        responses = await s.http.post("/v1/responses", json={"model": MODEL, "input": "hi", "tools": [FLAT_WEATHER]})
        assert responses.headers["x-proxy-output-mode"] == "openai-json"  # PROXY_RESPONSES_OUTPUT_MODE is separate
        assert [i["type"] for i in responses.json()["output"]] == ["function_call"]


async def test_responses_stream_adds_the_block_as_text_after_the_function_call(s: Seam) -> None:
    s.turns.script(calls(ROME), calls(ROME))
    async with s.sdk.responses.stream(
        model=MODEL,
        input="weather?",
        tools=[FLAT_WEATHER],
        extra_headers=XML,  # type: ignore[list-item]
    ) as stream:
        events = [e async for e in stream]
        final = await stream.get_final_response()
    assert [i.type for i in final.output] == ["function_call", "message"]
    text_deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(text_deltas) == 1 and ONE_BLOCK.fullmatch(text_deltas[0])
    assert final.output_text == text_deltas[0]
    body = await s.sdk.responses.create(model=MODEL, input="weather?", tools=[FLAT_WEATHER], extra_headers=XML)  # type: ignore[list-item]
    assert body.output_text == final.output_text


async def test_reasoning_is_unchanged_by_the_mode(s: Seam) -> None:
    s.turns.script([ReasoningDelta("thinking"), *calls(ROME)])
    message = (await chat(s, stream=False)).json()["choices"][0]["message"]
    assert message["reasoning_content"] == "thinking"


# ---- inbound: <use_tool> history and Copilot's textual results ------------------------------------------------


def copilot_turns(block_text: str, results: str) -> list[dict]:
    return [
        *USER,
        {"role": "assistant", "content": block_text},
        {"role": "user", "content": results},
    ]


BLOCKS = (
    "Checking both.\n<use_tool>\n<name>get_weather</name>\n<city>Rome</city>\n<days>2</days>\n</use_tool>\n\n"
    "<use_tool><name>writeToFile</name><path>a.md</path><content>hi</content></use_tool>"
)
RESULTS = "Tool 'get_weather' result: sunny\n\nwarm\n\nTool 'writeToFile' result: written"


async def test_use_tool_history_and_textual_results_become_real_calls_and_results(s: Seam) -> None:
    s.turns.script(text("ok"))
    r = await chat(s, stream=False, messages=copilot_turns(BLOCKS, RESULTS))
    assert r.status_code == 200, r.text
    req = s.turns.last
    assert req.history == (
        HistoryMessage("user", "weather?"),
        HistoryMessage("assistant", "Checking both."),
        HistoryToolCall("call_xml_1_0", "get_weather", '{"city":"Rome","days":2}'),
        HistoryToolCall("call_xml_1_1", "writeToFile", '{"path":"a.md","content":"hi"}'),
        HistoryToolResult("call_xml_1_0", "sunny\n\nwarm"),
        HistoryToolResult("call_xml_1_1", "written"),
    )
    assert (req.input_text, req.input_images) == ("", ())  # the turn continues from the results


async def test_responses_use_tool_history_becomes_real_calls_and_results(s: Seam) -> None:
    s.turns.script(text("ok"))
    items = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "output_text", "text": BLOCKS}]},
        {"role": "user", "content": [{"type": "input_text", "text": RESULTS}]},
    ]
    tools = [FLAT_WEATHER, {"type": "function", "name": "writeToFile"}]
    r = await s.http.post("/v1/responses", json={"model": MODEL, "input": items, "tools": tools}, headers=XML)
    assert r.status_code == 200, r.text
    kinds = [type(i).__name__ for i in s.turns.last.history]
    assert kinds == [
        "HistoryMessage",
        "HistoryMessage",
        "HistoryToolCall",
        "HistoryToolCall",
        "HistoryToolResult",
        "HistoryToolResult",
    ]


@pytest.mark.parametrize(
    ("headers", "results", "tools"),
    [
        ({}, RESULTS, [WEATHER, NOTE]),
        (XML, "Tool 'get_weather' result: sunny", [WEATHER, NOTE]),
        (XML, "thanks, and now?", [WEATHER, NOTE]),
        (XML, RESULTS, [WEATHER]),
    ],
    ids=["openai-json-mode", "a-result-missing", "not-results", "undeclared-tool"],
)
async def test_anything_but_a_complete_pair_stays_text(
    s: Seam, headers: dict[str, str], results: str, tools: list
) -> None:
    s.turns.script(text("ok"))
    r = await chat(s, stream=False, headers=headers, messages=copilot_turns(BLOCKS, results), tools=tools)
    assert r.status_code == 200, r.text
    req = s.turns.last
    assert req.history == (HistoryMessage("user", "weather?"), HistoryMessage("assistant", BLOCKS))
    assert req.input_text == results


async def test_a_round_trip_through_the_client_rebuilds_the_same_call(s: Seam) -> None:
    s.turns.script(calls(TRICKY), text("done"))
    first = (await chat(s, stream=False)).json()["choices"][0]["message"]["content"]
    r = await chat(s, stream=False, messages=copilot_turns(first, "Tool 'writeToFile' result: ok"))
    assert r.status_code == 200, r.text
    call = s.turns.last.history[1]
    assert isinstance(call, HistoryToolCall)
    assert (call.name, json.loads(call.arguments)) == ("writeToFile", json.loads(TRICKY.arguments))


async def test_early_calls_are_blocks_too(tmp_path) -> None:
    async with seam(tmp_path, stop_after_tools=True, stop_after_tools_grace_ms=1000) as s:
        s.turns.script(burst((ROME, 0.0), (TRICKY, 0.1)))
        r = await chat(s, stream=True)
        blocks = [d["content"] for d in deltas(r.text) if d.get("content")]
        assert len(blocks) == 2 and all(ONE_BLOCK.fullmatch(b) for b in blocks)
        assert r.headers["x-codex-stop-after-tools-mode"] == "burst"


async def test_blocks_echoed_next_to_structured_calls_are_not_replayed_twice(s: Seam) -> None:
    s.turns.script(calls(ROME), text("ok"), calls(ROME), text("ok"))
    first = (await chat(s, stream=False)).json()["choices"][0]["message"]  # content: blocks, plus tool_calls
    messages = [*USER, first, {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    assert (await chat(s, stream=False, messages=messages)).status_code == 200
    assert s.turns.last.history == (
        HistoryMessage("user", "weather?"),
        HistoryToolCall("c1", "get_weather", ROME.arguments),
        HistoryToolResult("c1", "sunny"),
    )
    out = (
        await s.http.post(
            "/v1/responses", json={"model": MODEL, "input": "weather?", "tools": [FLAT_WEATHER]}, headers=XML
        )
    ).json()
    items = [
        {"role": "user", "content": "weather?"},
        *out["output"],  # function_call, then the message holding its block
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    r = await s.http.post("/v1/responses", json={"model": MODEL, "input": items, "tools": [FLAT_WEATHER]}, headers=XML)
    assert r.status_code == 200, r.text
    assert s.turns.last.history == (
        HistoryMessage("user", "weather?"),
        HistoryToolCall("c1", "get_weather", ROME.arguments),
        HistoryToolResult("c1", "sunny"),
    )


FRAGMENTS = st.sampled_from(
    [
        "<use_tool>",
        "</use_tool>",
        "<name>",
        "</name>",
        "get_weather",
        "writeToFile",
        "<city>",
        "</city>",
        "Rome",
        "<args>",
        "</args>",
        '{"a": 1}',
        "<item>",
        "</item>",
        "&lt;/",
        "\n",
        " ",
        "Tool 'get_weather' result: ",
        "x",
    ]
)


@pytest.fixture(scope="module")
def xml_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(seam_settings(Path(tmp_path_factory.mktemp("xmlfuzz"))), turns=ScriptedTurns())
    with TestClient(app=app, base_url="http://127.0.0.1") as client:
        client.headers.update({**XML, "Authorization": f"Bearer {KEY}"})
        yield client


@settings(max_examples=200, deadline=None)
@given(assistant=st.lists(FRAGMENTS, max_size=14).map("".join), results=st.lists(FRAGMENTS, max_size=6).map("".join))
def test_any_use_tool_history_is_a_200_or_a_named_400(xml_client: TestClient, assistant: str, results: str) -> None:
    """Whatever Copilot-like text arrives in obsidian-xml mode, the answer is a success or a 400 naming a field."""
    body = {"model": MODEL, "messages": copilot_turns(assistant, results or "?"), "tools": [WEATHER, NOTE]}
    r = xml_client.post("/v1/chat/completions", json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["param"]
