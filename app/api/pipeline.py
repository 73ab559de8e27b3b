"""One request pipeline for chat completions, legacy completions and responses.

decode body → plan (app.translate.inbound) → open the turn (its owner task holds the Codex session) → relay
turn events into the output accumulator and the API's encoder (app.translate.outbound) → either one JSON body,
or SSE frames with keepalives → release the turn (clean-up continues after the response). Timeouts, the stream
guard, cancellation on disconnect, the output contract and error mapping live here once for every API.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import ParamSpec, TypeVar

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from app import tracing
from app.api.context import ApiContext
from app.codex.pool import PoolBusy, PoolNotReady
from app.codex.turn import (
    OpenTurn,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallReady,
    ToolCallsRequested,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    Usage,
)
from app.errors import ApiError, error_response, from_codex, not_ready, timeout_error
from app.openai.errors import ErrorDetail
from app.translate.outbound import contract
from app.translate.outbound.accumulator import MessageOut, OutputAccumulator
from app.translate.outbound.sse import Encoder, EncoderFactory
from app.translate.outbound.tool_stream import ToolStream
from app.translate.plan import RequestInvalid, TurnPlan
from app.usage import UsageRecord

T = TypeVar("T")
P = ParamSpec("P")
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


def plan_or_error(fn: Callable[P, TurnPlan], *args: P.args, **kwargs: P.kwargs) -> TurnPlan:
    try:
        return fn(*args, **kwargs)
    except RequestInvalid as exc:
        raise ApiError(exc.status, exc.message, param=exc.param, code=exc.code) from None


# ---- relaying turn events -------------------------------------------------------------------------------


def _detail(err: ApiError) -> ErrorDetail:
    return ErrorDetail(message=err.message, type=err.type, param=err.param, code=err.code)


def _failure(plan: TurnPlan, acc: OutputAccumulator, finished: TurnFinished) -> ApiError | None:
    """A codex failure, or an output that breaks what the client asked for (schema, required tool call)."""
    if finished.status != "completed" or finished.error is not None:
        if finished.error is not None:
            return from_codex(finished.error)
        return ApiError(
            502, "The turn was interrupted before it completed.", type="server_error", code="turn_interrupted"
        )
    violation = contract.check(plan.contract, acc, finished)
    if violation is None:
        return None
    return ApiError(502, violation.message, type="server_error", code=violation.code, param=violation.param)


class Relay:
    """Feeds each turn event into the accumulator and, when streaming, returns the encoder's frames for it.

    With `tool_choice` required, text is held back until a tool call shows it belongs to a valid answer. Which
    calls go out, and when, is the stop-after-tools policy's (app.translate.outbound.tool_stream); reasoning is
    left out when the server or the request (`reasoning.summary: none`) hides it."""

    def __init__(self, plan: TurnPlan, encoder: Encoder, *, stream: bool) -> None:
        self.plan = plan
        self.enc = encoder
        self.acc = encoder.acc
        self.stream = stream
        self.hold = plan.contract.holds_text
        self.tools = ToolStream(plan.tool_stream)
        self.failure: ApiError | None = None

    def on(self, event: TurnEvent) -> list[bytes]:
        acc, enc = self.acc, self.enc
        if isinstance(event, TextDelta):
            if self.tools.drops_text():
                return []
            item, opened = acc.text(event.text)
            return enc.text(item, event.text, opened) if self.stream and not self.hold else []
        if isinstance(event, ReasoningDelta):
            if not self.plan.expose_reasoning:
                return []
            item, opened = acc.reasoning(event.text)
            return enc.reasoning(item, event.text, opened) if self.stream else []
        if isinstance(event, ToolCallReady):
            return self._calls([event.call]) if self.tools.ready(event.call, event.at) else []
        if isinstance(event, ToolCallsRequested):
            return self._calls(self.tools.batch(event.calls))
        self.failure = _failure(self.plan, acc, event)
        if not self.stream:
            return []
        if self.failure is not None:
            return enc.failure(_detail(self.failure))
        return [*self._release_held(), *enc.closing(event)]

    def _calls(self, calls: list[ToolCall]) -> list[bytes]:
        if not calls:
            return []
        held = self._release_held()
        items = self.acc.tool_calls(tuple(calls))
        return [*held, *self.enc.tool_calls(items)] if self.stream else []

    def _release_held(self) -> list[bytes]:
        if not (self.hold and self.stream):
            return []
        self.hold = False
        frames: list[bytes] = []
        for item in self.acc.items:
            if isinstance(item, MessageOut):
                frames += self.enc.text(item, item.text, True)
        return frames


# ---- execution ---------------------------------------------------------------------------------------------


async def paced(
    turn: OpenTurn, *, keepalive: float | None, idle: float, deadline: float
) -> AsyncGenerator[list[TurnEvent] | None, None]:
    """The turn's events in batches, `None` for each keepalive tick; 504 ApiError on idle or overall timeout.

    A batch is the next event plus every event that had already arrived behind it (`turn.poll()`), so a burst of
    deltas codex wrote in one go becomes one write to the client instead of one per delta (issue 15), and no
    task is created for an event that is already there. The pending `next_event` survives keepalive ticks (no
    event is ever lost); it is cancelled only on exit.
    """
    pending: asyncio.Task[TurnEvent | None] | None = None
    last = time.monotonic()
    try:
        while True:
            first = turn.poll() if pending is None else None
            if first is None:
                if pending is None:
                    pending = asyncio.ensure_future(turn.next_event())
                now = time.monotonic()
                wake = min(deadline, last + idle, now + keepalive if keepalive else float("inf"))
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, wake - now))
                if not done:
                    now = time.monotonic()
                    if now >= deadline:
                        raise _request_timeout()
                    if now >= last + idle:
                        raise timeout_error(
                            "The model produced no output within the idle timeout; the turn was stopped.",
                            "idle_timeout",
                        )
                    yield None
                    continue
                first, pending = pending.result(), None
                if first is None:
                    return
            last = time.monotonic()
            if last >= deadline:
                raise _request_timeout()
            batch = [first]
            while not isinstance(batch[-1], TurnFinished) and (more := turn.poll()) is not None:
                batch.append(more)
            yield batch
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


def _request_timeout() -> ApiError:
    return timeout_error("The request took longer than PROXY_TIMEOUT_MS; the turn was stopped.", "request_timeout")


class TurnRecorder:
    """Records one request's outcome exactly once: the metrics counters and a usage log line."""

    def __init__(self, ctx: ApiContext, request: Request, plan: TurnPlan) -> None:
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
            record := UsageRecord(
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
        tracing.record(record)


async def execute(
    ctx: ApiContext, request: Request, plan: TurnPlan, encoder: EncoderFactory
) -> Response[bytes] | Stream:
    s = ctx.settings
    if plan.stream:
        ctx.streams.acquire()
    recorder = TurnRecorder(ctx, request, plan)
    try:
        turn = await ctx.backend.open_turn(plan.turn)
    except BaseException as exc:
        if plan.stream:
            ctx.streams.release()
        recorder.finish("rejected", None)  # busy, overloaded, not ready, or the turn failed to start
        raise _mapped(exc) from exc
    relay = Relay(plan, encoder(plan, OutputAccumulator()), stream=plan.stream)
    deadline = time.monotonic() + s.request_timeout_ms / 1000
    if not plan.stream:
        gone = False
        try:
            return await _collect(recorder, turn, relay, idle=s.idle_timeout_ms / 1000, deadline=deadline)
        except asyncio.CancelledError:
            gone = True  # the server cancelled the handler: the client went away
            raise
        finally:
            # The owner interrupts/unsubscribes/deletes after this: the client never waits for codex's clean-up.
            _let_go(ctx, recorder, turn, deadline, client_gone=gone)
    keepalive = (
        s.sse_keepalive_ms / 1000 if s.sse_keepalive_ms and request.headers.get("x-no-keepalive") != "1" else None
    )
    body = _stream(
        ctx, recorder, turn, relay, keepalive=keepalive, idle=s.stream_idle_timeout_ms / 1000, deadline=deadline
    )
    return Stream(body, media_type="text/event-stream", headers={**SSE_HEADERS, **mode_headers(plan)})


def mode_headers(plan: TurnPlan) -> dict[str, str]:
    """The output mode in effect (and the stop-after-tools mode when enforced), echoed on every answer, and the
    declared tool types the model was not offered, so leaving them out is never silent."""
    headers = {"x-proxy-output-mode": plan.output_mode}
    if plan.tool_stream.enforced:
        headers["x-codex-stop-after-tools-mode"] = plan.tool_stream.mode
    if plan.tools_left_out:
        headers["x-codex-tools-left-out"] = ",".join(dict.fromkeys(plan.tools_left_out))
    return headers


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


def _outcome(relay: Relay, finished: TurnFinished) -> str:
    return "failed" if relay.failure is not None else finished.status


async def _collect(
    recorder: TurnRecorder, turn: OpenTurn, relay: Relay, *, idle: float, deadline: float
) -> Response[bytes] | Stream:
    finished: TurnFinished | None = None
    try:
        async with contextlib.aclosing(paced(turn, keepalive=None, idle=idle, deadline=deadline)) as batches:
            async for batch in batches:
                for event in batch or ():
                    relay.on(event)
                    if isinstance(event, TurnFinished):
                        finished = event
    except TurnFailed as exc:
        recorder.finish("worker_lost", None)
        return error_response(from_codex(exc.error))
    except ApiError as exc:  # timeouts: answer now, the turn is cleaned up after the response
        recorder.finish("timeout", None)
        return error_response(exc)
    assert finished is not None
    recorder.finish(_outcome(relay, finished), finished.usage)
    if relay.failure is not None:
        return error_response(relay.failure)
    body = ENCODER.encode(relay.enc.body(finished))
    return Response(body, media_type="application/json", status_code=200, headers=mode_headers(relay.plan))


async def _stream(
    ctx: ApiContext,
    recorder: TurnRecorder,
    turn: OpenTurn,
    relay: Relay,
    *,
    keepalive: float | None,
    idle: float,
    deadline: float,
) -> AsyncIterator[bytes]:
    outcome = "cancelled"  # unless the stream reaches an end of its own: the client went away
    try:
        yield b"".join(relay.enc.opening())
        async with contextlib.aclosing(paced(turn, keepalive=keepalive, idle=idle, deadline=deadline)) as batches:
            async for batch in batches:
                if batch is None:
                    yield KEEPALIVE
                    continue
                # Every frame of the batch in one chunk: one write to the client per loop tick, not per delta.
                frames: list[bytes] = []
                for event in batch:
                    frames += relay.on(event)
                    if isinstance(event, TurnFinished):
                        outcome = _outcome(relay, event)
                        recorder.finish(outcome, event.usage)
                if frames:
                    yield b"".join(frames)
    except (ApiError, TurnFailed) as exc:
        outcome = "timeout" if isinstance(exc, ApiError) else "worker_lost"
        recorder.finish(outcome, None)
        err = exc if isinstance(exc, ApiError) else from_codex(exc.error)
        yield b"".join(relay.enc.failure(_detail(err)))
    finally:
        # The SSE slot is the client's: free it in the same step as the in-flight gauge drops, so a client that
        # saw the gauge at 0 is not refused with a 429; the turn's owner cleans up after the response.
        ctx.streams.release()
        _let_go(ctx, recorder, turn, deadline, client_gone=outcome == "cancelled")


def _let_go(ctx: ApiContext, recorder: TurnRecorder, turn: OpenTurn, deadline: float, *, client_gone: bool) -> None:
    """The response is done with the turn. When the client went away the turn is interrupted — unless
    PROXY_KILL_ON_DISCONNECT=false: then it runs on to its own end (bounded by the request deadline), its output is
    dropped (a stateless API has no one to give it to) and its exact usage is recorded as `cancelled`."""
    if client_gone and not ctx.settings.kill_on_disconnect:
        ctx.backend.let_finish(turn, recorder.finish, deadline)
        return
    recorder.finish("cancelled", None)  # no-op unless nothing recorded yet: the client went away
    turn.release()
