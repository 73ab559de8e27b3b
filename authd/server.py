"""The authd request handler, as a bare RSGI app (served) and a bare ASGI app (measured alternative).

Why no framework: authd answers one question per request, and every microsecond here is added to
every API request Traefik forwards. bench/edge.py measures this module under RSGI and ASGI; docs/edge.md has
the figures that picked RSGI (and an earlier comparison with the same handler behind Litestar).

Responses are precomputed; the per-request work is a header lookup, one SHA-256 and one
``compare_digest`` per key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from authd.keys import KeyStore, parse_bearer
from authd.settings import Settings

logger = logging.getLogger(__name__)

UNAUTHORIZED_BODY = (
    b'{"error":{"message":"unauthorized","type":"authentication_error","param":null,"code":"invalid_api_key"}}'
)
NOT_FOUND_BODY = b'{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":"not_found"}}'
HEALTH_BODY = b'{"status":"ok"}'
READY_BODY = b'{"ready":true,"reason":null}'

Response = tuple[int, list[tuple[str, str]], bytes]


class Verifier:
    """Maps (method, path, Authorization values) to a response. Pure apart from the throttled reload check."""

    def __init__(self, settings: Settings, store: KeyStore) -> None:
        self._store = store
        self._reload_interval = settings.reload_interval
        self._next_reload_check = time.monotonic() + settings.reload_interval
        json_headers = [("content-type", "application/json"), ("cache-control", "no-store")]
        self._unauthorized: Response = (
            401,
            [*json_headers, ("www-authenticate", settings.www_authenticate)],
            UNAUTHORIZED_BODY,
        )
        self._not_found: Response = (404, json_headers, NOT_FOUND_BODY)
        self._health: Response = (200, json_headers, HEALTH_BODY)
        self._preflight: Response = (204, [("cache-control", "no-store")], b"")

    def _maybe_reload(self) -> None:
        # A monotonic comparison per request; the stat() behind reload_if_changed runs at most once per interval.
        now = time.monotonic()
        if now >= self._next_reload_check:
            self._next_reload_check = now + self._reload_interval
            self._store.reload_if_changed()

    def handle(self, method: str, path: str, authorization: Sequence[str]) -> Response:
        if path == "/verify" or path.startswith("/verify/"):
            if method == "OPTIONS":
                return self._preflight  # preflights never carry a key
            self._maybe_reload()
            token = parse_bearer(authorization)
            name = self._store.lookup(token) if token is not None else None
            if name is None:
                return self._unauthorized
            return (200, [("x-auth-user", name), ("cache-control", "no-store")], b"")
        if path == "/healthz":
            return self._health
        if path == "/readyz":
            return self._readiness()
        return self._not_found

    def _readiness(self) -> Response:
        """200 when the keys file on disk is the set being served; 503 naming the problem when an edit broke it
        (the last good set keeps serving, so a revocation may not have taken effect: issue 13)."""
        self._store.reload_if_changed()
        problem = self._store.problem
        if problem is None:
            return (200, self._health[1], READY_BODY)
        body = b'{"ready":false,"reason":' + json.dumps(problem).encode() + b"}"
        return (503, self._health[1], body)


def load_store(settings: Settings) -> KeyStore:
    store = KeyStore(settings.api_key, settings.keys_file)
    if settings.keys_file is None and len(store) == 0:
        raise SystemExit(
            "authd: set PROXY_API_KEY or PROXY_API_KEYS_FILE (no key configured, every request would fail)"
        )
    return store


class _RsgiHeaders(Protocol):
    def get_all(self, name: str) -> list[str]: ...


class RsgiScope(Protocol):
    """The part of Granian's RSGI scope authd reads (Granian ships no complete stubs for it)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> _RsgiHeaders: ...


class RsgiProtocol(Protocol):
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...
    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None: ...


class RSGIApp:
    """RSGI entry point (Granian's native protocol: no per-request dict scope, no message coroutines)."""

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    async def __rsgi__(self, scope: RsgiScope, protocol: RsgiProtocol) -> None:
        status, headers, body = self._verifier.handle(scope.method, scope.path, scope.headers.get_all("authorization"))
        if body:
            protocol.response_bytes(status, headers, body)
        else:
            protocol.response_empty(status, headers)


def _asgi_headers(headers: list[tuple[str, str]], body: bytes) -> list[tuple[bytes, bytes]]:
    raw = [(k.encode(), v.encode()) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    return raw


class ASGIApp:
    """ASGI entry point with the same behaviour, kept for the measured comparison in bench/edge.py."""

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        authorization = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        status, headers, body = self._verifier.handle(scope["method"], scope["path"], authorization)
        await send({"type": "http.response.start", "status": status, "headers": _asgi_headers(headers, body)})
        await send({"type": "http.response.body", "body": body})


def create_rsgi() -> RSGIApp:
    """Granian factory (runs in each worker): settings and keys are loaded per worker process."""
    settings = Settings.from_env()
    return RSGIApp(Verifier(settings, load_store(settings)))


def create_asgi() -> ASGIApp:
    settings = Settings.from_env()
    return ASGIApp(Verifier(settings, load_store(settings)))
