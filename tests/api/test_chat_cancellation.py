"""Client disconnects interrupt the codex turn and free everything (issue 4: cancellation).

"Freed" is observed from both ends: the offline model sees codex drop its request (`cancelled`), and the
app's `/healthz` gauge `backend.in_flight_turns` returns to 0.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from app.offline_model import Text
from tests.api.chat_support import CHAT, chat_body, wait_idle
from tests.api_harness import ApiServer, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.codex


def first_content_then_close(api, body: dict, **headers: str) -> float:
    """Stream until the first content delta (the model is mid-answer), drop the connection; the drop time."""
    with (
        httpx.Client(base_url=api.base_url, headers=api.headers(**headers), timeout=30) as client,
        client.stream("POST", CHAT, json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content":"' in line and '"role"' not in line:
                break
        return time.monotonic()


@pytest.mark.parametrize("headers", [{}, {"X-No-Keepalive": "1"}], ids=["with-keepalives", "without-keepalives"])
def test_disconnect_mid_stream_cancels_the_model_request(api, model, headers) -> None:
    before = model.cancelled
    model.script(Text(" ".join(["word"] * 40), interval_s=0.1))
    dropped = first_content_then_close(api, chat_body(stream=True), **headers)
    wait_for(lambda: model.cancelled > before, timeout=5, what="the offline model's request cancelled")
    elapsed = time.monotonic() - dropped
    assert model.requests[-1].outcome == "cancelled"
    assert elapsed < 2.0, f"turn interrupted {elapsed:.2f}s after the disconnect"
    wait_idle(api, model)


def test_disconnect_while_the_model_hangs(api, offline_model) -> None:
    before = offline_model.cancelled
    with (
        httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as client,
        client.stream("POST", CHAT, json=chat_body("[[offline hang]] wait", stream=True)) as response,
    ):
        lines = response.iter_lines()  # keep a reference: a dropped line iterator closes the connection
        next(lines)  # role chunk
        wait_for(lambda: offline_model.in_flight == 1, timeout=5, what="the model holding the request")
        assert api.health()["backend"]["in_flight_turns"] == 1
    wait_for(lambda: offline_model.cancelled == before + 1, timeout=5, what="hanging request cancelled")
    wait_idle(api, offline_model)


@pytest.fixture(scope="module")
def churn_api(offline_model, tmp_path_factory):
    """A private app for the disconnect storm, so a worker lost there cannot fail other tests' requests."""
    server = ApiServer(tmp_path_factory.mktemp("chat-churn"), offline_env(offline_model, PROXY_SSE_KEEPALIVE_MS="300"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def disconnect_storm(server, count: int, concurrency: int) -> list[int]:
    """`count` streams whose model hangs, each dropped right after its first line; `concurrency` at a time."""

    async def one(client: httpx.AsyncClient, i: int, gate: asyncio.Semaphore) -> int:
        async with gate, client.stream("POST", CHAT, json=chat_body(f"[[offline hang]] {i}", stream=True)) as r:
            if r.status_code == 200:
                async for _ in r.aiter_lines():
                    break
            else:
                await r.aread()
                assert r.status_code != 500, r.text
            return r.status_code

    async def run() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=server.headers(), timeout=30, limits=limits
        ) as client:
            return await asyncio.gather(*(one(client, i, gate) for i in range(count)))

    return asyncio.run(run())


@pytest.mark.slow
def test_200_rapid_disconnects_leave_nothing_in_flight(churn_api, offline_model) -> None:
    """Codex takes ≈100 ms per interrupted turn (serially), so this is ≈20 s however it is driven.

    Statuses are not all 200: with 8 concurrent interrupts codex can take > 1 s to answer one, and the pool then
    kills the worker as hung (known bug, docs/chat.md); what must hold is that nothing stays in flight.
    """
    started = time.monotonic()
    statuses = disconnect_storm(churn_api, 200, concurrency=8)
    wait_idle(churn_api, offline_model, timeout=20)
    elapsed = time.monotonic() - started
    assert len(statuses) == 200
    assert elapsed < 60, f"200 disconnects took {elapsed:.1f}s"
    wait_for(lambda: httpx.get(churn_api.base_url + "/readyz").status_code == 200, timeout=20, what="ready again")
    response = httpx.post(
        churn_api.base_url + CHAT, json=chat_body("still alive?"), headers=churn_api.headers(), timeout=30
    )
    assert response.json()["choices"][0]["message"]["content"] == "echo: still alive?"
