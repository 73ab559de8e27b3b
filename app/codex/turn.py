"""One stateless request as one ephemeral thread and one turn on a leased worker.

`TurnSession` gives `TextDelta`/`ReasoningDelta` as codex streams them and ends with one `TurnFinished`
carrying the exact usage (Δ of `thread/tokenUsage/updated` totals; with a fresh thread that is the total) and
the failure, if any. Whatever ends the session — completion, an exception, the caller's cancellation on a
client disconnect or a timeout — its exit interrupts an unfinished turn (shielded, bounded), unsubscribes the
thread and frees the worker slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Literal

import anyio
import msgspec

from app.codex import protocol as p
from app.codex.client import RpcClient, RpcFailure, ThreadEnded, WorkerLost
from app.codex.pool import Lease, Worker, WorkerPool

logger = logging.getLogger(__name__)

INTERRUPT_TIMEOUT = 1.0
USAGE_BACKSTOP = 1.5


class HistoryMessage(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    text: str
    images: tuple[str, ...] = ()  # data URLs (user messages only)


class TurnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the client asked for, in Codex terms (built by app.translate, never from raw dicts)."""

    input_text: str
    input_images: tuple[str, ...] = ()
    history: tuple[HistoryMessage, ...] = ()
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    developer_instructions: str | None = None
    cwd: str | None = None


class Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


class CodexError(msgspec.Struct, frozen=True):
    """A failure reported by codex (turn error / error notification / JSON-RPC error / lost worker)."""

    message: str
    info: str | None = None
    http_status: int | None = None
    rpc_code: int | None = None


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True):
    text: str


class TurnFinished(msgspec.Struct, frozen=True):
    status: Literal["completed", "interrupted", "failed"]
    usage: Usage | None
    error: CodexError | None = None


TurnEvent = TextDelta | ReasoningDelta | TurnFinished


class TurnFailed(Exception):
    """The turn could not run or failed before producing output; mapped to an HTTP error by app.errors."""

    def __init__(self, error: CodexError) -> None:
        super().__init__(error.message)
        self.error = error


class InFlight:
    """Counts turns between start and cleanup (exposed on /healthz and /metrics)."""

    def __init__(self) -> None:
        self.value = 0


def _usage(b: p.TokenBreakdown) -> Usage:
    return Usage(
        input_tokens=b.input_tokens,
        cached_input_tokens=b.cached_input_tokens,
        output_tokens=b.output_tokens,
        reasoning_output_tokens=b.reasoning_output_tokens,
        total_tokens=b.total_tokens,
    )


def _error_from(err: p.TurnError) -> CodexError:
    info, status = err.info()
    return CodexError(message=err.message or "codex reported an error", info=info, http_status=status)


async def _open(pool: WorkerPool, req: TurnRequest, retries: int) -> tuple[Lease, str, str]:
    """Lease a worker, start the ephemeral thread (with history) and the turn; retry -32001 elsewhere."""
    tried: list[Worker] = []
    attempt = 0
    while True:
        lease = await pool.acquire(exclude=tried if len(tried) < len(pool.workers) else ())
        client = lease.client
        thread_id = ""
        try:
            params = p.ThreadStartParams(
                ephemeral=True,
                model=req.model if req.model else msgspec.UNSET,
                cwd=req.cwd if req.cwd else msgspec.UNSET,
                developer_instructions=req.developer_instructions or msgspec.UNSET,
                config={"model_reasoning_effort": req.effort} if req.effort else msgspec.UNSET,
            )
            started = await client.request(
                "thread/start", params, timeout=lease.request_timeout, result_type=p.ThreadStartResult
            )
            thread_id = started.thread.id
            client.subscribe(thread_id)
            if req.history:
                items = [p.MessageItem(role=m.role, content=_history_parts(m)) for m in req.history]
                await client.request(
                    "thread/inject_items",
                    p.ThreadInjectItemsParams(thread_id=thread_id, items=items),
                    timeout=lease.request_timeout,
                )
            turn = await client.request(
                "turn/start",
                p.TurnStartParams(
                    thread_id=thread_id,
                    input=[p.TextInput(text=req.input_text), *(p.ImageInput(url=u) for u in req.input_images)],
                    effort=req.effort or msgspec.UNSET,
                    summary=req.summary or msgspec.UNSET,
                ),
                timeout=lease.request_timeout,
                result_type=p.TurnStartResult,
            )
            return lease, thread_id, turn.turn.id
        except RpcFailure as exc:
            await _close_thread(client, thread_id, lease.request_timeout)
            lease.release()
            if exc.code != p.OVERLOADED or attempt >= retries:
                raise TurnFailed(CodexError(message=exc.message, rpc_code=exc.code)) from exc
            attempt += 1
            tried.append(lease.worker)
            await asyncio.sleep(random.uniform(0.05, 0.25) * attempt)
        except BaseException:
            await _close_thread(client, thread_id, lease.request_timeout)
            lease.release()
            raise


def _history_parts(message: HistoryMessage) -> list[p.ContentPart]:
    kind: Literal["input_text", "output_text"] = "input_text" if message.role == "user" else "output_text"
    parts = [p.ContentPart(type=kind, text=message.text)] if message.text or not message.images else []
    return parts + [p.ContentPart(type="input_image", image_url=url) for url in message.images]


async def _close_thread(client: RpcClient, thread_id: str, timeout: float) -> None:
    """Unsubscribe and delete: an ephemeral thread stays loaded (and keeps its memory) for 30 minutes after an
    unsubscribe alone; `thread/delete` unloads it at once, which keeps codex's RSS flat over thousands of turns."""
    if not thread_id:
        return
    client.release(thread_id)
    shielded = anyio.CancelScope(shield=True)
    with shielded, anyio.move_on_after(timeout), contextlib.suppress(RpcFailure, WorkerLost, TimeoutError):
        # The RPC deadline is longer than the cancel scope's: slow clean-up is given up on, never taken for a hang.
        params = p.ThreadUnsubscribeParams(thread_id=thread_id)
        await client.request("thread/unsubscribe", params, timeout=timeout * 10)
        await client.request("thread/delete", params, timeout=timeout * 10)


class TurnSession:
    """An opened turn: `async with TurnSession(...) as turn:` then `await turn.next_event()` until None.

    Opening (lease, thread/start, history, turn/start) happens in `__aenter__`, so the HTTP layer can still
    answer busy/overloaded/not-ready with a proper status before committing stream headers. `next_event` is a
    plain coroutine that is safe to cancel (a timeout or keepalive wait never loses an event). `__aexit__`
    always cleans up, shielded from the caller's cancellation.
    """

    def __init__(
        self, pool: WorkerPool, req: TurnRequest, *, overload_retries: int, usage_grace: float, in_flight: InFlight
    ) -> None:
        self.pool = pool
        self.req = req
        self.overload_retries = overload_retries
        self.usage_grace = usage_grace
        self.in_flight = in_flight
        self.lease: Lease | None = None
        self.thread_id = ""
        self.turn_id = ""
        self.usage: Usage | None = None
        self.error: CodexError | None = None
        self.status: str | None = None
        self.idle = False
        self.finished = False
        self._queue: asyncio.Queue | None = None

    async def __aenter__(self) -> TurnSession:
        try:
            self.lease, self.thread_id, self.turn_id = await _open(self.pool, self.req, self.overload_retries)
        except WorkerLost as exc:
            raise TurnFailed(CodexError(message=str(exc), info="workerLost")) from exc
        self._queue = self.lease.client.subscribe(self.thread_id)
        self.in_flight.value += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        lease = self.lease
        if lease is None:
            return
        self.lease = None
        self.in_flight.value -= 1
        client = lease.client
        with anyio.CancelScope(shield=True):
            if not self.finished and not client.closed.is_set():
                await _interrupt(client, self.thread_id, self.turn_id)
            await _close_thread(client, self.thread_id, min(lease.request_timeout, 2.0))
            lease.release()

    async def next_event(self) -> TurnEvent | None:
        """The next delta, then one TurnFinished, then None. Raises TurnFailed if the worker is lost."""
        assert self._queue is not None
        if self.finished:
            return None
        while self.status is None:
            event = await self._queue.get()
            if isinstance(event, ThreadEnded):
                raise TurnFailed(CodexError(message=event.reason, info="workerLost"))
            if isinstance(event, p.AgentMessageDelta):
                if event.delta:
                    return TextDelta(event.delta)
            elif isinstance(event, p.ReasoningSummaryDelta):
                if event.delta:
                    return ReasoningDelta(event.delta)
            elif isinstance(event, p.TurnCompleted):
                if event.turn.id == self.turn_id:
                    self.status = event.turn.status
                    if event.turn.error is not None and self.error is None:
                        self.error = _error_from(event.turn.error)
            else:
                self._track(event)
        if self.status == "completed":
            # A failed turn never goes idle (codex reports systemError first): don't wait for it.
            await self._await_usage()
        self.finished = True
        final = self.status if self.status in ("completed", "interrupted", "failed") else "failed"
        if final == "failed" and self.error is None:
            self.error = CodexError(message="codex reported the turn as failed")
        return TurnFinished(status=final, usage=self.usage, error=self.error)  # type: ignore[arg-type]

    def _track(self, event: object) -> None:
        if isinstance(event, p.TokenUsageUpdated):
            self.usage = _usage(event.token_usage.total)
        elif isinstance(event, p.ErrorNotification):
            if not event.will_retry:
                self.error = _error_from(event.error)
            else:
                logger.info("codex retries after: %s", event.error.message)
        elif isinstance(event, p.ThreadStatusChanged):
            self.idle = event.status.type == "idle"

    async def _await_usage(self) -> None:
        """Usage can trail turn/completed: wait for the thread to go idle, then a short grace if none came."""
        assert self._queue is not None
        deadline = time.monotonic() + USAGE_BACKSTOP
        grace_deadline = time.monotonic() + self.usage_grace if self.idle else None
        while not (self.usage is not None and self.idle):
            limit = min(deadline, grace_deadline) if grace_deadline is not None else deadline
            remaining = limit - time.monotonic()
            if remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                return
            if isinstance(event, ThreadEnded):
                return
            was_idle = self.idle
            self._track(event)
            if self.idle and not was_idle:
                grace_deadline = time.monotonic() + self.usage_grace


async def _interrupt(client: RpcClient, thread_id: str, turn_id: str) -> None:
    """Stop codex working on a turn nobody waits for. The request goes out at once; we wait for the answer at
    most 1 s but a slow answer is not a hang: codex serialises interrupts (~0.1 s each), so a burst of client
    disconnects must not get a healthy worker killed."""
    with anyio.move_on_after(INTERRUPT_TIMEOUT), contextlib.suppress(RpcFailure, WorkerLost, TimeoutError):
        await client.request(
            "turn/interrupt",
            p.TurnInterruptParams(thread_id=thread_id, turn_id=turn_id),
            timeout=INTERRUPT_TIMEOUT * 30,
        )
