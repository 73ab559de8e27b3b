"""Reasoning summaries on both APIs: chat `message.reasoning_content` / `delta.reasoning_content`, Responses
`reasoning` items; `reasoning.summary` reaches Codex; PROXY_EXPOSE_REASONING=false and `summary: none` hide it.

The real-codex counterpart (the offline model's `think:` reasoning through the pinned binary, and the summary in
the recorded provider request) is in tests/api/test_compat_codex.py.
"""

from __future__ import annotations

import json

import pytest

from tests.seam import Seam, reasoning_then_text, seam

USER = [{"role": "user", "content": "why?"}]


def sse(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


async def test_chat_body_carries_reasoning_content(s: Seam) -> None:
    s.turns.script(reasoning_then_text("weighing it", "because"))
    out = await s.http.post("/v1/chat/completions", json={"model": "codev-5", "messages": USER})
    message = out.json()["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("because", "weighing it")


async def test_chat_body_without_reasoning_has_no_reasoning_field(s: Seam) -> None:
    s.turns.script(reasoning_then_text("", "plain")[1:])
    message = (await s.http.post("/v1/chat/completions", json={"model": "codev-5", "messages": USER})).json()
    assert "reasoning_content" not in message["choices"][0]["message"]


async def test_chat_stream_carries_reasoning_deltas_before_the_text(s: Seam) -> None:
    s.turns.script(reasoning_then_text("weighing it", "because"))
    r = await s.http.post("/v1/chat/completions", json={"model": "codev-5", "messages": USER, "stream": True})
    deltas = [e["choices"][0]["delta"] for e in sse(r.text) if e["choices"]]
    assert [d for d in deltas if "reasoning_content" in d] == [{"reasoning_content": "weighing it"}]
    assert deltas.index({"reasoning_content": "weighing it"}) < deltas.index({"content": "because"})


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("summary", ["auto", "concise", "detailed", "none"])
async def test_reasoning_summary_reaches_codex_on_both_apis(s: Seam, api: str, summary: str) -> None:
    s.turns.script(reasoning_then_text("t", "x"))
    if api == "chat":
        body = {"model": "codev-5", "messages": USER, "reasoning": {"summary": summary}}
        r = await s.http.post("/v1/chat/completions", json=body)
    else:
        r = await s.http.post(
            "/v1/responses", json={"model": "codev-5", "input": "why?", "reasoning": {"summary": summary}}
        )
    assert r.status_code == 200, r.text
    assert s.turns.last.summary == summary


async def test_summary_none_hides_what_the_model_still_sent(s: Seam) -> None:
    s.turns.script(reasoning_then_text("leaked", "x"), reasoning_then_text("leaked", "x"))
    body = {"model": "codev-5", "messages": USER, "reasoning": {"summary": "none"}}
    message = (await s.http.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]
    assert "reasoning_content" not in message
    out = await s.http.post(
        "/v1/responses", json={"model": "codev-5", "input": "why?", "reasoning": {"summary": "none"}}
    )
    assert [i["type"] for i in out.json()["output"]] == ["message"]


async def test_a_bad_summary_is_a_400(s: Seam) -> None:
    body = {"model": "codev-5", "messages": USER, "reasoning": {"summary": "verbose"}}
    r = await s.http.post("/v1/chat/completions", json=body)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "reasoning.summary")


async def test_expose_reasoning_false_hides_it_everywhere(tmp_path) -> None:
    async with seam(tmp_path, expose_reasoning=False) as s:
        s.turns.script(*(reasoning_then_text("secret", "answer") for _ in range(4)))
        body = {"model": "codev-5", "messages": USER}
        message = (await s.http.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]
        assert message == {"content": "answer", "role": "assistant", "refusal": None}
        streamed = (await s.http.post("/v1/chat/completions", json={**body, "stream": True})).text
        assert "secret" not in streamed and "reasoning_content" not in streamed
        out = await s.http.post("/v1/responses", json={"model": "codev-5", "input": "why?"})
        assert [i["type"] for i in out.json()["output"]] == ["message"]
        streamed = (await s.http.post("/v1/responses", json={"model": "codev-5", "input": "why?", "stream": True})).text
        assert "secret" not in streamed and "reasoning_summary" not in streamed
