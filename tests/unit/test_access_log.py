"""The access line is written when the response's last byte leaves, not after its background task.

A non-stream turn's Codex clean-up (unsubscribe + delete) runs as the response's background task. Logging
only after it meant a client already holding the whole answer could still find no line for it; the edge
tests' "settled" barrier (a marker request's line) then missed requests that had reached the app.
"""

from __future__ import annotations

import logging

import anyio
import pytest
from litestar.types import Message, Receive, Scope, Send

from app.api.edge import EdgeMiddleware


def _scope(method: str = "POST", path: str = "/v1/chat/completions") -> Scope:
    return {"type": "http", "method": method, "path": path, "headers": []}  # type: ignore[return-value]


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}  # type: ignore[return-value]


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.access"]


async def test_line_exists_before_the_background_task_ends(caplog: pytest.LogCaptureFixture) -> None:
    body_sent, background_may_end = anyio.Event(), anyio.Event()
    observed: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}", "more_body": False})
        body_sent.set()
        await background_may_end.wait()  # what Litestar does with response.background

    async def send(message: Message) -> None:
        pass

    middleware = EdgeMiddleware(
        app, cors_enabled=False, allowed_origins=(), observe=lambda *args: observed.append(args[2])
    )
    with caplog.at_level(logging.INFO, logger="app.access"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(middleware, _scope(), _receive, send)
            await body_sent.wait()
            lines_while_background_runs = _access_lines(caplog)
            background_may_end.set()
    assert len(lines_while_background_runs) == 1
    assert lines_while_background_runs[0].startswith("POST /v1/chat/completions 200 ")
    assert len(_access_lines(caplog)) == 1  # and only once
    assert observed == [200]


@pytest.mark.parametrize("sent", ["nothing", "start-only"])
async def test_response_never_completed_is_still_logged_once(caplog: pytest.LogCaptureFixture, sent: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if sent == "start-only":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise OSError("client went away")

    async def send(message: Message) -> None:
        pass

    middleware = EdgeMiddleware(app, cors_enabled=False, allowed_origins=())
    with caplog.at_level(logging.INFO, logger="app.access"), pytest.raises(OSError, match="went away"):
        await middleware(_scope(), _receive, send)
    lines = _access_lines(caplog)
    assert len(lines) == 1
    assert lines[0].startswith(f"POST /v1/chat/completions {0 if sent == 'nothing' else 200} ")
