"""The floor for bench/streams.py: a bare ASGI app on Granian that holds every request as an SSE stream.

It does nothing per stream but send a keepalive comment every 15 s, so the RSS it takes at 1,000 and 5,000 open
streams is what Granian (and the interpreter) cost per held connection; the app's own share is the difference.
"""

from __future__ import annotations

import asyncio

from litestar.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/ready":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    while True:
        await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
        await asyncio.sleep(15)
