"""Process and backend health: /healthz (process up), /readyz (a worker is ready), /livez (event loop alive)."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from app.backend import BackendHealth


class Health(msgspec.Struct):
    ok: bool
    backend: BackendHealth


class Ready(msgspec.Struct):
    ready: bool
    reason: str | None
    backend_mode: str
    ready_workers: int


@get("/healthz", sync_to_thread=False)
def healthz(state: State) -> Health:
    health = state.api.backend.health()
    return Health(ok=health.ready, backend=health)


@get("/readyz", sync_to_thread=False)
def readyz(state: State) -> Response[Ready]:
    backend = state.api.backend
    ready = backend.ready
    body = Ready(
        ready=ready,
        reason=None if ready else backend.not_ready_reason(),
        backend_mode=backend.mode,
        ready_workers=backend.pool.ready_count if backend.pool else 0,
    )
    return Response(body, status_code=200 if ready else 503)


@get("/livez", sync_to_thread=False)
def livez() -> dict[str, bool]:
    return {"live": True}


ROUTES = [healthz, readyz, livez]
