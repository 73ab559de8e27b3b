"""`GET /v1/usage` (sums over a time range, by model and key, optional hour/day buckets) and `/v1/usage/raw`."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from app.errors import bad_request
from app.usage import UsageEvents, UsageSummary, parse_time


@get("/v1/usage", sync_to_thread=True)
def usage(
    request: Request,
    state: State,
    start: FromQuery[str | None] = None,
    end: FromQuery[str | None] = None,
    group: FromQuery[Literal["hour", "day"] | None] = None,
) -> UsageSummary:
    ctx = state.api
    if not ctx.settings.usage_allow_unauth:  # dev only (Settings.check refuses it in prod)
        ctx.authenticate(request)
    try:
        start_ms = parse_time(start, 0)
        end_ms = parse_time(end, int(time.time() * 1000) + 1)
    except ValueError:
        raise bad_request("start and end are epoch milliseconds or ISO 8601 times", "start") from None
    return ctx.usage.summary(start_ms, end_ms, group)


@get("/v1/usage/raw", sync_to_thread=True)
def usage_raw(
    request: Request, state: State, limit: Annotated[int, QueryParameter(ge=1, le=10000)] = 200
) -> UsageEvents:
    ctx = state.api
    if not ctx.settings.usage_allow_unauth:  # dev only (Settings.check refuses it in prod)
        ctx.authenticate(request)
    return UsageEvents(data=ctx.usage.tail(limit))


ROUTES = [usage, usage_raw]
