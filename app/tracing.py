"""OTLP/HTTP tracing (`PROXY_ENABLE_OTEL`): a span per HTTP request and, under a generation request, the Codex turn
with its worker lease, `thread/start` and `turn/start`.

Off by default, and then free: the OpenTelemetry SDK is not even imported, the ASGI middleware is not installed and
every helper returns at its first line. The call sites stay one line each (`traced(...)` around an await,
`begin`/`finish` around the turn, `record(...)` for the request's outcome).

Span attributes never carry prompt or completion text, nor the key: only ids (request, thread, turn, worker), the
route template, the model id, the key *name*, outcomes and token counts.

    HTTP span  "POST /v1/chat/completions"  codex.request_id, http.route, codex.key_name, gen_ai.request.model,
    │                                       codex.outcome, gen_ai.usage.*, http.response.status_code
    └── "turn"                              gen_ai.request.model, codex.thread_id, codex.turn_id, codex.status, usage
        ├── "worker lease"                  codex.worker
        ├── "thread/start"                  codex.thread_id
        └── "turn/start"                    codex.turn_id
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from app.settings import Settings
from app.usage import UsageRecord

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

logger = logging.getLogger(__name__)
R = TypeVar("R")
Attrs = Mapping[str, str | int | bool]

_tracer: Tracer | None = None  # set while an app with tracing on is running
_NULL = contextlib.nullcontext()


class Tracing:
    """The exporter pipeline one app owns: started by create_app, flushed and shut down in its lifespan."""

    def __init__(self, settings: Settings) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        assert settings.otel_endpoint is not None  # Settings.check refuses tracing without a collector
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name})
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint)))
        self.tracer = self.provider.get_tracer("codex_openai_api")
        logger.info("tracing: OTLP/HTTP spans to %s as %s", settings.otel_endpoint, settings.otel_service_name)

    def start(self) -> None:
        global _tracer
        _tracer = self.tracer

    def shutdown(self) -> None:
        global _tracer
        if _tracer is self.tracer:
            _tracer = None
        self.provider.shutdown()  # flushes what is still queued


def setup(settings: Settings) -> Tracing | None:
    return Tracing(settings) if settings.otel_enabled else None


def enabled() -> bool:
    return _tracer is not None


async def traced(name: str, awaitable: Awaitable[R], describe: Callable[[R], Attrs] | None = None) -> R:
    """`await awaitable` inside a child span `name`; `describe(result)` adds attributes from the result."""
    if _tracer is None:
        return await awaitable
    with _tracer.start_as_current_span(name) as span:
        result = await awaitable
        if describe is not None:
            span.set_attributes(dict(describe(result)))
        return result


def begin(name: str, attrs: Attrs) -> Span | None:
    """Start a span that outlives one block (the turn); it is a child of the current span."""
    return None if _tracer is None else _tracer.start_span(name, attributes=dict(attrs))


def current(span: Span | None) -> contextlib.AbstractContextManager[Any]:
    """Make `span` the parent of the spans started inside the block (without ending it)."""
    if span is None:
        return _NULL
    from opentelemetry.trace import use_span

    return use_span(span, end_on_exit=False)


def finish(span: Span | None, attrs: Attrs, error: str | None = None) -> None:
    if span is None or not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attributes(dict(attrs))
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


def record(rec: UsageRecord) -> None:
    """The request's outcome on the HTTP span (the current span while the pipeline runs)."""
    if _tracer is None:
        return
    from opentelemetry.trace import get_current_span

    span = get_current_span()
    if span.is_recording():
        span.set_attributes(
            {
                "gen_ai.request.model": rec.model,
                "codex.key_name": rec.key,
                "codex.outcome": rec.outcome,
                "codex.stream": rec.stream,
                **usage_attributes(rec.input_tokens, rec.cached_input_tokens, rec.output_tokens, rec.reasoning_tokens),
            }
        )


def usage_attributes(input_tokens: int, cached: int, output: int, reasoning: int) -> dict[str, int]:
    return {
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output,
        "codex.usage.cached_input_tokens": cached,
        "codex.usage.reasoning_tokens": reasoning,
    }


def _route(scope: Scope) -> str:
    handler = scope.get("route_handler")
    paths = sorted(getattr(handler, "paths", ()) or ())
    return paths[0] if paths else "unmatched"


class TracingMiddleware:
    """The HTTP span around everything else (installed only when tracing is on): route template, status, request id
    and key name are read after the inner app ran (the edge middleware and auth put them in the scope state)."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracer = tracing.tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        method = scope["method"]
        status = [0]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(method, kind=SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = _route(scope)
                state = scope.get("state", {})
                span.update_name(f"{method} {route}")
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status[0],
                        "codex.request_id": state.get("request_id", ""),
                        "codex.key_name": state.get("auth_user", ""),
                    }
                )
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR))
