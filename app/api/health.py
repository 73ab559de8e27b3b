"""Process and backend health: /healthz (process up), /readyz (a worker is ready), /livez (event loop alive).

/readyz is 503 `needs_login` when the backend has no usable Codex login (missing in production, or rejected by
the provider while serving); /healthz shows the login's state to operators on the host.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from app.backend import BackendHealth
from app.quota import PlanQuotaView


class Health(msgspec.Struct):
    ok: bool
    backend: BackendHealth
    plan: PlanQuotaView  # the ChatGPT plan's 5-hour / weekly windows as Codex last reported them
    maintenance: bool = False


class PublicHealth(msgspec.Struct):
    """What /healthz tells the internet (it is routed publicly by Traefik): up or not, nothing internal."""

    ok: bool
    backend_mode: str
    ready_workers: int


class Ready(msgspec.Struct):
    ready: bool
    # None when ready; else misconfigured / needs_login / worker_not_ready (stable words for monitoring).
    code: str | None
    reason: str | None
    backend_mode: str
    ready_workers: int
    maintenance: bool = False


@get("/healthz", sync_to_thread=False)
def healthz(request: Request, state: State) -> Health | PublicHealth:
    """Always 200 while the process runs. Requests that came through a proxy (X-Forwarded-For, i.e. from the
    internet via Traefik) get the summary only; operators on the host get worker pids, exits and stderr tails."""
    health = state.api.backend.health()
    if request.headers.get("x-forwarded-for") is not None:
        ready = sum(1 for w in health.workers if w.ready)
        return PublicHealth(ok=health.ready, backend_mode=health.backend_mode, ready_workers=ready)
    return Health(
        ok=health.ready, backend=health, plan=state.api.backend.quota.view(), maintenance=state.api.maintenance.on
    )


def _code(backend_code: str | None, keys_problem: str | None, maintenance: bool) -> str | None:
    """The first reason as a code a monitor can switch on (the backend's own first: login, workers...)."""
    if backend_code:
        return backend_code
    if keys_problem:
        return "keys_file_not_loaded"
    return "maintenance" if maintenance else None


@get("/readyz", sync_to_thread=False)
def readyz(state: State) -> Response[Ready]:
    """503 also while the keys file on disk is not the key set being served (a broken edit keeps the last good
    set working, e.g. a key meant to be revoked): the operator must see it (issue 13)."""
    backend = state.api.backend
    keys = state.api.keys
    keys.reload_if_changed()
    maintenance = state.api.maintenance.on  # 503 so Traefik drains the host; requests in flight finish
    problems = (
        None if backend.ready else backend.not_ready_reason(),
        keys.problem,
        state.api.maintenance.reason() if maintenance else None,
    )
    reasons = [r for r in problems if r]
    ready = not reasons
    body = Ready(
        ready=ready,
        code=_code(backend.not_ready_code(), keys.problem, maintenance),
        reason="; ".join(reasons) or None,
        backend_mode=backend.mode,
        ready_workers=backend.pool.ready_count if backend.pool else 0,
        maintenance=maintenance,
    )
    return Response(body, status_code=200 if ready else 503)


@get("/livez", sync_to_thread=False)
def livez() -> dict[str, bool]:
    return {"live": True}


ROUTES = [healthz, readyz, livez]
