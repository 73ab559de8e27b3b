"""Issue 14 acceptance through the real app (Granian), the pinned codex app-server and the offline model.

- obsidian-xml: a streamed call arrives as exactly one complete `<use_tool>` block per chunk even when the model's
  argument deltas are split mid-tag; the non-stream content holds the block; a follow-up carrying `<use_tool>`
  history and Copilot's textual result reaches the model as real `function_call` / `function_call_output` items.
- Stop-after-tools on a burst of parallel calls from the model (PROXY_TOOL_BLOCK_MAX).
- Remote images: a local image server's PNG reaches the model as an image item (PROXY_IMAGE_FETCH_TEST_ALLOWLIST).
- Reasoning in chat non-stream and stream; `reasoning.summary` reaches the model on both APIs.

The many shape and refusal cases are on the in-process seam (tests/inprocess/test_obsidian_xml.py,
test_tool_stream.py, test_remote_images.py, test_reasoning.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from app.offline_model import FunctionCall, ToolCalls
from app.translate.use_tool import parse
from tests.api.chat_support import CHAT, MODEL, SseStream, chat_body, wait_idle
from tests.api_harness import ApiServer, offline_env
from tests.image_server import RED_DATA_URL, ImageServer

pytestmark = pytest.mark.codex

NOTE = {
    "type": "function",
    "function": {
        "name": "writeToFile",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}},
    },
}
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("a", "b", "c")]
XML = {"x-proxy-output-mode": "obsidian-xml"}
ONE_BLOCK = re.compile(r"(\n\n)?<use_tool>\n(?:(?!<use_tool>).)*?\n</use_tool>", re.DOTALL)
CONTENT = "# Notes\n</content> <use_tool> & more"
ARGS = json.dumps({"path": "notes/a.md", "content": CONTENT})
# the argument deltas the model streams, cut inside the `</content>` and `<use_tool>` the value carries
PIECES = [
    ARGS[: ARGS.index("</con") + 5],
    ARGS[ARGS.index("</con") + 5 : ARGS.index("<use") + 4],
    ARGS[ARGS.index("<use") + 4 :],
]


def post(http: httpx.Client, body: dict, headers: dict[str, str] | None = None) -> httpx.Response:
    r = http.post(CHAT, json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r


# ---- obsidian-xml ------------------------------------------------------------------------------------------------


def test_a_streamed_call_is_one_complete_block_per_chunk_though_its_deltas_split_mid_tag(api, http, model):
    assert "".join(PIECES) == ARGS and all(p.endswith(("</con", "<use")) for p in PIECES[:2])
    model.script(ToolCalls(calls=[FunctionCall("writeToFile", ARGS, call_id="call_note", chunks=PIECES)]))
    r = post(http, chat_body("save it", tools=[NOTE], stream=True), XML)
    assert r.headers["x-proxy-output-mode"] == "obsidian-xml"
    stream = SseStream(r.content)
    deltas = [e["choices"][0]["delta"] for e in stream.events if e.get("choices")]
    blocks = [d["content"] for d in deltas if d.get("content")]
    assert len(blocks) == 1 and ONE_BLOCK.fullmatch(blocks[0]), blocks
    parsed = parse(blocks[0])
    assert parsed is not None
    assert [(b.name, json.loads(b.arguments)) for b in parsed.blocks] == [("writeToFile", json.loads(ARGS))]
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert calls[0]["id"] == "call_note" and "".join(c["function"]["arguments"] for c in calls) == ARGS
    assert stream.events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert model.requests[-1].calls[0].chunks == PIECES  # the model really split them
    wait_idle(api, model)


def test_non_stream_content_holds_the_block_and_the_follow_up_reaches_codex_as_real_tool_items(api, http, model):
    model.script(ToolCalls(calls=[FunctionCall("writeToFile", ARGS, call_id="call_note")]))
    first = post(http, chat_body("save it", tools=[NOTE]), XML).json()["choices"][0]["message"]
    assert first["content"].startswith("<use_tool>\n<name>writeToFile</name>\n") and first["content"].endswith(
        "</use_tool>"
    )
    # Obsidian Copilot sends the block text back as the assistant turn and its result as the next user message
    messages = [
        {"role": "user", "content": "save it"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "Tool 'writeToFile' result: saved notes/a.md"},
    ]
    final = post(http, {"model": MODEL, "messages": messages, "tools": [NOTE]}, XML).json()
    assert final["choices"][0]["message"]["content"] == "writeToFile returned: saved notes/a.md"
    sent = model.requests[-1].input
    call, result = (i for i in sent if i.type in ("function_call", "function_call_output"))
    assert (call.type, call.name, json.loads(call.arguments or "")) == (
        "function_call",
        "writeToFile",
        json.loads(ARGS),
    )
    assert (result.type, result.call_id, result.output) == ("function_call_output", call.call_id, "saved notes/a.md")
    assert not any("<use_tool>" in i.text or "result:" in i.text for i in sent if i.type == "message")
    wait_idle(api, model)


# ---- reasoning --------------------------------------------------------------------------------------------------


def test_chat_reasoning_in_the_body_and_in_the_stream(api, http, model):
    body = chat_body("think: weighing the options\nanswer please", reasoning={"summary": "concise"})
    message = post(http, body).json()["choices"][0]["message"]
    assert message["reasoning_content"] == "weighing the options"
    assert model.requests[-1].reasoning.summary == "concise"
    stream = SseStream(post(http, {**body, "stream": True}).content)
    deltas = [e["choices"][0]["delta"] for e in stream.events if e.get("choices")]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "weighing the options"
    wait_idle(api, model)


def test_responses_reasoning_summary_reaches_the_model(api, http, model):
    body = {"model": MODEL, "input": "think: pondering\nhi", "reasoning": {"summary": "detailed"}}
    out = http.post("/v1/responses", json=body).json()
    assert model.requests[-1].reasoning.summary == "detailed"
    assert [i["type"] for i in out["output"]] == ["reasoning", "message"]
    assert out["output"][0]["summary"][0]["text"] == "pondering"
    wait_idle(api, model)


# ---- a server with the image allowlist and a block cap ------------------------------------------------------


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def compat(offline_model, images, tmp_path_factory) -> Iterator[ApiServer]:
    env = offline_env(
        offline_model, PROXY_IMAGE_FETCH_TEST_ALLOWLIST=f"127.0.0.1:{images.port}", PROXY_TOOL_BLOCK_MAX="2"
    )
    server = ApiServer(tmp_path_factory.mktemp("compat"), env).start()
    yield server
    server.stop()


@pytest.fixture
def compat_http(compat) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=compat.base_url, headers=compat.headers(), timeout=30) as client:
        yield client


def test_a_remote_image_reaches_the_model_as_an_image_item(compat, compat_http, model, images):
    content = [
        {"type": "text", "text": "what colour?"},
        {"type": "image_url", "image_url": {"url": images.url("/red.png"), "detail": "low"}},
    ]
    r = post(compat_http, {"model": MODEL, "messages": [{"role": "user", "content": content}]})
    assert r.json()["choices"][0]["message"]["content"] == "echo: what colour?"
    parts = [p for i in model.requests[-1].input if i.type == "message" for p in i.parts if p.type == "input_image"]
    assert [p.image_url for p in parts] == [RED_DATA_URL]
    wait_idle(compat, model)


def test_a_refused_image_never_reaches_codex(compat, compat_http, model):
    before = len(model.requests)
    content = [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data/"}}]
    r = compat_http.post(CHAT, json={"model": MODEL, "messages": [{"role": "user", "content": content}]})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "messages[0].content[0]")
    assert "link-local" in r.json()["error"]["message"]
    assert len(model.requests) == before


@pytest.mark.parametrize("headers", [{}, XML], ids=["openai-json", "obsidian-xml"])
def test_the_block_cap_keeps_the_first_calls_of_a_parallel_burst(compat, compat_http, model, headers):
    burst = [FunctionCall(n, f'{{"n": "{n}"}}', call_id=f"call_{n}") for n in ("a", "b", "c")]
    model.script(ToolCalls(calls=burst), ToolCalls(calls=burst))
    body = chat_body("all three", tools=TOOLS)
    message = post(compat_http, body, headers).json()["choices"][0]["message"]
    assert [c["id"] for c in message["tool_calls"]] == ["call_a", "call_b"]
    stream = SseStream(post(compat_http, {**body, "stream": True}, headers).content)
    deltas = [e["choices"][0]["delta"] for e in stream.events if e.get("choices")]
    assert [d["tool_calls"][0]["id"] for d in deltas if d.get("tool_calls") and "id" in d["tool_calls"][0]] == [
        "call_a",
        "call_b",
    ]
    if headers:
        assert len([d for d in deltas if d.get("content")]) == 2
    wait_idle(compat, model)
