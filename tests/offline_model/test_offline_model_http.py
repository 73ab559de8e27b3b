"""The offline model's HTTP side on its own (no codex): framing, request bodies, scripting, lifecycle."""

from __future__ import annotations

import asyncio
import gzip
import json

import anyio
import httpx
import pytest

from app.offline_model import Echo, Fail, Hang, OfflineModel, Text, split_text
from app.offline_model.replies import parse_directive, reply_for_directive
from tests.conftest import wait_for

BODY = {
    "model": "offline",
    "instructions": "be brief",
    "stream": True,
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev note"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
    ],
    "tools": [{"type": "function", "name": "get_weather", "parameters": {}}, {"type": "web_search"}],
    "reasoning": {"effort": "low", "summary": "auto"},
}


def events(sse: str) -> list[tuple[str, dict]]:
    out = []
    for frame in sse.split("\n\n"):
        if frame.strip():
            head, data = frame.split("\n", 1)
            assert head.startswith("event: ") and data.startswith("data: ")
            payload = json.loads(data.removeprefix("data: "))
            assert payload["type"] == head.removeprefix("event: ")
            out.append((payload["type"], payload))
    return out


async def post(model: OfflineModel, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{model.base_url}/responses", content=content, headers=headers or {})


async def test_echo_is_streamed_as_responses_sse_with_usage(model: OfflineModel) -> None:
    response = await post(model, json.dumps(BODY).encode())

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    kinds = [k for k, _ in events(response.text)]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    deltas = [e["delta"] for k, e in events(response.text) if k == "response.output_text.delta"]
    assert "".join(deltas) == "echo: hello there"
    usage = events(response.text)[-1][1]["response"]["usage"]
    # words: "be brief" + "dev note" + "hello there" = 6, + 10 fixed; output "echo: hello there" = 3
    assert usage == {
        "input_tokens": 16,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 19,
    }


async def test_request_is_recorded_decoded(model: OfflineModel) -> None:
    await post(model, json.dumps(BODY).encode())

    [request] = model.requests
    assert request.last_user_text == "hello there"
    assert [(i.role, i.text) for i in request.input] == [("developer", "dev note"), ("user", "hello there")]
    assert request.tools == ["get_weather", "web_search"]
    assert request.reasoning is not None and request.reasoning.effort == "low"
    assert json.loads(request.raw) == BODY
    assert request.outcome == "completed"
    assert request.usage is not None and request.usage.input_tokens == 16


async def test_chunked_request_body_is_read(model: OfflineModel) -> None:
    async def body():
        raw = json.dumps(BODY).encode()
        yield raw[:10]
        yield raw[10:]

    async with httpx.AsyncClient() as client:
        response = await client.post(f"{model.base_url}/responses", content=body())

    assert response.status_code == 200
    assert model.requests[0].header("transfer-encoding") == "chunked"
    assert model.requests[0].last_user_text == "hello there"


async def test_gzip_request_body_is_decoded(model: OfflineModel) -> None:
    response = await post(model, gzip.compress(json.dumps(BODY).encode()), {"content-encoding": "gzip"})

    assert response.status_code == 200
    assert model.requests[0].last_user_text == "hello there"


async def test_models_endpoint_lists_the_offline_model(model: OfflineModel) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{model.base_url}/models")

    assert response.json() == {"object": "list", "data": [{"id": "offline", "object": "model", "owned_by": "offline"}]}


async def test_scripted_replies_are_used_in_order_then_echo(model: OfflineModel) -> None:
    model.script(Text("first"), Fail(429, "usage_limit_reached", "limit", retry_after_s=7))

    first = await post(model, json.dumps(BODY).encode())
    second = await post(model, json.dumps(BODY).encode())
    third = await post(model, json.dumps(BODY).encode())

    assert "".join(e["delta"] for k, e in events(first.text) if k.endswith("text.delta")) == "first"
    assert second.status_code == 429
    assert second.headers["retry-after"] == "7"
    assert second.json()["error"] == {
        "code": "usage_limit_reached",
        "message": "limit",
        "type": "usage_limit_reached",
        "param": None,
    }
    assert "echo: hello there" in third.text
    assert [r.reply for r in model.requests] == ["Text", "Fail", "Echo"]


async def test_hang_ends_when_the_client_goes_away(model: OfflineModel) -> None:
    model.script(Hang())
    _, writer = await asyncio.open_connection("127.0.0.1", model.port)
    raw = json.dumps(BODY).encode()
    writer.write(b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(raw), raw))
    await writer.drain()
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.in_flight == 1, what="hang in flight"))

    writer.close()
    await writer.wait_closed()

    await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.cancelled == 1, what="disconnect noticed"))
    assert model.in_flight == 0
    assert model.requests[0].outcome == "cancelled"


async def test_stop_cancels_a_hanging_response_and_is_idempotent() -> None:
    model = OfflineModel()
    await model.start()
    model.script(Hang())
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{model.base_url}/responses", content=json.dumps(BODY)) as response,
    ):
        assert response.status_code == 200
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: model.in_flight == 1, what="hang in flight"))
        await model.stop()
        await model.stop()
        body = (await response.aread()).decode()  # the close-delimited stream just ends

    assert [k for k, _ in events(body)] == ["response.created"]
    assert model.in_flight == 0
    assert model.requests[0].outcome == "stopped"


async def test_provider_config_points_codex_at_this_server(model: OfflineModel) -> None:
    args = model.provider_config()

    assert args[::2] == ["-c"] * (len(args) // 2)
    settings = dict(s.split("=", 1) for s in args[1::2])
    assert settings["model_provider"] == '"offline"'
    assert settings["model_providers.offline.base_url"] == f'"{model.base_url}"'
    assert settings["model_providers.offline.wire_api"] == '"responses"'
    assert settings["model_providers.offline.request_max_retries"] == "0"
    assert settings["model_providers.offline.stream_max_retries"] == "0"
    assert list(model.provider_env()) == ["OFFLINE_MODEL_API_KEY"]


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("echo: a b c", None, ["echo:", " a", " b", " c"]),
        ("one two three four five six", 3, ["one two", " three four", " five six"]),
        ("ab", 2, ["a", "b"]),
        ("abc", 5, ["a", "b", "c"]),
        ("", None, []),
    ],
    ids=["per-word", "grouped", "chars-when-few-words", "fewer-chars-than-n", "empty"],
)
def test_split_text_rejoins_to_the_original(text: str, n: int | None, expected: list[str]) -> None:
    assert split_text(text, n) == expected
    assert "".join(split_text(text, n)) == text


@pytest.mark.parametrize(
    ("text", "clean", "reply"),
    [
        ("hi [[offline chunks=2 interval_ms=250]]", "hi", Echo(chunks=2, interval_s=0.25)),
        ("[[offline hang]] wait", "wait", Hang()),
        (
            "x [[offline fail=429 code=usage_limit_reached]]",
            "x",
            Fail(429, "usage_limit_reached", "offline model: usage_limit_reached"),
        ),
    ],
    ids=["chunks", "hang", "fail"],
)
def test_prompt_directives(text: str, clean: str, reply: object) -> None:
    directive = parse_directive(text)

    assert directive is not None and directive.clean_text == clean
    assert reply_for_directive(directive) == reply


async def test_standalone_entry_serves_until_sigterm() -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "app.offline_model", "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        base_url = (await anyio.to_thread.run_sync(proc.stdout.readline)).strip()
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{base_url}/models")
        assert response.json()["data"][0]["id"] == "offline"
        proc.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: proc.wait(timeout=10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
