"""A small HTTP/1.1 load generator on asyncio streams that measures itself.

Why not httpx: at thousands of requests per second on two cores the client's own CPU competes with the process
under test, and httpx costs several times more per request than writing the request bytes and reading a
`content-length` or chunked body. One `Conn` is one keep-alive connection; `closed_loop` runs N of them, each
sending its next request when the previous one finished, bounded in count and in time. Every answer is checked
(status and a marker the body must contain), so a fast wrong answer never counts as throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import msgspec

from bench.common import KEY


class Call(msgspec.Struct):
    """One request: status, time to the status line, time to the end of the body, whether the body checked out."""

    status: int
    ttfb: float
    total: float
    ok: bool
    chunks: int = 0
    first: float = float("nan")  # time to the first chunk holding the `first` marker (first model text)


def post(path: str, body: bytes, *, extra: str = "") -> bytes:
    """A POST request with the bench key, as raw bytes (built once, sent many times)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await self.writer.wait_closed()
            self.writer = None

    async def head(self, request: bytes) -> tuple[int, dict[bytes, bytes], float]:
        """Send `request`, read the status line and headers; returns (status, headers, seconds to the status)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        self.writer.write(request)
        line = await self.reader.readline()
        ttfb = time.perf_counter() - started
        if not line:
            raise ConnectionError("connection closed before a response")
        status = int(line.split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        while True:
            h = await self.reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, ttfb

    async def chunks(self, headers: dict[bytes, bytes]):
        """The body as it arrives: one item per chunk (chunked) or the whole body (content-length)."""
        assert self.reader is not None
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await self.reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await self.reader.readline()
                    return
                data = await self.reader.readexactly(size + 2)
                yield data[:-2]
        else:
            yield await self.reader.readexactly(int(headers.get(b"content-length", b"0")))

    async def call(self, request: bytes, marker: bytes, first: bytes | None = None) -> Call:
        started = time.perf_counter()
        status, headers, ttfb = await self.head(request)
        body = bytearray()
        n = 0
        first_at = float("nan")
        async for chunk in self.chunks(headers):
            body += chunk
            n += 1
            if first is not None and first_at != first_at and first in chunk:
                first_at = time.perf_counter() - started
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Call(status, ttfb, time.perf_counter() - started, status == 200 and marker in body, n, first_at)


async def closed_loop(
    port: int,
    request: bytes | Callable[[int], bytes],
    marker: bytes,
    *,
    clients: int,
    count: int,
    seconds: float,
    timeout: float = 60.0,
) -> tuple[list[Call], float]:
    """`clients` connections send requests back to back until `count` requests were sent or `seconds` passed.

    Returns every call and the wall time from the first send to the last answer. A failed connection, or an
    answer that takes longer than `timeout`, is recorded as a call with status 0 (and the connection reopened)."""
    sent = 0
    calls: list[Call] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal sent
        conn = Conn(port)
        try:
            while sent < count and time.monotonic() < deadline:
                i = sent
                sent += 1
                raw = request(i) if callable(request) else request
                try:
                    calls.append(await asyncio.wait_for(conn.call(raw, marker), timeout))
                except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
                    calls.append(Call(0, 0.0, 0.0, False))
                    await conn.close()
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return calls, time.perf_counter() - started


class HeldStream:
    """An SSE request whose body is read (keepalives counted) until `close()`: an idle client of a long turn."""

    def __init__(self, port: int, request: bytes) -> None:
        self.conn = Conn(port)
        self.request = request
        self.status = 0
        self.frames = 0
        self.ended = False
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            self.status, headers, _ = await self.conn.head(self.request)
            async for _ in self.conn.chunks(headers):
                self.frames += 1
            self.ended = True
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.ended = True

    @property
    def alive(self) -> bool:
        return self.status == 200 and not self.ended

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.conn.close()
