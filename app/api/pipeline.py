"""One request pipeline for chat completions, legacy completions and responses; three wire formats.

decode body → plan (app.translate) → open a turn on the pool → either collect to one JSON body, or stream SSE
frames with keepalives. Timeouts, the stream guard, cancellation on disconnect and error mapping live here
once; a `WireFormat` only says how events look on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

import msgspec
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from app import translate as t
from app.api.context import ApiContext
from app.codex.pool import PoolBusy, PoolNotReady
from app.codex.turn import ReasoningDelta, TextDelta, TurnFailed, TurnFinished, TurnSession, Usage
from app.errors import ApiError, error_response, from_codex, not_ready, timeout_error
from app.openai import chat as c
from app.openai import responses as r
from app.openai.errors import ErrorDetail
from app.usage import UsageRecord

T = TypeVar("T")
ENCODER = msgspec.json.Encoder()
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keepalive\n\n"
_PATH = re.compile(r"at `\$(.*)`")


# ---- decoding -------------------------------------------------------------------------------------------


def decode_body(raw: bytes, typ: type[T]) -> T:
    """JSON body → struct; malformed JSON and wrong types become 400s naming the parameter."""
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object", code="invalid_json")
    try:
        return msgspec.json.decode(raw, type=typ)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        param = match.group(1).lstrip(".") if match else None
        message = text.split(" - at ")[0] if match else text
        raise ApiError(
            400, f"{message}" + (f" at {param}" if param else ""), param=param or None, code="invalid_type"
        ) from None
    except msgspec.DecodeError:
        raise ApiError(400, "Invalid JSON in request body", code="invalid_json") from None


def plan_or_error(fn: Any, *args: Any, **kwargs: Any) -> t.TurnPlan:
    try:
        return fn(*args, **kwargs)
    except t.RequestInvalid as exc:
        raise ApiError(exc.status, exc.message, param=exc.param, code=exc.code) from None


# ---- wire formats -----------------------------------------------------------------------------------------


def data_frame(obj: Any) -> bytes:
    return b"data: " + ENCODER.encode(obj) + b"\n\n"


class WireFormat(Protocol):
    def opening(self) -> list[bytes]: ...
    def text(self, delta: str) -> list[bytes]: ...
    def reasoning(self, delta: str) -> list[bytes]: ...
    def closing(self, finished: TurnFinished) -> list[bytes]: ...
    def failure(self, err: ApiError) -> list[bytes]: ...
    def body(self, finished: TurnFinished) -> Any: ...


class ChatFormat:
    """Chat completions: role-first chunk, content deltas, one finish chunk, optional usage chunk, [DONE]."""

    def __init__(self, plan: t.TurnPlan) -> None:
        self.plan = plan
        self.ids = t.ChatIds(
            id="chatcmpl-" + secrets.token_hex(12), created=int(time.time()), model=plan.requested_model
        )
        self.parts: list[str] = []

    def opening(self) -> list[bytes]:
        return [data_frame(t.chat_chunk(self.ids, c.Delta(role="assistant", content="")))]

    def text(self, delta: str) -> list[bytes]:
        self.parts.append(delta)
        return [data_frame(t.chat_chunk(self.ids, c.Delta(content=delta)))]

    def reasoning(self, delta: str) -> list[bytes]:
        return [data_frame(t.chat_chunk(self.ids, c.Delta(reasoning_content=delta)))]

    def closing(self, finished: TurnFinished) -> list[bytes]:
        frames = [data_frame(t.chat_chunk(self.ids, c.Delta(), t.finish_reason(finished)))]
        if self.plan.include_usage:
            frames.append(data_frame(t.chat_usage_chunk(self.ids, finished.usage)))
        return [*frames, b"data: [DONE]\n\n"]

    def failure(self, err: ApiError) -> list[bytes]:
        return [data_frame(err.envelope()), b"data: [DONE]\n\n"]

    def body(self, finished: TurnFinished) -> Any:
        return t.chat_completion(self.ids, "".join(self.parts), finished)


class CompletionsFormat(ChatFormat):
    """Legacy text completions: same flow, `text_completion` objects."""

    def __init__(self, plan: t.TurnPlan) -> None:
        super().__init__(plan)
        self.ids = t.ChatIds(id="cmpl-" + secrets.token_hex(12), created=self.ids.created, model=plan.requested_model)

    def opening(self) -> list[bytes]:
        return []

    def text(self, delta: str) -> list[bytes]:
        self.parts.append(delta)
        return [data_frame(t.text_chunk(self.ids, delta, None))]

    def reasoning(self, delta: str) -> list[bytes]:
        return []

    def closing(self, finished: TurnFinished) -> list[bytes]:
        frames = [data_frame(t.text_chunk(self.ids, "", t.finish_reason(finished)))]
        if self.plan.include_usage:
            usage = msgspec.structs.replace(
                t.text_chunk(self.ids, "", None), choices=[], usage=t.chat_usage(finished.usage)
            )
            frames.append(data_frame(usage))
        return [*frames, b"data: [DONE]\n\n"]

    def body(self, finished: TurnFinished) -> Any:
        return t.text_completion(self.ids, "".join(self.parts), finished)


class ResponsesFormat:
    """Responses API: typed `event:`/`data:` frames with increasing sequence numbers."""

    def __init__(self, plan: t.TurnPlan) -> None:
        suffix = secrets.token_hex(12)
        ids = t.ResponseIds(
            id="resp_" + suffix, created_at=int(time.time()), message_id="msg_" + suffix, reasoning_id="rs_" + suffix
        )
        self.builder = t.ResponseBuilder(ids, plan)

    @staticmethod
    def _frames(events: list[r.ResponseEvent]) -> list[bytes]:
        out = []
        for event in events:
            payload = ENCODER.encode(event)
            name = type(event).__struct_config__.tag
            out.append(b"event: " + str(name).encode() + b"\ndata: " + payload + b"\n\n")
        return out

    def opening(self) -> list[bytes]:
        return self._frames(self.builder.opening())

    def text(self, delta: str) -> list[bytes]:
        return self._frames(self.builder.on_text(delta))

    def reasoning(self, delta: str) -> list[bytes]:
        return self._frames(self.builder.on_reasoning(delta))

    def closing(self, finished: TurnFinished) -> list[bytes]:
        return self._frames(self.builder.closing(finished))

    def failure(self, err: ApiError) -> list[bytes]:
        detail = ErrorDetail(message=err.message, type=err.type, param=err.param, code=err.code)
        return self._frames(self.builder.failure(detail))

    def body(self, finished: TurnFinished) -> Any:
        return self.builder.response("completed", finished.usage)


# ---- execution ---------------------------------------------------------------------------------------------


async def paced(
    session: TurnSession, *, keepalive: float | None, idle: float, deadline: float
) -> AsyncIterator[TextDelta | ReasoningDelta | TurnFinished | None]:
    """The session's events, `None` for each keepalive tick; 504 ApiError on idle or overall timeout.

    The pending `next_event` survives keepalive ticks (no event is ever lost); it is cancelled only on exit.
    """
    pending: asyncio.Task[Any] | None = None
    last = time.monotonic()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(session.next_event())
            now = time.monotonic()
            wake = min(deadline, last + idle, now + keepalive if keepalive else float("inf"))
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, wake - now))
            if done:
                event, pending = pending.result(), None
                if event is None:
                    return
                last = time.monotonic()
                yield event
                continue
            now = time.monotonic()
            if now >= deadline:
                raise timeout_error(
                    "The request took longer than PROXY_TIMEOUT_MS; the turn was stopped.", "request_timeout"
                )
            if now >= last + idle:
                raise timeout_error(
                    "The model produced no output within the idle timeout; the turn was stopped.", "idle_timeout"
                )
            yield None
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


def _failure(finished: TurnFinished) -> ApiError | None:
    if finished.status == "completed" and finished.error is None:
        return None
    if finished.error is not None:
        return from_codex(finished.error)
    return ApiError(502, "The turn was interrupted before it completed.", type="server_error", code="turn_interrupted")


class TurnRecorder:
    """Records one request's outcome exactly once: the metrics counters and a usage log line."""

    def __init__(self, ctx: ApiContext, request: Request, plan: t.TurnPlan) -> None:
        state = request.scope.get("state", {})
        self.ctx = ctx
        self.started = time.monotonic()
        self.route = request.url.path
        self.request_id = state.get("request_id", "")
        self.key = state.get("auth_user", "")
        self.model = plan.requested_model[:64]
        self.stream = plan.stream
        self.done = False

    def finish(self, outcome: str, usage: Usage | None) -> None:
        if self.done:
            return
        self.done = True
        self.ctx.metrics.observe_turn(outcome, usage)
        u = usage or Usage()
        self.ctx.usage.append(
            UsageRecord(
                ts=int(time.time() * 1000),
                request_id=self.request_id,
                route=self.route,
                model=self.model,
                key=self.key,
                stream=self.stream,
                outcome=outcome,
                duration_ms=int((time.monotonic() - self.started) * 1000),
                input_tokens=u.input_tokens,
                cached_input_tokens=u.cached_input_tokens,
                output_tokens=u.output_tokens,
                reasoning_tokens=u.reasoning_output_tokens,
                total_tokens=u.total_tokens,
            )
        )


async def execute(ctx: ApiContext, request: Request, plan: t.TurnPlan, fmt: WireFormat) -> Response[Any]:
    s = ctx.settings
    pool = ctx.backend.serving_pool()  # issue 10: 503 codex_login_required / worker_not_ready when it cannot serve
    if plan.stream:
        ctx.streams.acquire()
    recorder = TurnRecorder(ctx, request, plan)
    session = TurnSession(
        pool,
        plan.turn,
        overload_retries=s.worker_overload_retries,
        usage_grace=s.usage_grace_ms / 1000,
        in_flight=ctx.backend.in_flight,
    )
    session = ctx.backend.watch_turn(session)  # issue 10: auth failures flip readiness until a turn succeeds
    try:
        await session.__aenter__()
    except BaseException as exc:
        if plan.stream:
            ctx.streams.release()
        recorder.finish("rejected", None)  # busy, overloaded, not ready, or the turn failed to start
        raise _mapped(exc) from exc
    deadline = time.monotonic() + s.request_timeout_ms / 1000
    if not plan.stream:
        try:
            response = await _collect(recorder, session, fmt, idle=s.idle_timeout_ms / 1000, deadline=deadline)
        except BaseException:
            await session.__aexit__(None, None, None)
            raise
        # Interrupt/unsubscribe/delete run after the body is sent: the client never waits for codex's clean-up.
        response.background = BackgroundTask(session.__aexit__, None, None, None)
        return response
    keepalive = (
        s.sse_keepalive_ms / 1000 if s.sse_keepalive_ms and request.headers.get("x-no-keepalive") != "1" else None
    )
    body = _stream(
        ctx,
        recorder,
        session,
        fmt,
        keepalive=keepalive,
        idle=s.stream_idle_timeout_ms / 1000,
        deadline=deadline,
    )
    return Stream(body, media_type="text/event-stream", headers=SSE_HEADERS)


def _mapped(exc: BaseException) -> BaseException:
    if isinstance(exc, TurnFailed):
        return from_codex(exc.error)
    if isinstance(exc, PoolBusy):
        return ApiError(
            429,
            f"All Codex workers are busy: {exc}",
            type="rate_limit_error",
            code="worker_busy",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, PoolNotReady):
        return not_ready(str(exc))
    if isinstance(exc, TimeoutError):
        return timeout_error("The Codex worker did not answer in time.", "worker_request_timeout")
    return exc


async def _collect(
    recorder: TurnRecorder, session: TurnSession, fmt: WireFormat, *, idle: float, deadline: float
) -> Response[Any]:
    finished: TurnFinished | None = None
    try:
        async with contextlib.aclosing(paced(session, keepalive=None, idle=idle, deadline=deadline)) as events:
            async for event in events:
                if isinstance(event, TurnFinished):
                    finished = event
                else:
                    _event_frames(fmt, event)  # accumulates the text; the frames themselves are not sent
    except TurnFailed as exc:
        recorder.finish("worker_lost", None)
        return error_response(from_codex(exc.error))
    except ApiError as exc:  # timeouts: answer now, the turn is cleaned up after the response
        recorder.finish("timeout", None)
        return error_response(exc)
    assert finished is not None
    failure = _failure(finished)
    recorder.finish("failed" if failure else finished.status, finished.usage)
    if failure is not None:
        return error_response(failure)
    return Response(ENCODER.encode(fmt.body(finished)), media_type="application/json", status_code=200)


def _event_frames(fmt: WireFormat, event: TextDelta | ReasoningDelta | TurnFinished | None) -> list[bytes]:
    """The wire frames for one paced event (the format also accumulates the text for the final object)."""
    if event is None:
        return [KEEPALIVE]
    if isinstance(event, TextDelta):
        return fmt.text(event.text)
    if isinstance(event, ReasoningDelta):
        return fmt.reasoning(event.text)
    failure = _failure(event)
    return fmt.failure(failure) if failure else fmt.closing(event)


async def _stream(
    ctx: ApiContext,
    recorder: TurnRecorder,
    session: TurnSession,
    fmt: WireFormat,
    *,
    keepalive: float | None,
    idle: float,
    deadline: float,
) -> AsyncIterator[bytes]:
    outcome = "cancelled"  # unless the stream reaches an end of its own: the client went away
    try:
        for frame in fmt.opening():
            yield frame
        async with contextlib.aclosing(paced(session, keepalive=keepalive, idle=idle, deadline=deadline)) as events:
            async for event in events:
                if isinstance(event, TurnFinished):
                    outcome = "failed" if _failure(event) else event.status
                    recorder.finish(outcome, event.usage)
                for frame in _event_frames(fmt, event):
                    yield frame
    except (ApiError, TurnFailed) as exc:
        outcome = "timeout" if isinstance(exc, ApiError) else "worker_lost"
        recorder.finish(outcome, None)
        for frame in fmt.failure(exc if isinstance(exc, ApiError) else from_codex(exc.error)):
            yield frame
    finally:
        recorder.finish(outcome, None)  # no-op unless nothing above recorded: the client went away
        # The SSE slot is the client's: free it before the (up to seconds-long) interrupt + unsubscribe, in the
        # same step as the in-flight gauge drops, so a client that saw the gauge at 0 is not refused with a 429.
        ctx.streams.release()
        await session.__aexit__(None, None, None)
