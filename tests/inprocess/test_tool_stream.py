"""Stop-after-tools (PROXY_STOP_AFTER_TOOLS*, PROXY_TOOL_BLOCK_MAX, PROXY_SUPPRESS_TAIL_AFTER_TOOLS) on a scripted
burst of parallel calls, in both output modes.

Each call carries the time the session saw it (`ToolCallReady.at`), so the burst window is decided on scripted
times, not on how fast this machine runs. The real-codex counterpart (a burst from the offline model capped by
PROXY_TOOL_BLOCK_MAX) is in tests/api/test_compat_codex.py.
"""

from __future__ import annotations

import json

import pytest

from app.codex.turn import ReasoningDelta, TextDelta, ToolCall, ToolCallReady, ToolCallsRequested, TurnFinished
from tests.seam import USAGE, burst, calls, seam

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in ("a", "b", "c", "d")]
A, B, C, D = (ToolCall(f"call_{n}", n, f'{{"n": "{n}"}}') for n in "abcd")
# a and b come together, c after 0.2 s, d 5 s later: one burst of three with a 300 ms grace, a and b alone at 100 ms
BURST = ((A, 10.0), (B, 10.05), (C, 10.25), (D, 15.25))
MODES = {"openai-json": {}, "obsidian-xml": {"x-proxy-output-mode": "obsidian-xml"}}


def sse(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


async def run(tmp_path, script, *, stream: bool, headers: dict[str, str], **settings: object) -> tuple[list[str], dict]:
    """The call names the client got, and the raw response (body JSON, or the list of stream deltas)."""
    async with seam(tmp_path, **settings) as s:
        s.turns.script(script)
        body = {"model": "codev-5", "messages": [{"role": "user", "content": "go"}], "tools": TOOLS, "stream": stream}
        r = await s.http.post("/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert all(t.released.is_set() for t in s.turns.turns)
    if not stream:
        message = r.json()["choices"][0]["message"]
        return [c["function"]["name"] for c in message.get("tool_calls", [])], message
    events = sse(r.text)
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    names = [
        d["tool_calls"][0]["function"]["name"] for d in deltas if d.get("tool_calls") and "id" in d["tool_calls"][0]
    ]
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    return names, {"deltas": deltas, "headers": dict(r.headers)}


CASES = [
    pytest.param({}, ["a", "b", "c", "d"], id="off: every call of the response"),
    pytest.param({"stop_after_tools_mode": "first"}, ["a"], id="first"),
    pytest.param({"stop_after_tools": True, "stop_after_tools_grace_ms": 300}, ["a", "b", "c"], id="burst 300ms"),
    pytest.param({"stop_after_tools": True, "stop_after_tools_grace_ms": 100}, ["a", "b"], id="burst 100ms"),
    pytest.param({"tool_block_max": 2, "stop_after_tools_grace_ms": 60000}, ["a", "b"], id="block max 2"),
    pytest.param({"stop_after_tools": True, "stop_after_tools_grace_ms": 60000}, ["a", "b", "c", "d"], id="long burst"),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "body"])
@pytest.mark.parametrize(("settings", "expected"), CASES)
async def test_each_mode_on_a_burst_of_parallel_calls(tmp_path, mode, stream, settings, expected) -> None:
    names, _ = await run(tmp_path, burst(*BURST), stream=stream, headers=MODES[mode], **settings)
    assert names == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({"stop_after_tools_mode": "first"}, ["a"]), ({"tool_block_max": 3}, ["a", "b", "c"]), ({}, ["a", "b", "c", "d"])],
    ids=["first", "block max 3", "off"],
)
async def test_a_batch_without_per_call_events_is_one_burst(tmp_path, settings, expected) -> None:
    names, _ = await run(tmp_path, calls(A, B, C, D), stream=True, headers={}, **settings)
    assert names == expected


async def test_obsidian_xml_sends_one_block_per_kept_call_and_nothing_after(tmp_path) -> None:
    _, raw = await run(
        tmp_path,
        burst(*BURST),
        stream=True,
        headers=MODES["obsidian-xml"],
        tool_block_max=2,
        stop_after_tools_grace_ms=60000,
    )
    contents = [d["content"] for d in raw["deltas"] if d.get("content")]
    assert len(contents) == 2 and all(c.strip().startswith("<use_tool>") for c in contents)
    assert raw["deltas"][-1] == {}
    assert raw["headers"]["x-codex-stop-after-tools-mode"] == "burst"


def tail_script() -> list:
    """Text, a call, text the model wrote after it, a second call, the end."""
    return [
        TextDelta("Looking. "),
        ToolCallReady(A, 1.0),
        TextDelta("I also think"),
        ToolCallReady(B, 1.01),
        ToolCallsRequested((A, B)),
        TurnFinished(status="completed", usage=USAGE, reason="tool_calls"),
    ]


@pytest.mark.parametrize(
    ("settings", "content"),
    [
        ({}, "Looking. I also think"),
        ({"suppress_tail_after_tools": True}, "Looking. "),
        ({"stop_after_tools": True}, "Looking. "),
    ],
    ids=["kept by default", "suppressed", "dropped when enforced"],
)
async def test_text_after_the_first_call(tmp_path, settings, content) -> None:
    names, message = await run(tmp_path, tail_script(), stream=False, headers={}, **settings)
    assert (names, message["content"]) == (["a", "b"], content)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"stop_after_tools": True}, ["text", "call_a", "reasoning", "call_b"]),
        ({}, ["text", "reasoning", "call_a", "call_b"]),
    ],
    ids=["enforced: each call at once", "off: the batch at the end"],
)
async def test_when_calls_go_out(tmp_path, settings, expected) -> None:
    script = [
        TextDelta("Looking."),
        ToolCallReady(A, 1.0),
        ReasoningDelta("and b too"),  # something the model produces after its first call that is never dropped
        ToolCallReady(B, 1.01),
        ToolCallsRequested((A, B)),
        TurnFinished(status="completed", usage=USAGE, reason="tool_calls"),
    ]
    _, raw = await run(tmp_path, script, stream=True, headers={}, **settings)
    order = []
    for d in raw["deltas"]:
        if d.get("content"):
            order.append("text")
        elif d.get("reasoning_content"):
            order.append("reasoning")
        elif d.get("tool_calls") and "id" in d["tool_calls"][0]:
            order.append(d["tool_calls"][0]["id"])
    assert order == expected


async def test_responses_follow_the_same_policy(tmp_path) -> None:
    flat = [{"type": "function", "name": n} for n in "abcd"]
    async with seam(tmp_path, stop_after_tools_mode="first") as s:
        s.turns.script(burst(*BURST), burst(*BURST))
        body = await s.sdk.responses.create(model="codev-5", input="go", tools=flat)  # type: ignore[arg-type]
        assert [(i.type, getattr(i, "call_id", None)) for i in body.output] == [("function_call", "call_a")]
        async with s.sdk.responses.stream(model="codev-5", input="go", tools=flat) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_response()
        assert [getattr(i, "call_id", None) for i in final.output] == ["call_a"]
