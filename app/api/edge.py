"""ASGI middleware in front of every route: request id, CORS, preflights, access log.

Request id: a client's `X-Request-Id` is kept when it is sane (1 to 128 visible ASCII characters, no spaces), so a
client can correlate its own logs; otherwise one is generated. Either way it is echoed on every response
(errors and SSE included) and written to the access line and the usage record.

Hand-written rather than Litestar's CORSConfig because the rules are specific: an allowlist of `*` answers
`Access-Control-Allow-Origin: *` **without** credentials (never reflect any origin with credentials, the old
implementation's defect); a listed origin is reflected with `Vary: Origin`; preflights echo the requested
headers; and the headers are on every response, errors included. Any OPTIONS gets 204 here.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.api import request_note
from app.api.request_note import RequestNote

logger = logging.getLogger("app.access")

ALLOW_METHODS = b"GET, POST, HEAD, OPTIONS"
EXPOSE_HEADERS = (
    b"X-Request-Id, Retry-After, Content-Type, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    b"x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens"
)
_SANE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
DEFAULT_ALLOW_HEADERS = b"Authorization, Content-Type, Accept, OpenAI-Beta, OpenAI-Organization, OpenAI-Project"


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def request_id_from(header: bytes | None) -> str:
    """The client's X-Request-Id when it is sane (printable ASCII, no spaces, at most 128), else a new id."""
    if header is not None and _SANE_REQUEST_ID.fullmatch(header):
        return header.decode("ascii")
    return new_request_id()


def cors_headers(
    origin: str | None, allowed: Sequence[str], preflight_headers: str | None
) -> list[tuple[bytes, bytes]]:
    """Pure: the CORS headers for a response to `origin` under the allowlist (empty when not allowed)."""
    if not origin:
        return []
    headers: list[tuple[bytes, bytes]] = []
    if "*" in allowed:
        headers.append((b"access-control-allow-origin", b"*"))
    elif origin in allowed:
        headers += [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
        ]
    else:
        return [(b"vary", b"Origin")]
    headers.append((b"vary", b"Origin"))
    headers.append((b"access-control-expose-headers", EXPOSE_HEADERS))
    if preflight_headers is not None:
        requested = preflight_headers.encode("latin-1") if preflight_headers.strip() else DEFAULT_ALLOW_HEADERS
        headers += [
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", requested),
            (b"access-control-max-age", b"600"),
        ]
    return headers


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label set), or `unmatched`; never the raw client path."""
    handler = scope.get("route_handler")
    paths = sorted(getattr(handler, "paths", ()) or ())
    return paths[0] if paths else "unmatched"


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cors_enabled: bool,
        allowed_origins: Sequence[str],
        observe: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.app = app
        self.cors_enabled = cors_enabled
        self.allowed = tuple(allowed_origins)
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        origin = headers.get(b"origin", b"").decode("latin-1") or None
        request_id = request_id_from(headers.get(b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        note = RequestNote(request_id)
        method = str(scope.get("method", ""))
        extra = [(b"x-request-id", request_id.encode())]
        if self.cors_enabled:
            acrh = headers.get(b"access-control-request-headers")
            preflight = method == "OPTIONS"
            extra += cors_headers(origin, self.allowed, (acrh or b"").decode("latin-1") if preflight else None)
        status_holder = [0]

        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": extra})
            await send({"type": "http.response.body", "body": b""})
            _log_access(scope, headers, 204, started, note)
            return

        finished = [False]

        def finish() -> None:
            if not finished[0]:
                finished[0] = True
                note.finish()
                _log_access(scope, headers, status_holder[0], started, note)
                if self.observe is not None:
                    self.observe(_route_template(scope), method, status_holder[0], time.monotonic() - started)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body":
                note.bytes_out += len(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # Logged when the last byte is handed to the server, not after the response's background
                # task (a non-stream turn's Codex clean-up runs there): the line then exists by the time
                # the client holds the whole answer, and its duration is the one the client saw.
                finish()

        token = request_note.activate(note)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            request_note.deactivate(token)
            finish()  # no complete body was sent: an error before it, or the client went away


def _clip(value: bytes | None, limit: int = 200) -> str | None:
    return value[:limit].decode("latin-1") if value else None


def _log_access(scope: Scope, headers: dict[bytes, bytes], status: int, started: float, note: RequestNote) -> None:
    """One line per request. Text: `METHOD PATH STATUS DURATIONms id=… user=…` and the rest as key=value; JSON:
    the same as fields. Never a header value that could carry a secret, never a body."""
    if not logger.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    user = scope.get("state", {}).get("auth_user")
    record = note.record
    fields = {
        "request_id": note.request_id,
        "method": scope.get("method", "-"),
        "route": _route_template(scope),
        "path": scope["path"][:200],
        "status": status,
        "duration_ms": duration_ms,
        "key": user,
        "bytes_out": note.bytes_out,
        "user_agent": _clip(headers.get(b"user-agent")),
        "outcome": record.outcome if record is not None else note.outcome,
        "model": record.model if record is not None else None,
        "tokens": record.total_tokens if record is not None else None,
    }
    tail = "".join(f" {name}={fields[name]}" for name in ("outcome", "model", "tokens") if fields[name] is not None)
    logger.info(
        "%s %s %d %.1fms id=%s user=%s bytes=%d%s ua=%r",
        scope.get("method", "-"),
        fields["path"],
        status,
        duration_ms,
        note.request_id,
        user or "-",
        note.bytes_out,
        tail,
        fields["user_agent"] or "-",
        extra={"fields": fields},
    )
