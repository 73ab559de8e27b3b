"""The offline model: a tiny asyncio HTTP/1.1 server speaking the Responses API subset codex calls.

Why a hand-rolled server: it must run inside whichever event loop owns it (the app's lifespan or a test),
start in milliseconds, need no dependency beyond the stdlib, and let tests observe every byte codex sent
and precisely control timing, disconnects and failures of the stream — things a framework would hide.

One request per connection (`connection: close`): codex opens a fresh connection per model request anyway,
and close-delimited SSE bodies keep the framing trivial.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import zlib
from collections import deque
from http import HTTPStatus

import msgspec

from app.offline_model import convention, wire
from app.offline_model.replies import (
    Disconnect,
    Echo,
    Fail,
    FunctionCall,
    Hang,
    Reasoning,
    Reply,
    StreamError,
    Text,
    ToolCalls,
    Usage,
    parse_directive,
    reply_for_directive,
    split_text,
    word_count,
)
from app.offline_model.wire import RecordedRequest

logger = logging.getLogger(__name__)

MODEL_ID = "offline"
PROVIDER_ID = "offline"
API_KEY_ENV = "OFFLINE_MODEL_API_KEY"
MAX_BODY = 64 * 1024 * 1024
_USAGE_BASE = 10  # fixed "system prompt" tokens added to every request's input usage


def provider_settings(base_url: str, *, stream_idle_timeout_ms: int | None = None) -> list[str]:
    """`key=value` config overrides (TOML values) that make codex use an offline model at `base_url` as provider
    `offline`. Retries are 0 so a provider failure surfaces at once (fault tests need that); `model` is `offline`.
    The one source for both the app's pool (app.codex.launch) and tests that drive codex directly."""
    p = f"model_providers.{PROVIDER_ID}"
    settings = [
        f'model_provider="{PROVIDER_ID}"',
        f'model="{MODEL_ID}"',
        f'{p}.name="Offline model"',
        f"{p}.base_url={json.dumps(base_url)}",
        f'{p}.wire_api="responses"',
        f'{p}.env_key="{API_KEY_ENV}"',
        f"{p}.request_max_retries=0",
        f"{p}.stream_max_retries=0",
    ]
    if stream_idle_timeout_ms is not None:
        settings.append(f"{p}.stream_idle_timeout_ms={stream_idle_timeout_ms}")
    return settings


def provider_args(base_url: str, *, stream_idle_timeout_ms: int | None = None) -> list[str]:
    """`provider_settings` as codex CLI arguments (`-c k=v` pairs)."""
    args: list[str] = []
    for setting in provider_settings(base_url, stream_idle_timeout_ms=stream_idle_timeout_ms):
        args += ["-c", setting]
    return args


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _HttpRequest(msgspec.Struct, frozen=True):
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class OfflineModel:
    """Scriptable, deterministic Responses-API server for `codex app-server` (provider id `offline`).

    Lifecycle: `await start()` binds (port 0 → kernel-chosen), `await stop()` closes the listener and cancels
    every in-flight handler (idempotent). State for tests: `requests` (every `POST /v1/responses` in order),
    `other_requests` (any other method/path, e.g. `GET /v1/models`), `in_flight`, `cancelled`, `held`.

    Recording is unbounded by default (tests read every request). A long-running server (`make run`) passes
    `max_recorded` to keep only the newest N requests and `max_raw_bytes` to keep only the first bytes of each body
    (`raw_size` still says how big it was): a codex request records 66-77 KiB otherwise.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_recorded: int | None = None,
        max_raw_bytes: int | None = None,
    ) -> None:
        if max_recorded is not None and max_recorded < 0:
            raise ValueError("max_recorded must be >= 0")
        if max_raw_bytes is not None and max_raw_bytes < 0:
            raise ValueError("max_raw_bytes must be >= 0")
        self._host = host
        self._port = port
        self._max_recorded = max_recorded
        self._max_raw_bytes = max_raw_bytes
        self._served = 0  # every recorded request ever, so ids stay unique when old records are dropped
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()  # per-request work, cancelled by stop()
        self._connections: set[asyncio.Task[None]] = set()  # asyncio's connection callbacks, awaited by stop()
        self._script: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self.other_requests: list[str] = []
        self.in_flight = 0
        self.cancelled = 0
        self.held = 0  # streams waiting in a `hold_after` for `release()`
        self._release = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving in the running loop; the caller owns the loop and must `stop()`."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=1024 * 1024)
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("offline model listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop accepting, cancel in-flight responses (they end as `stopped`), wait for them. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in self._handlers:
            task.cancel()
        pending = [*self._handlers, *self._connections]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> OfflineModel:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/v1"

    # -- scripting and codex wiring -------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies (FIFO) for the next model requests; when the queue is empty, the convention
        (docs/offline-model.md) and then the echo answer."""
        self._script.extend(replies)

    def release(self) -> None:
        """Let streams held by `ToolCalls(hold_after=N)` continue; a release before the hold lets the next one pass."""
        self._release.set()

    async def _hold(self) -> None:
        self.held += 1
        try:
            await self._release.wait()
        finally:
            self.held -= 1
            self._release.clear()

    def clear_script(self) -> int:
        """Drop replies nobody requested; returns how many there were (tests assert 0)."""
        left = len(self._script)
        self._script.clear()
        return left

    def provider_settings(self, *, stream_idle_timeout_ms: int | None = None) -> list[str]:
        """`key=value` overrides that point codex at this server (see the module function)."""
        return provider_settings(self.base_url, stream_idle_timeout_ms=stream_idle_timeout_ms)

    def provider_config(self, *, stream_idle_timeout_ms: int | None = None) -> list[str]:
        """The same overrides as codex CLI arguments: `["-c", "k=v", "-c", "k=v", ...]` (splice into argv)."""
        return provider_args(self.base_url, stream_idle_timeout_ms=stream_idle_timeout_ms)

    @staticmethod
    def provider_env() -> dict[str, str]:
        """Environment codex needs for this provider: the `env_key` must be set (any value)."""
        return {API_KEY_ENV: "offline"}

    # -- HTTP -----------------------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Connection callback. The actual work runs in a child task that `stop()` may cancel: on Python 3.11 the
        streams machinery logs an ERROR when the callback task itself ends cancelled, so this task never does.
        """
        connection = asyncio.current_task()
        assert connection is not None
        work = asyncio.create_task(self._serve(reader, writer))
        self._connections.add(connection)  # type: ignore[arg-type]
        self._handlers.add(work)
        try:
            await asyncio.wait({work})
        finally:
            if not work.done():  # only if this callback task was cancelled from outside (loop shutdown)
                work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            self._handlers.discard(work)
            self._connections.discard(connection)  # type: ignore[arg-type]
            writer.close()  # graceful FIN after the buffered bytes: codex must read the whole stream

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
        except _BadRequest as exc:
            await _send_json(writer, exc.status, wire.ErrorEnvelope(wire.ErrorBody("bad_request", str(exc))))
            return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            return
        try:
            path = request.target.split("?", 1)[0].rstrip("/")
            if request.method == "POST" and path.endswith("/responses"):
                await self._responses(request, reader, writer)
            elif request.method == "GET" and path.endswith("/models"):
                self.other_requests.append(f"{request.method} {request.target}")
                await _send_json(writer, 200, wire.ModelList([wire.ModelEntry(MODEL_ID)]))
            else:
                self.other_requests.append(f"{request.method} {request.target}")
                logger.warning("offline model: unexpected %s %s", request.method, request.target)
                body = wire.ErrorEnvelope(wire.ErrorBody("not_found", f"no route for {request.method} {path}"))
                await _send_json(writer, 404, body)
        except ConnectionError:
            pass

    async def _responses(self, http: _HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            record = wire.decode_request(self._served, http.body, http.headers)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            body = wire.ErrorEnvelope(wire.ErrorBody("invalid_request", f"offline model: bad request body: {exc}"))
            await _send_json(writer, 400, body)
            return
        self._served += 1
        reply = self._next_reply(record)
        record.reply = type(reply).__name__
        self._record(record)
        if isinstance(reply, Fail):
            record.outcome = "http_error"
            envelope = wire.ErrorEnvelope(wire.ErrorBody(reply.code, reply.message, reply.type or reply.code))
            extra = [("retry-after", str(reply.retry_after_s))] if reply.retry_after_s is not None else []
            extra += list(reply.headers)
            await _send_json(writer, reply.status, envelope, extra)
            return

        stream = _Stream(self, record, reply, writer)
        self.in_flight += 1
        producer = asyncio.create_task(stream.run(), name=f"offline-response-{record.index}")
        # codex never sends more bytes on this connection; EOF (or a reset) means it went away.
        watcher = asyncio.create_task(_wait_eof(reader), name=f"offline-eof-{record.index}")
        try:
            done, _ = await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if producer not in done:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
                record.outcome = "cancelled"
                self.cancelled += 1
            else:
                try:
                    producer.result()
                except ConnectionError:
                    record.outcome = "cancelled"
                    self.cancelled += 1
        except asyncio.CancelledError:
            record.outcome = "stopped"
            raise
        finally:
            for t in (producer, watcher):
                t.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
            self.in_flight -= 1

    def _record(self, record: RecordedRequest) -> None:
        """Keep `record` (the reply is already chosen from the full body), within the configured bounds."""
        if self._max_raw_bytes is not None and len(record.raw) > self._max_raw_bytes:
            record.raw = record.raw[: self._max_raw_bytes]
        self.requests.append(record)
        if self._max_recorded is not None and len(self.requests) > self._max_recorded:
            del self.requests[: len(self.requests) - self._max_recorded]

    def _next_reply(self, record: RecordedRequest) -> Reply:
        """Scripted replies first; then a failure directive; then the convention; then the (directive) echo."""
        if self._script:
            return self._script.popleft()
        user = record.last_user_text
        directive = parse_directive(user)
        if directive is not None:
            reply = reply_for_directive(directive)
            if not isinstance(reply, Echo | Reasoning):
                return reply
            user = directive.clean_text
        rule = convention.apply(record, user)
        if rule is not None:
            record.rule = rule.name
            return rule.reply
        return reply_for_directive(directive) if directive else Echo()


class _Stream:
    """Writes one SSE response for a reply; owned by `OfflineModel._responses` (cancelled on disconnect/stop)."""

    def __init__(self, model: OfflineModel, record: RecordedRequest, reply: Reply, writer: asyncio.StreamWriter):
        self._model = model
        self._record = record
        self._reply = reply
        self._writer = writer
        self._response_id = record.response_id
        self._output_index = 0
        self._held = False
        self._output_words = 0
        self._reasoning_words = 0

    async def _emit(self, event: wire.Event) -> None:
        self._writer.write(wire.sse_frame(event))
        await self._writer.drain()

    async def run(self) -> None:
        reply = self._reply
        delay = getattr(reply, "first_byte_delay_s", 0.0)
        if isinstance(reply, Reasoning):
            delay = getattr(reply.then, "first_byte_delay_s", 0.0)
        if delay:
            await asyncio.sleep(delay)
        if isinstance(reply, Hang) and not reply.after_created:
            await asyncio.Event().wait()  # until codex goes away or stop() cancels us
        headers = getattr(reply.then if isinstance(reply, Reasoning) else reply, "headers", ())
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")
        self._writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            + extra
            + b"connection: close\r\n\r\n"
        )
        await self._emit(
            wire.Event("response.created", response=wire.ResponseObject(self._response_id, model=self._record.model))
        )
        await self._body(reply)

    async def _body(self, reply: Reply) -> None:
        match reply:
            case Reasoning(summary=summary, then=then):
                await self._reasoning(summary)
                await self._body(then)
            case Echo(chunks=chunks, interval_s=interval):
                text = self._echo_text()
                await self._message(text, split_text(text, chunks), interval)
                await self._complete(None)
            case Text(text=text, chunks=chunks, interval_s=interval, usage=usage):
                await self._message(text, chunks if chunks is not None else split_text(text), interval)
                await self._complete(usage)
            case FunctionCall(usage=usage):
                await self._function_call(reply)
                await self._complete(usage)
            case ToolCalls(calls=calls, text=text, text_chunks=text_chunks, reasoning=summary, usage=usage):
                if summary is not None:
                    await self._reasoning(summary)
                if text is not None:
                    await self._pause(reply)
                    await self._message(text, text_chunks if text_chunks is not None else split_text(text), 0.0)
                for call in calls:
                    await self._pause(reply)
                    await self._function_call(call)
                await self._pause(reply)
                await self._complete(usage)
            case StreamError(code=code, message=message, after_text=after_text, event=event):
                if after_text:
                    await self._message(after_text, split_text(after_text), 0.0, done=False)
                self._record.outcome = "failed"
                if event == "error":
                    await self._emit(wire.Event("error", code=code, message=message))
                else:
                    resp = wire.ResponseObject(
                        self._response_id, status="failed", error=wire.ErrorBody(code, message), model=MODEL_ID
                    )
                    await self._emit(wire.Event("response.failed", response=resp))
            case Disconnect(after_text=after_text):
                if after_text:
                    await self._message(after_text, split_text(after_text), 0.0, done=False)
                self._record.outcome = "disconnected"
                # abort() = RST, so codex sees the stream break rather than a clean (but incomplete) close
                self._writer.transport.abort()
            case Hang():
                await asyncio.Event().wait()
            case Fail():
                # Only reachable as `Reasoning(then=Fail(...))`: headers are gone, so fail in-stream instead.
                await self._body(StreamError(reply.code, reply.message))

    async def _pause(self, reply: ToolCalls) -> None:
        """Before an output item (or `response.completed`): wait for `release()` once `hold_after` items are out,
        and sleep `interval_s` between items."""
        if reply.hold_after is not None and self._output_index == reply.hold_after and not self._held:
            self._held = True
            await self._model._hold()
        if reply.interval_s and self._output_index:
            await asyncio.sleep(reply.interval_s)

    def _echo_text(self) -> str:
        user = self._record.last_user_text
        directive = parse_directive(user)
        return f"echo: {directive.clean_text if directive else user}"

    async def _message(self, text: str, chunks: list[str], interval: float, *, done: bool = True) -> None:
        index = self._output_index
        self._output_index += 1
        item_id = f"msg_offline_{self._record.index}_{index}"
        await self._emit(wire.Event("response.output_item.added", output_index=index, item=wire.MessageItem(item_id)))
        part = wire.OutputPart("output_text", "")
        await self._emit(
            wire.Event("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=part)
        )
        for i, chunk in enumerate(chunks):
            if i and interval:
                await asyncio.sleep(interval)
            await self._emit(
                wire.Event(
                    "response.output_text.delta", item_id=item_id, output_index=index, content_index=0, delta=chunk
                )
            )
            self._record.deltas.append(chunk)
        self._record.reply_text += text
        self._output_words += word_count(text)
        if not done:
            return
        await self._emit(
            wire.Event(
                "response.output_item.done",
                output_index=index,
                item=wire.MessageItem(item_id, content=[wire.OutputPart("output_text", text)]),
            )
        )

    async def _reasoning(self, summary: str) -> None:
        index = self._output_index
        self._output_index += 1
        item_id = f"rs_offline_{self._record.index}_{index}"
        await self._emit(wire.Event("response.output_item.added", output_index=index, item=wire.ReasoningItem(item_id)))
        part = wire.OutputPart("summary_text", "")
        await self._emit(
            wire.Event(
                "response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=0, part=part
            )
        )
        for chunk in split_text(summary):
            await self._emit(
                wire.Event(
                    "response.reasoning_summary_text.delta",
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    delta=chunk,
                )
            )
        item = wire.ReasoningItem(item_id, summary=[wire.OutputPart("summary_text", summary)])
        await self._emit(wire.Event("response.output_item.done", output_index=index, item=item))
        self._reasoning_words += max(1, word_count(summary))

    async def _function_call(self, call: FunctionCall) -> None:
        index = self._output_index
        self._output_index += 1
        item_id = f"fc_offline_{self._record.index}_{index}"
        namespace = msgspec.UNSET if call.namespace is None else call.namespace
        added = wire.FunctionCallItem(item_id, call.call_id, call.name, "", status="in_progress", namespace=namespace)
        await self._emit(wire.Event("response.output_item.added", output_index=index, item=added))
        for delta in call.argument_deltas():
            await self._emit(
                wire.Event("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=delta)
            )
        item = wire.FunctionCallItem(item_id, call.call_id, call.name, call.arguments, namespace=namespace)
        await self._emit(wire.Event("response.output_item.done", output_index=index, item=item))
        self._record.calls.append(call)
        self._output_words += 1 + word_count(call.arguments)

    async def _complete(self, usage: Usage | None) -> None:
        if usage is None:
            usage = Usage(
                input_tokens=wire.input_word_count(self._record) + _USAGE_BASE,
                output_tokens=self._output_words + self._reasoning_words,
                reasoning_tokens=self._reasoning_words,
            )
        self._record.usage = usage
        resp = wire.ResponseObject(
            self._response_id, status="completed", model=MODEL_ID, usage=wire.WireUsage.of(usage)
        )
        await self._emit(wire.Event("response.completed", response=resp))
        self._record.outcome = "completed"


async def _wait_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


async def _read_request(reader: asyncio.StreamReader) -> _HttpRequest:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        raise _BadRequest(400, "malformed request line") from None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    h = dict(headers)
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in h:
        length = int(h["content-length"])
        if length > MAX_BODY:
            raise _BadRequest(413, "body too large")
        body = await reader.readexactly(length)
    else:
        body = b""
    encoding = h.get("content-encoding", "identity").lower()
    body = _decode_body(encoding, body)
    return _HttpRequest(method=method.upper(), target=target, headers=headers, body=body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise _BadRequest(413, "body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _decode_body(encoding: str, body: bytes) -> bytes:
    """Undo `content-encoding`. codex compresses request bodies with zstd only for ChatGPT-authenticated OpenAI
    requests (see docs/offline-model.md); gzip/deflate are handled for other clients; zstd when the stdlib has it.
    """
    if encoding in ("identity", ""):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
        except ImportError:
            raise _BadRequest(415, "zstd request bodies are not supported; disable request compression") from None
        return zstd.decompress(body)
    raise _BadRequest(415, f"unsupported content-encoding {encoding!r}")


async def _send_json(
    writer: asyncio.StreamWriter, status: int, value: msgspec.Struct, extra: list[tuple[str, str]] | None = None
) -> None:
    body = wire.encode(value)
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    for name, value_ in extra or []:
        head += f"{name}: {value_}\r\n"
    writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
    await writer.drain()
