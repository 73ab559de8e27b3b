"""One stateless request as one ephemeral thread and one turn on a leased worker.

A `TurnRequest` (built by app.translate) says what the client asked for in Codex terms: the input, the history
as typed items (messages, tool calls, tool results — injected 1:1 with `thread/inject_items`), the client's
tools and an optional output schema. `TurnSession` opens it and yields typed events as codex streams them:
`TextDelta`, `ReasoningDelta`, `ToolCallReady` (one client-tool call, as soon as the model completed it),
`ToolCallsRequested` (the model called client tools: every call of that model response, together, at its end)
and one `TurnFinished` carrying the finish reason, the exact usage and the failure, if any.

Ownership: `TurnTasks.open()` gives each turn one owner task that holds the session's `async with`. The HTTP
side reads events and calls `release()` when its response is done; the owner then interrupts an unfinished turn
(a tool call ends the response while codex still waits for the result), unsubscribes and deletes the thread and
frees the worker slot — after the response, never in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Literal, Protocol

import anyio
import msgspec

from app import tracing
from app.codex import protocol as p
from app.codex.client import RpcClient, RpcFailure, ServerRequest, ThreadEnded, WorkerLost
from app.codex.pool import Lease, Worker, WorkerPool

logger = logging.getLogger(__name__)

INTERRUPT_TIMEOUT = 1.0
USAGE_BACKSTOP = 1.5


# ---- what the client asked for --------------------------------------------------------------------------------


class ImageRef(msgspec.Struct, frozen=True):
    """An image the client sent: a data URL by the time the turn opens (remote http(s) URLs are fetched and
    inlined first, app.api.images), and its `detail` (auto / low / high / original) passed through to codex."""

    url: str
    detail: str | None = None


class HistoryMessage(msgspec.Struct, frozen=True, tag="message"):
    role: Literal["user", "assistant", "developer"]
    text: str
    images: tuple[ImageRef, ...] = ()  # user messages only


class HistoryToolCall(msgspec.Struct, frozen=True, tag="function_call"):
    """A call the model made earlier; `arguments` is the JSON text exactly as the client sent it back."""

    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class HistoryToolResult(msgspec.Struct, frozen=True, tag="function_call_output"):
    """The client's result for one earlier call (text, plus images when the tool returned some)."""

    call_id: str
    text: str
    images: tuple[ImageRef, ...] = ()


HistoryItem = HistoryMessage | HistoryToolCall | HistoryToolResult


class TurnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the client asked for, in Codex terms (built by app.translate, never from raw dicts).

    Empty `input_text` and `input_images` mean a continuation: the history ends with tool results and the model
    goes on from them (turn/start with no new user input)."""

    input_text: str = ""
    input_images: tuple[ImageRef, ...] = ()
    history: tuple[HistoryItem, ...] = ()
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    developer_instructions: str | None = None
    cwd: str | None = None
    tools: tuple[p.DynamicTool, ...] = ()
    parallel_tool_calls: bool = True
    output_schema: msgspec.Raw | None = None
    # The operator's PROXY_SANDBOX_MODE / PROXY_APPROVAL_POLICY, filled in by the backend (not by app.translate).
    sandbox: str = "read-only"
    approval_policy: str = "never"


# ---- what the turn yields -------------------------------------------------------------------------------------


class Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_output_tokens=self.reasoning_output_tokens + other.reasoning_output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


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


class ToolCall(msgspec.Struct, frozen=True):
    """One client-tool call: `arguments` is the JSON text the model wrote, unchanged."""

    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class ToolCallReady(msgspec.Struct, frozen=True):
    """The model finished writing one client-tool call (its raw item completed), before its response ended.

    `at` is when the session saw it (monotonic seconds): the stop-after-tools policy groups calls into bursts by
    these times. A `ToolCallsRequested` with every call of the response still follows; a relay that does not
    stream calls early ignores this event."""

    call: ToolCall
    at: float


class ToolCallsRequested(msgspec.Struct, frozen=True):
    """The model called client tools: all calls of one model response, in order. The response ends here."""

    calls: tuple[ToolCall, ...]


FinishReason = Literal["stop", "tool_calls"]


class TurnFinished(msgspec.Struct, frozen=True):
    status: Literal["completed", "interrupted", "failed"]
    usage: Usage | None
    error: CodexError | None = None
    reason: FinishReason = "stop"


TurnEvent = TextDelta | ReasoningDelta | ToolCallReady | ToolCallsRequested | TurnFinished


class TurnFailed(Exception):
    """The turn could not run or failed before producing output; mapped to an HTTP error by app.errors."""

    def __init__(self, error: CodexError) -> None:
        super().__init__(error.message)
        self.error = error


class OpenTurn(Protocol):
    """What the HTTP pipeline holds while it relays a turn: its events, then `release()` once the response is
    done (cleanup continues without the client waiting)."""

    async def next_event(self) -> TurnEvent | None: ...

    def poll(self) -> TurnEvent | None:
        """The next event if it has already arrived, else None (then await `next_event`); never waits."""
        ...

    def release(self) -> None: ...


class TurnSource(Protocol):
    """Where turns come from: the worker pool in the app, a script of events in the in-process tests."""

    async def open(self, req: TurnRequest) -> OpenTurn: ...


class InFlight:
    """Counts turns between start and cleanup (exposed on /healthz and /metrics)."""

    def __init__(self) -> None:
        self.value = 0


# ---- opening a turn ---------------------------------------------------------------------------------------------


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


def codex_tools(tools: tuple[p.DynamicTool, ...]) -> list[p.DynamicTool]:
    """The client's tools as codex must get them: top-level functions with a name codex reserves move into
    `protocol.CLIENT_NAMESPACE`, where codex accepts them (it would silently drop them at the top level)."""
    kept: list[p.DynamicTool] = []
    moved: list[p.DynamicFunctionTool] = []
    for tool in tools:
        if isinstance(tool, p.DynamicFunctionTool) and tool.name in p.RESERVED_TOOL_NAMES:
            moved.append(tool)
        else:
            kept.append(tool)
    if moved:
        kept.append(p.DynamicNamespaceTool(name=p.CLIENT_NAMESPACE, description="The client's tools.", tools=moved))
    return kept


def _codex_namespace(name: str, namespace: str | None) -> str | None:
    return p.CLIENT_NAMESPACE if namespace is None and name in p.RESERVED_TOOL_NAMES else namespace


def _thread_params(req: TurnRequest) -> p.ThreadStartParams:
    return p.ThreadStartParams(
        ephemeral=True,
        sandbox=req.sandbox,
        approval_policy=req.approval_policy,
        model=req.model if req.model else msgspec.UNSET,
        cwd=req.cwd if req.cwd else msgspec.UNSET,
        developer_instructions=req.developer_instructions or msgspec.UNSET,
        config={"model_reasoning_effort": req.effort} if req.effort else msgspec.UNSET,
        dynamic_tools=codex_tools(req.tools) if req.tools else msgspec.UNSET,
        experimental_raw_events=True if req.tools else msgspec.UNSET,
    )


def history_item(item: HistoryItem) -> p.HistoryItem:
    """One history item as the raw Responses item `thread/inject_items` takes (a 1:1 mapping)."""
    if isinstance(item, HistoryMessage):
        kind: Literal["input_text", "output_text"] = "output_text" if item.role == "assistant" else "input_text"
        parts = [p.ContentPart(type=kind, text=item.text)] if item.text or not item.images else []
        parts += [_image_part(image) for image in item.images]
        return p.MessageItem(role=item.role, content=parts)
    if isinstance(item, HistoryToolCall):
        namespace = _codex_namespace(item.name, item.namespace)
        return p.FunctionCallItem(
            call_id=item.call_id,
            name=item.name,
            arguments=item.arguments,
            namespace=namespace if namespace else msgspec.UNSET,
        )
    if not item.images:
        return p.FunctionCallOutputItem(call_id=item.call_id, output=item.text)
    parts = [p.ContentPart(type="input_text", text=item.text)] if item.text else []
    parts += [_image_part(image) for image in item.images]
    return p.FunctionCallOutputItem(call_id=item.call_id, output=parts)


def _image_part(image: ImageRef) -> p.ContentPart:
    return p.ContentPart(type="input_image", image_url=image.url, detail=image.detail)


async def _open(pool: WorkerPool, req: TurnRequest, retries: int) -> tuple[Lease, str, str]:
    """Lease a worker, start the ephemeral thread (with history) and the turn; retry -32001 elsewhere."""
    tried: list[Worker] = []
    attempt = 0
    while True:
        lease = await tracing.traced(
            "worker lease",
            pool.acquire(exclude=tried if len(tried) < len(pool.workers) else ()),
            lambda held: {"codex.worker": held.worker.index},
        )
        client = lease.client
        thread_id = ""
        try:
            started = await tracing.traced(
                "thread/start",
                client.request(
                    "thread/start", _thread_params(req), timeout=lease.request_timeout, result_type=p.ThreadStartResult
                ),
                lambda result: {"codex.thread_id": result.thread.id},
            )
            thread_id = started.thread.id
            client.subscribe(thread_id)
            if req.history:
                items = [history_item(item) for item in req.history]
                await client.request(
                    "thread/inject_items",
                    p.ThreadInjectItemsParams(thread_id=thread_id, items=items),
                    timeout=lease.request_timeout,
                )
            inputs: list[p.TextInput | p.ImageInput] = [p.TextInput(text=req.input_text)] if req.input_text else []
            inputs += [
                p.ImageInput(url=i.url, detail=i.detail if i.detail else msgspec.UNSET) for i in req.input_images
            ]
            turn = await tracing.traced(
                "turn/start",
                client.request(
                    "turn/start",
                    p.TurnStartParams(
                        thread_id=thread_id,
                        input=inputs,
                        effort=req.effort or msgspec.UNSET,
                        summary=req.summary or msgspec.UNSET,
                        output_schema=req.output_schema if req.output_schema is not None else msgspec.UNSET,
                    ),
                    timeout=lease.request_timeout,
                    result_type=p.TurnStartResult,
                ),
                lambda result: {"codex.turn_id": result.turn.id},
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


async def _close_thread(client: RpcClient, thread_id: str, timeout: float) -> None:
    """Unsubscribe and delete: an ephemeral thread stays loaded (and keeps its memory) for 30 minutes after an
    unsubscribe alone; `thread/delete` unloads it at once, which keeps codex's RSS flat over thousands of turns."""
    if not thread_id:
        return
    client.release(thread_id)
    shielded = anyio.CancelScope(shield=True)
    with shielded, anyio.move_on_after(timeout), contextlib.suppress(RpcFailure, WorkerLost, TimeoutError):
        # The RPC deadline is longer than the cancel scope's: slow clean-up is given up on, never taken for a hang.
        # Both requests go out in one write (one wake-up of the child); a failure of either is ignored, as before.
        params = p.ThreadUnsubscribeParams(thread_id=thread_id)
        await client.request_all([("thread/unsubscribe", params), ("thread/delete", params)], timeout=timeout * 10)


# ---- the session ------------------------------------------------------------------------------------------------


class _ToolBatch:
    """Client-tool calls of the current model response, collected from raw items until the response completes.

    codex dispatches each call as an `item/tool/call` request as soon as the model emits it; they are held
    unanswered (the client runs the tools, not us) and abandoned by the interrupt that ends the turn."""

    def __init__(self, tools: tuple[p.DynamicTool, ...], parallel: bool, history: tuple[HistoryItem, ...]) -> None:
        # Raw events also replay the injected history: its calls are the client's past, not new calls.
        self.past = {item.call_id for item in history if isinstance(item, HistoryToolCall)}
        self.declared: set[tuple[str | None, str]] = set()
        for tool in tools:
            if isinstance(tool, p.DynamicNamespaceTool):
                self.declared.update((tool.name, t.name) for t in tool.tools)
            else:
                self.declared.add((None, tool.name))
        self.parallel = parallel
        self.calls: list[ToolCall] = []
        self.usage: Usage | None = None  # summed over the turn's model responses
        self.held: list[ServerRequest] = []

    def on_item(self, item: p.RawItem) -> ToolCall | None:
        """The client-tool call this raw item completes, if it is one (and is kept)."""
        if item.type != "function_call" or item.name is None or item.call_id is None or item.call_id in self.past:
            return None
        namespace = None if item.namespace == p.CLIENT_NAMESPACE else item.namespace
        if (namespace, item.name) not in self.declared:
            return None  # a codex built-in (request_user_input): codex answers it itself
        if self.calls and not self.parallel:
            return None  # `parallel_tool_calls: false`: the client asked for at most one call per response
        call = ToolCall(item.call_id, item.name, item.arguments or "{}", namespace)
        self.calls.append(call)
        return call

    def on_response(self, usage: p.TokenBreakdown | None) -> bool:
        """A model response completed; True when it called client tools (the batch is complete)."""
        if usage is not None:
            self.usage = _usage(usage) if self.usage is None else self.usage + _usage(usage)
        return bool(self.calls)


class TurnSession:
    """An opened turn: `async with TurnSession(...) as turn:` then `await turn.next_event()` until None.

    Opening (lease, thread/start, history, turn/start) happens in `__aenter__`, so the HTTP layer can still
    answer busy/overloaded/not-ready with a proper status before committing stream headers. `next_event` is a
    plain coroutine that is safe to cancel (a timeout or keepalive wait never loses an event). `__aexit__`
    always cleans up, shielded from the caller's cancellation. In the app one owner task holds the `async with`
    (see `TurnTasks`); tests may hold it directly.
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
        self.released = asyncio.Event()
        self._pending_finish: TurnFinished | None = None
        self._tools = _ToolBatch(req.tools, req.parallel_tool_calls, req.history) if req.tools else None
        self._queue: asyncio.Queue | None = None
        self._span = tracing.begin("turn", {"gen_ai.request.model": req.model or "", "codex.tools": len(req.tools)})
        self._stash: object | None = None  # a queued event `poll` took but only `next_event` can handle

    async def __aenter__(self) -> TurnSession:
        try:
            with tracing.current(self._span):
                self.lease, self.thread_id, self.turn_id = await _open(self.pool, self.req, self.overload_retries)
        except WorkerLost as exc:
            self._end_span("failed", str(exc))
            raise TurnFailed(CodexError(message=str(exc), info="workerLost")) from exc
        except BaseException as exc:
            self._end_span("not_started", type(exc).__name__)
            raise
        self._queue = self.lease.client.subscribe(self.thread_id)
        self.in_flight.value += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        lease = self.lease
        if lease is None:
            return
        self._end_span(self.status or "released")
        self.lease = None
        self.in_flight.value -= 1
        client = lease.client
        with anyio.CancelScope(shield=True):
            if not self.finished_in_codex and not client.closed.is_set():
                await _interrupt(client, self.thread_id, self.turn_id)
            await _close_thread(client, self.thread_id, min(lease.request_timeout, 2.0))
            lease.release()

    @property
    def finished_in_codex(self) -> bool:
        """Codex itself ended the turn (a tool-call finish does not: the turn waits for results until interrupted)."""
        return self.status is not None

    def release(self) -> None:
        """The HTTP response is done with this turn; its owner may clean up now."""
        self.released.set()

    async def next_event(self) -> TurnEvent | None:
        """The next delta or tool-call batch, then one TurnFinished, then None. Raises TurnFailed if the worker is
        lost."""
        assert self._queue is not None
        if self.finished:
            return None
        if self._pending_finish is not None:
            self.finished = True
            self._end_span("tool_calls", usage=self._pending_finish.usage)
            return self._pending_finish
        while self.status is None:
            if self._stash is not None:
                event, self._stash = self._stash, None
            else:
                event = await self._queue.get()
            if isinstance(event, ThreadEnded):
                raise TurnFailed(CodexError(message=event.reason, info="workerLost"))
            if isinstance(event, ServerRequest) and self._tools is None:
                # routed, but this turn offered no tools: nothing to run
                await event.fail(p.METHOD_NOT_FOUND, f"{event.method}: this turn has no client tools")
                continue
            if (out := self._step(event)) is not None:
                return out
        if self.status == "completed":
            # A failed turn never goes idle (codex reports systemError first): don't wait for it.
            await self._await_usage()
        self.finished = True
        final = self.status if self.status in ("completed", "interrupted", "failed") else "failed"
        if final == "failed" and self.error is None:
            self.error = CodexError(message="codex reported the turn as failed")
        self._end_span(final, self.error.message if self.error else None)
        return TurnFinished(status=final, usage=self.usage, error=self.error)  # type: ignore[arg-type]

    def _end_span(self, status: str, error: str | None = None, usage: Usage | None = None) -> None:
        """The turn span ends once, with codex's status and the exact usage (never any text)."""
        span, self._span = self._span, None
        if span is not None:
            u = usage or self.usage or Usage()
            attrs = {"codex.status": status, "codex.thread_id": self.thread_id, "codex.turn_id": self.turn_id}
            tokens = tracing.usage_attributes(
                u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_output_tokens
            )
            tracing.finish(span, {**attrs, **tokens}, error)

    def poll(self) -> TurnEvent | None:
        """The next delta or tool-call batch if codex already sent it, without waiting; None means await
        `next_event` (nothing queued, the turn is ending — usage may still trail — or an event needs an await).

        The relay takes every event of one loop tick this way and writes them as one chunk (issue 15)."""
        queue = self._queue
        if queue is None or self.finished or self._pending_finish is not None or self._stash is not None:
            return None
        while self.status is None and not queue.empty():
            event = queue.get_nowait()
            if isinstance(event, ThreadEnded) or (isinstance(event, ServerRequest) and self._tools is None):
                self._stash = event
                return None
            if (out := self._step(event)) is not None:
                return out
        return None

    def _step(self, event: object) -> TurnEvent | None:
        """One queued codex event → the turn event it makes, if any (no waiting: shared by `next_event`/`poll`)."""
        if isinstance(event, p.AgentMessageDelta):
            return TextDelta(event.delta) if event.delta else None
        if isinstance(event, p.ReasoningSummaryDelta):
            return ReasoningDelta(event.delta) if event.delta else None
        if isinstance(event, p.TurnCompleted):
            if event.turn.id == self.turn_id:
                self.status = event.turn.status
                if event.turn.error is not None and self.error is None:
                    self.error = _error_from(event.turn.error)
            return None
        if self._tools is not None:
            return self._on_tool_event(event)
        self._track(event)
        return None

    def _on_tool_event(self, event: object) -> TurnEvent | None:
        """Tool-call bookkeeping: each call as the model completes it, then the batch once its response completed."""
        tools = self._tools
        assert tools is not None
        if isinstance(event, ServerRequest):
            tools.held.append(event)  # answered never: the client runs the tool; the interrupt abandons the call
        elif isinstance(event, p.RawResponseItemCompleted):
            if (call := tools.on_item(event.item)) is not None:
                return ToolCallReady(call, time.monotonic())
        elif isinstance(event, p.RawResponseCompleted):
            if tools.on_response(event.usage):
                self._pending_finish = TurnFinished(status="completed", usage=tools.usage, reason="tool_calls")
                return ToolCallsRequested(tuple(tools.calls))
        else:
            self._track(event)
        return None

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


class TurnTasks:
    """Owns one task per open turn. The task holds the session's `async with` from opening until the HTTP side
    calls `release()`, then cleans up (interrupt, unsubscribe, delete, free the slot) on its own time, so a
    response is never held open by codex's clean-up. `aclose()` at shutdown releases and awaits them all."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], TurnSession] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    async def open(self, session: TurnSession) -> TurnSession:
        """Open `session` in its owner task; raises what opening raised (busy, not ready, TurnFailed…)."""
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._own(session, opened), name=f"turn-owner-{id(session):x}")
        self._tasks[task] = session
        task.add_done_callback(self._forget)
        try:
            await opened
        except asyncio.CancelledError:
            session.release()  # opened just now, or still opening: either way nobody will read this turn
            task.cancel()
            raise
        return session

    async def _own(self, session: TurnSession, opened: asyncio.Future[None]) -> None:
        try:
            async with session:
                if opened.done():  # the caller gave up while we were opening
                    return
                opened.set_result(None)
                await session.released.wait()
        except BaseException as exc:
            if not opened.done():
                opened.set_exception(exc)
                return
            if not isinstance(exc, asyncio.CancelledError):
                logger.exception("turn owner failed after the turn was opened")
            raise

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled():
            task.exception()  # retrieved (and logged above), so asyncio does not warn about it again

    async def aclose(self, timeout: float) -> None:
        for session in self._tasks.values():
            session.release()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout)
