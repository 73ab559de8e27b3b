"""JSON-RPC client over a `ChildTransport`: request ids → futures, notifications routed per thread.

Server→client requests: the few a turn must decide itself (`protocol.ROUTED_SERVER_REQUESTS`, i.e. client tool
calls) go to that thread's queue as a `ServerRequest` with a way to reply; every other one is answered at once
from the default table (approvals declined, unknown methods -32601), so a turn can never hang on a question
nobody answers. When the child goes away, every pending request fails and every thread subscriber receives
`ThreadEnded`, so callers learn within one event-loop tick, not after a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar, overload

import msgspec

from app.codex import protocol as p
from app.codex.transport import ChildTransport, TransportClosed

logger = logging.getLogger(__name__)
R = TypeVar("R")
T = TypeVar("T")


class RpcFailure(Exception):
    """app-server answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} ({code})")
        self.method = method
        self.code = code
        self.message = message


class WorkerLost(ConnectionError):
    """The worker process exited, was killed as hung, or its pipe broke."""


class RpcTimeout(TimeoutError):
    """No answer within the deadline: the worker is treated as hung."""


class ThreadEnded:
    """Sentinel put on a thread queue when the worker dies under it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ServerRequest:
    """A server→client request routed to the turn of its thread. The turn answers it with `reply`/`fail`, or
    deliberately never does (a tool call abandoned by an interrupt: codex cancels it itself)."""

    def __init__(self, client: RpcClient, rid: int | str, method: str, params: msgspec.Raw) -> None:
        self._client = client
        self.id = rid
        self.method = method
        self.params = params
        self.answered = False

    async def reply(self, result: object) -> None:
        await self._answer(p.OutResult(id=self.id, result=result))

    async def fail(self, code: int, message: str) -> None:
        await self._answer(p.OutError(id=self.id, error=p.RpcError(code=code, message=message)))

    async def _answer(self, message: msgspec.Struct) -> None:
        if self.answered:
            return
        self.answered = True
        self._client.server_requests_answered += 1
        with contextlib.suppress(WorkerLost):
            await self._client._send(message)


ThreadEvent = msgspec.Struct | ThreadEnded | ServerRequest
_THREAD_SCOPED = msgspec.json.Decoder(p.ThreadScoped)


class RpcClient:
    def __init__(
        self,
        transport: ChildTransport,
        *,
        on_hung: Callable[[str], None] | None = None,
        observe: Mapping[str, Callable[[msgspec.Raw], None]] | None = None,
    ) -> None:
        self.transport = transport
        self.on_hung = on_hung
        self.observe = observe or {}  # method → callback that sees the raw params first (e.g. the plan quota)
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[msgspec.Raw]]] = {}
        self._threads: dict[str, asyncio.Queue[ThreadEvent]] = {}
        self._closed_threads: deque[str] = deque(maxlen=256)
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.server_requests_answered = 0
        self.last_seen = time.monotonic()  # when the child last wrote a line (the pool's liveness probe reads it)

    @property
    def name(self) -> str:
        return self.transport.name

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.name}-reader")

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._shutdown("client closed")

    # ---- outgoing ------------------------------------------------------------------------------------------

    @overload
    async def request(self, method: str, params: object, *, timeout: float, result_type: type[R]) -> R: ...
    @overload
    async def request(self, method: str, params: object, *, timeout: float) -> msgspec.Raw: ...

    async def request(
        self, method: str, params: object, *, timeout: float, result_type: type[R] | None = None
    ) -> R | msgspec.Raw:
        """Send a request and wait for its result (decoded as `result_type`, else raw); a timeout marks the worker
        hung (the pool kills it)."""
        if self.closed.is_set():
            raise WorkerLost(self.close_reason)
        rid, fut = self._expect(method)
        try:
            await self._send(p.OutRequest(id=rid, method=method, params=params))
            raw = await self._within(fut, timeout, method)
        finally:
            self._pending.pop(rid, None)
        if result_type is None:
            return raw
        return msgspec.json.decode(raw, type=result_type)

    def _expect(self, method: str) -> tuple[int, asyncio.Future[msgspec.Raw]]:
        """A fresh request id and the future its answer will resolve."""
        rid = next(self._ids)
        fut: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        return rid, fut

    async def _within(self, waiting: Awaitable[T], timeout: float, what: str) -> T:
        """Await an answer for at most `timeout`; past it the worker is hung (on_hung) and the caller gets
        RpcTimeout. The awaited answer is shielded: a late one still lands in its future."""
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            reason = f"no answer to {what} within {timeout:.1f}s"
            if self.on_hung is not None:
                self.on_hung(reason)
            raise RpcTimeout(reason) from None

    async def request_all(self, calls: list[tuple[str, object]], *, timeout: float) -> list[msgspec.Raw | RpcFailure]:
        """Several requests in one write (one pipe write and one wake-up of the child instead of one each), their
        answers in order: the raw result or the RpcFailure. A timeout marks the worker hung, as in `request`."""
        if self.closed.is_set():
            raise WorkerLost(self.close_reason)
        pending: list[tuple[int, asyncio.Future[msgspec.Raw]]] = []
        lines: list[bytes] = []
        for method, params in calls:
            rid, fut = self._expect(method)
            pending.append((rid, fut))
            lines.append(p.ENCODER.encode(p.OutRequest(id=rid, method=method, params=params)))
        try:
            try:
                await self.transport.send(b"\n".join(lines))
            except TransportClosed as exc:
                raise WorkerLost(str(exc)) from exc
            await self._within(asyncio.wait([fut for _, fut in pending]), timeout, ", ".join(m for m, _ in calls))
        finally:
            for rid, _ in pending:
                self._pending.pop(rid, None)
        results: list[msgspec.Raw | RpcFailure] = []
        for _, fut in pending:
            exc = fut.exception()
            if isinstance(exc, RpcFailure):
                results.append(exc)
            elif exc is not None:
                raise exc
            else:
                results.append(fut.result())
        return results

    async def notify(self, method: str, params: object = msgspec.UNSET) -> None:
        await self._send(p.OutNotification(method=method, params=params))

    async def _send(self, message: msgspec.Struct) -> None:
        try:
            await self.transport.send(p.ENCODER.encode(message))
        except TransportClosed as exc:
            raise WorkerLost(str(exc)) from exc

    # ---- per-thread notifications -----------------------------------------------------------------------

    def subscribe(self, thread_id: str) -> asyncio.Queue[ThreadEvent]:
        """The queue of this thread's notifications (created on demand, so nothing sent early is lost)."""
        queue = self._threads.get(thread_id)
        if queue is None:
            queue = self._threads[thread_id] = asyncio.Queue()
            if self.closed.is_set():
                queue.put_nowait(ThreadEnded(self.close_reason))
        return queue

    def release(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)
        self._closed_threads.append(thread_id)

    @property
    def open_threads(self) -> int:
        return len(self._threads)

    # ---- incoming --------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "stdout closed"
        try:
            while True:
                line = await self.transport.read_line()
                if line is None:
                    break
                self.last_seen = time.monotonic()
                try:
                    env = p.ENVELOPE_DECODER.decode(line)
                except msgspec.DecodeError:
                    logger.warning("%s: ignored a malformed line (%d bytes)", self.name, len(line))
                    continue
                await self._dispatch(env)
        except asyncio.CancelledError:
            reason = "client closed"
            raise
        except Exception as exc:  # a reader bug must not leave callers waiting forever
            logger.exception("%s: reader failed", self.name)
            reason = f"reader failed: {exc!r}"
        finally:
            self._shutdown(reason)

    async def _dispatch(self, env: p.Envelope) -> None:
        if env.method is not None and env.id is not None:
            await self._answer_server_request(env)
        elif env.id is not None:
            entry = self._pending.get(env.id) if isinstance(env.id, int) else None
            if entry is None:
                return
            method, fut = entry
            if fut.done():
                return
            if env.error is not None:
                fut.set_exception(RpcFailure(method, env.error.code, env.error.message))
            else:
                fut.set_result(env.result)
        elif env.method is not None:
            self._route_notification(env.method, env.params)

    def _route_notification(self, method: str, raw: msgspec.Raw) -> None:
        observer = self.observe.get(method)
        if observer is not None:
            observer(raw)
        try:
            params = p.decode_params(method, raw)
        except msgspec.DecodeError as exc:
            logger.warning("%s: could not decode %s: %s", self.name, method, exc)
            return
        if params is None:
            return
        thread_id = getattr(params, "thread_id", "")
        if not thread_id or thread_id in self._closed_threads:
            return
        self.subscribe(thread_id).put_nowait(params)

    async def _answer_server_request(self, env: p.Envelope) -> None:
        assert env.id is not None and env.method is not None
        if env.method in p.ROUTED_SERVER_REQUESTS and self._route_server_request(env):
            return
        answer = p.SERVER_REQUEST_ANSWERS.get(env.method)
        if answer is not None:
            message: msgspec.Struct = p.OutResult(id=env.id, result=answer)
        else:
            logger.info("%s: declined unknown server request %s", self.name, env.method)
            message = p.OutError(
                id=env.id, error=p.RpcError(code=p.METHOD_NOT_FOUND, message=f"{env.method} is not supported")
            )
        self.server_requests_answered += 1
        with contextlib.suppress(WorkerLost):
            await self._send(message)

    def _route_server_request(self, env: p.Envelope) -> bool:
        """Queue a routed request for its thread's turn. A request for a thread whose turn already ended is
        dropped unanswered on purpose: that turn was interrupted, and codex cancels the call itself."""
        assert env.id is not None and env.method is not None
        try:
            thread_id = _THREAD_SCOPED.decode(env.params).thread_id
        except msgspec.DecodeError:
            return False
        if thread_id in self._threads:
            self._threads[thread_id].put_nowait(ServerRequest(self, env.id, env.method, env.params))
            return True
        if thread_id in self._closed_threads:
            logger.debug("%s: left %s for ended thread %s unanswered", self.name, env.method, thread_id)
            return True
        return False

    def _shutdown(self, reason: str) -> None:
        if self.closed.is_set():
            return
        detail = self.transport.describe_exit()
        self.close_reason = f"{reason}; {detail}"
        self.closed.set()
        for method, fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(WorkerLost(f"{method}: {self.close_reason}"))
        self._pending.clear()
        for queue in self._threads.values():
            queue.put_nowait(ThreadEnded(self.close_reason))
