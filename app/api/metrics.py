"""`GET /metrics`: Prometheus text for operators (loopback, or a separate bearer token).

Counters are kept in plain dicts owned by the app (one process, one event loop: no locks needed). Labels are
bounded by construction — route templates, methods, status families, token kinds — never client strings such
as the requested model id (the old implementation's cardinality defect).
"""

from __future__ import annotations

import hmac
import ipaddress

from litestar import Request, Response, get
from litestar.datastructures import State

from app.api.metrics_store import Metrics
from app.errors import ApiError
from app.quota import PlanQuotaView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _line(name: str, value: float, **labels: str) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


def render(state: State) -> str:
    ctx = state.api
    m: Metrics = ctx.metrics
    backend = ctx.backend
    pool = backend.pool
    out = [
        "# HELP codex_http_requests_total HTTP requests by route template, method and status family.",
        "# TYPE codex_http_requests_total counter",
        *(_line("codex_http_requests_total", n, route=r, method=me, status=s) for (r, me, s), n in m.requests.items()),
        "# HELP codex_http_request_seconds_sum Time spent answering, by route template.",
        "# TYPE codex_http_request_seconds_sum counter",
        *(_line("codex_http_request_seconds_sum", round(v, 6), route=r) for r, v in m.duration_sum.items()),
        "# HELP codex_turns_total Codex turns by outcome.",
        "# TYPE codex_turns_total counter",
        *(_line("codex_turns_total", n, outcome=o) for o, n in m.turns.items()),
        "# HELP codex_tokens_total Tokens Codex reported, by kind.",
        "# TYPE codex_tokens_total counter",
        *(_line("codex_tokens_total", n, kind=k) for k, n in m.tokens.items()),
        "# HELP codex_turns_in_flight Turns running now.",
        "# TYPE codex_turns_in_flight gauge",
        _line("codex_turns_in_flight", backend.in_flight.value),
        "# HELP codex_sse_streams_active Open SSE responses.",
        "# TYPE codex_sse_streams_active gauge",
        _line("codex_sse_streams_active", ctx.streams.active),
        "# HELP codex_workers_ready app-server workers that are ready.",
        "# TYPE codex_workers_ready gauge",
        _line("codex_workers_ready", pool.ready_count if pool else 0),
        "# HELP codex_worker_restarts_total app-server restarts since start.",
        "# TYPE codex_worker_restarts_total counter",
        _line("codex_worker_restarts_total", sum(w.restarts for w in pool.workers) if pool else 0),
        "# HELP codex_maintenance_mode 1 while maintenance mode is on (generation routes answer 503).",
        "# TYPE codex_maintenance_mode gauge",
        _line("codex_maintenance_mode", int(ctx.maintenance.on)),
        *_plan_lines(backend.quota.view()),
    ]
    if ctx.keys.keys_file is not None:
        ctx.keys.reload_if_changed()
        out += [
            "# HELP codex_api_keys_file_loaded 1 when the keys file on disk is the key set in use, 0 when it failed.",
            "# TYPE codex_api_keys_file_loaded gauge",
            _line("codex_api_keys_file_loaded", 0 if ctx.keys.problem else 1),
        ]
    return "\n".join(out) + "\n"


def _plan_lines(plan: PlanQuotaView) -> list[str]:
    """The plan's windows (labels: the limit id Codex reports, e.g. `codex`, and primary/secondary)."""
    used, resets = [], []
    for limit in plan.limits:
        for name, window in (("primary", limit.primary), ("secondary", limit.secondary)):
            if window is None:
                continue
            used.append(_line("codex_plan_used_percent", window.used_percent, limit=limit.limit_id[:32], window=name))
            if window.resets_at is not None:
                resets.append(
                    _line("codex_plan_resets_at_seconds", window.resets_at, limit=limit.limit_id[:32], window=name)
                )
    return [
        "# HELP codex_plan_used_percent Percent of the ChatGPT plan's window used, as Codex last reported it.",
        "# TYPE codex_plan_used_percent gauge",
        *used,
        "# HELP codex_plan_resets_at_seconds When the window resets (Unix time).",
        "# TYPE codex_plan_resets_at_seconds gauge",
        *resets,
        "# HELP codex_plan_usage_limit_reached 1 while generation requests are refused with usage_limit_reached.",
        "# TYPE codex_plan_usage_limit_reached gauge",
        _line("codex_plan_usage_limit_reached", int(plan.usage_limit_reached)),
    ]


def _allowed(request: Request, token: str, allow_loopback: bool = True) -> bool:
    if token:
        header = request.headers.get("authorization", "")
        if hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
            return True
    if not allow_loopback:  # PROXY_METRICS_ALLOW_LOOPBACK=false: the token is needed from everywhere
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@get("/metrics", sync_to_thread=False)
def metrics(request: Request, state: State) -> Response[str]:
    s = state.api.settings
    if not _allowed(request, s.metrics_token, s.metrics_allow_loopback):
        raise ApiError(
            403, "metrics are served to loopback or with PROXY_METRICS_TOKEN", type="permission_error", code="forbidden"
        )
    return Response(render(state), media_type=CONTENT_TYPE)


ROUTES = [metrics]
