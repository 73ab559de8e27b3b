"""ASGI guard: past `Settings.overload_limit` requests in flight, answer 503 `server_overloaded` at once.

Why (issue 15): Granian serves at most `PROXY_MAX_CONNECTIONS` connections per process (its backpressure); a
connection beyond that waits in the kernel's listen backlog with no answer at all, which a client sees as a hang.
This guard refuses clearly well before that point, so a client always gets an answer; health probes and
/metrics pass anyway (they are what an operator needs most when the process is saturated) and use the reserve
between the two limits.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

EXEMPT = frozenset({"/healthz", "/readyz", "/livez", "/metrics"})
_BODY = (
    b'{"error":{"message":"The server is handling as many requests as it can; retry shortly.",'
    b'"type":"server_error","param":null,"code":"server_overloaded"}}'
)
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"retry-after", b"1"),
    (b"connection", b"close"),  # frees the client's connection slot at once (it counts against Granian's cap)
]


class OverloadGuard:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit and scope["path"] not in EXEMPT:
            await send({"type": "http.response.start", "status": 503, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
