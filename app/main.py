"""The app factory: `create_app(settings)` assembles routes, middleware, error handlers and the lifespan.

Granian imports `app.main:create_app` with `--factory`; nothing reads the environment at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from litestar import Litestar

from app import tracing
from app.api import health, metrics, openai_routes, usage_routes
from app.api.context import ApiContext
from app.api.edge import EdgeMiddleware
from app.api.hostguard import HostGuard
from app.api.overload import OverloadGuard
from app.codex.turn import TurnSource
from app.devkey import ensure_dev_key
from app.errors import EXCEPTION_HANDLERS
from app.logs import configure_logging
from app.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, turns: TurnSource | None = None) -> Litestar:
    """`turns` replaces the Codex pool with another source of turn events (the in-process test seam)."""
    settings = ensure_dev_key(settings or Settings.from_env())
    configure_logging(settings)
    for warning in settings.startup_warnings:  # the older implementation's variables (app.legacy_env), once each
        logger.warning("configuration: %s", warning)
    ctx = ApiContext(settings, turns)
    traces = tracing.setup(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if traces is not None:
            traces.start()
        await asyncio.to_thread(ctx.usage.load_today)  # today's tokens per key, for the token budgets
        await ctx.backend.start()
        try:
            yield
        finally:
            await ctx.backend.stop()
            await asyncio.to_thread(ctx.usage.close)  # write the queued usage records
            await ctx.images.aclose()
            if traces is not None:
                traces.shutdown()

    routes = [*health.ROUTES, *openai_routes.ROUTES, *usage_routes.ROUTES]
    if settings.enable_responses:
        routes += openai_routes.RESPONSES_ROUTES
    if settings.enable_metrics:
        routes += metrics.ROUTES
    app = Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        # None, not the default LoggingConfig: that one re-configures the root logger after configure_logging and
        # so silently overrode PROXY_LOG_LEVEL / PROXY_LOG_JSON (issue 11).
        logging_config=None,
        debug=False,
    )
    app.state.api = ctx
    # Requests in flight past the overload limit get a clear 503 instead of waiting on Granian's connection cap.
    app.asgi_handler = OverloadGuard(app.asgi_handler, settings.overload_limit)
    # The edge middleware wraps Litestar's whole handler (not the route middleware stack), so responses that
    # routing itself produces — unknown path 404, wrong method 405 — also get the request id and CORS headers.
    app.asgi_handler = EdgeMiddleware(
        app.asgi_handler,
        cors_enabled=settings.enable_cors,
        allowed_origins=settings.cors_allowed_origins,
        observe=ctx.metrics.observe_request,
    )
    if traces is not None:
        app.asgi_handler = tracing.TracingMiddleware(app.asgi_handler, traces)
    # Outermost: a request for a foreign Host (DNS rebinding) is refused before anything else sees it.
    app.asgi_handler = HostGuard(app.asgi_handler, settings.allowed_hosts)
    return app
