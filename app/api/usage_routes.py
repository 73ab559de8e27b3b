"""`GET /v1/usage` (sums over a time range, by model and key, optional hour/day buckets) and `/v1/usage/raw`.

Usage is private to its key: a key sees only its own records (other callers' key names, models, request ids
are nobody else's business) unless the keys file gives it the `usage:all` scope — the single-key setup is its
own admin. `?key=` narrows an admin's view to one key; a non-admin may only name itself (else 403). The
plan's quota windows are shared by every key and shown to all.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from app.api.context import ApiContext
from app.errors import ApiError, bad_request
from app.usage import UsageEvents, UsageSummary, parse_time


def _scope(ctx: ApiContext, name: str, key: str | None) -> str | None:
    """The key whose records the caller may see (None: all of them)."""
    key = key or None
    if ctx.may_read_all_usage(name):
        return key
    if key is not None and key != name:
        raise ApiError(
            403,
            "This key may only read its own usage; reading other keys' usage needs the `usage:all` scope.",
            type="permission_error",
            code="insufficient_scope",
            param="key",
        )
    return name


def _caller_scope(ctx: ApiContext, request: Request, key: str | None) -> str | None:
    """The caller's scope; with PROXY_USAGE_ALLOW_UNAUTH (dev only, refused in prod) a request without a bearer
    reads like the single-key admin, as the older implementation's open usage endpoints did."""
    if ctx.settings.usage_allow_unauth and not request.headers.get("authorization"):
        return key or None
    return _scope(ctx, ctx.authenticate(request), key)


@get("/v1/usage", sync_to_thread=True)
def usage(
    request: Request,
    state: State,
    start: FromQuery[str | None] = None,
    end: FromQuery[str | None] = None,
    group: FromQuery[Literal["hour", "day"] | None] = None,
    key: FromQuery[str | None] = None,
) -> UsageSummary:
    ctx: ApiContext = state.api
    only = _caller_scope(ctx, request, key)
    try:
        start_ms = parse_time(start, 0)
        end_ms = parse_time(end, int(time.time() * 1000) + 1)
    except ValueError:
        raise bad_request("start and end are epoch milliseconds or ISO 8601 times", "start") from None
    summary = ctx.usage.summary(start_ms, end_ms, group, key=only)
    return msgspec.structs.replace(summary, plan=ctx.backend.quota.view())


@get("/v1/usage/raw", sync_to_thread=True)
def usage_raw(
    request: Request,
    state: State,
    limit: Annotated[int, QueryParameter(ge=1, le=10000)] = 200,
    key: FromQuery[str | None] = None,
) -> UsageEvents:
    ctx: ApiContext = state.api
    return UsageEvents(data=ctx.usage.tail(limit, key=_caller_scope(ctx, request, key)))


ROUTES = [usage, usage_raw]
