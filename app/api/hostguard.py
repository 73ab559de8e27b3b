"""ASGI guard in front of everything: requests must name this server in their Host header.

Why (issue 13): the app listens on loopback, but a web page can still reach it through DNS rebinding — its own
name resolves to 127.0.0.1 a moment later and the browser then sends `Host: rebind.evil.example` to the local
port, reading the API, /healthz and /metrics as same-origin. Only `localhost`, `127.0.0.1`, `[::1]` and the names
in PROXY_ALLOWED_HOSTS (the public API host behind Traefik) are answered; `*` turns the check off. A request
without a Host header is not a browser's and passes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from litestar.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_BODY = (
    b'{"error":{"message":"This server does not answer to the Host header sent; add the name to '
    b'PROXY_ALLOWED_HOSTS if it is yours.","type":"invalid_request_error","param":null,"code":"host_not_allowed"}}'
)


def host_name(header: str) -> str:
    """`Example.COM.:8443` → `example.com`, `[::1]:11435` → `[::1]`: lower case, no port, no trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        value = name
    return value.rstrip(".")


class HostGuard:
    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        names = [host_name(a) for a in allowed if a.strip()]
        self.any = "*" in names
        self.allowed = frozenset((*LOOPBACK_HOSTS, *names))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            host = next((v for k, v in scope.get("headers", []) if k.lower() == b"host"), None)
            if host is not None and host_name(host.decode("latin-1")) not in self.allowed:
                logger.warning(
                    "refused %s %s: Host %r is not allowed", scope["method"][:16], scope["path"][:200], host[:100]
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_BODY)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _BODY})
                return
        await self.app(scope, receive, send)
