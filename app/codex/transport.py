"""Line framing over one child's stdio: newline-delimited JSON out, lines in, stderr to the log.

The transport knows nothing about JSON-RPC. It owns the child process and its stderr reader, caps line size
(asyncio's 64 KiB default is far too small for codex items), keeps a stderr tail for error messages and
`/healthz`, and stops the child in stages: close stdin → wait → SIGTERM → wait → SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections import deque
from collections.abc import Mapping, Sequence

from app.codex.stderr import classify

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024 * 1024
# Secrets that could appear in a child's stderr (tokens, keys, login codes in URLs) are masked before the
# line reaches the log or the stderr tail that /healthz and /readyz show.
_SECRET = re.compile(
    r"(?i)(?P<scheme>bearer\s+)[^\s\"']+"
    r"|(?P<sk>\bsk-[A-Za-z0-9_-]{8,})"
    r"|(?P<query>[?&](?:code|token|key)=)[^\s&]+"
    r"|(?P<name>\b(?:access|refresh|id)_token|\bapi[_-]?key|\btoken)(?P<sep>[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,]+"
)


def redact(text: str) -> str:
    def mask(m: re.Match[str]) -> str:
        keep = m.group("scheme") or m.group("query") or ((m.group("name") or "") + (m.group("sep") or ""))
        return keep + "[redacted]"

    return _SECRET.sub(mask, text)


class TransportClosed(ConnectionError):
    """The child is gone (or never started); the message carries its stderr tail."""


class ChildTransport:
    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, name: str, max_line: int = MAX_LINE_BYTES
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.name = name
        self.max_line = max_line
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._write_lock = asyncio.Lock()
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    async def start(self) -> None:
        """Spawn the child in its own process group so a stop can reach anything it forks."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            limit=self.max_line,
            start_new_session=True,
        )
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name=f"{self.name}-stderr")

    async def send(self, line: bytes) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.returncode is not None or proc.stdin.is_closing():
            raise TransportClosed(self.describe_exit())
        async with self._write_lock:
            try:
                proc.stdin.write(line + b"\n")
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise TransportClosed(self.describe_exit()) from exc

    async def read_line(self) -> bytes | None:
        """Next stdout line without its newline; None at EOF. Oversized lines are dropped with a log line."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except ValueError:  # asyncio's LimitOverrunError surfaces as ValueError from readline()
                logger.warning("%s: dropped a stdout line longer than %d bytes", self.name, self.max_line)
                continue
            if not line:
                return None
            line = line.rstrip(b"\r\n")
            if line:
                return line

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            try:
                raw = await self.proc.stderr.readline()
            except ValueError:
                continue
            if not raw:
                return
            text = redact(raw.decode("utf-8", "replace").rstrip())
            if not text:
                continue
            line = classify(text[:2000])
            if not line.noise:
                self.stderr_tail.append(line.message)
            if logger.isEnabledFor(line.level):
                fields = {"worker": self.name, "codex_level": line.codex_level, "codex_target": line.target}
                logger.log(line.level, "%s stderr: %s", self.name, line.message, extra={"fields": fields})

    def describe_exit(self) -> str:
        code = self.returncode
        state = "not started" if self.proc is None else ("running" if code is None else f"exited with {code}")
        tail = " | ".join(list(self.stderr_tail)[-3:])
        return f"codex app-server {self.name} {state}" + (f": {tail}" if tail else "")

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    def kill(self) -> None:
        """Immediate SIGKILL of the child's process group (used for hung workers)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, 9)

    async def stop(self, grace: float) -> None:
        """close stdin → wait → SIGTERM → wait → SIGKILL; always reaps the child and the stderr task."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                if proc.stdin is not None and not proc.stdin.is_closing():
                    proc.stdin.close()
                if not await self._wait_for_exit(grace):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, 15)
                    if not await self._wait_for_exit(grace):
                        self.kill()
                        await self._wait_for_exit(5.0)
            else:
                # The leader is gone; make sure nothing it forked survives it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, 9)
        finally:
            if self._stderr_task is not None:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
                self._stderr_task.cancel()
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            if proc.returncode is not None:
                # The child is reaped: close its stdout/stderr pipes now. asyncio closes a read pipe only once it
                # has read EOF, and the reader may already be gone (a cancelled client), which left the pipes to
                # the garbage collector (ResourceWarning: unclosed transport). asyncio's Process has no public close.
                subprocess_transport = getattr(proc, "_transport", None)
                if subprocess_transport is not None:
                    subprocess_transport.close()

    async def _wait_for_exit(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout)
        except TimeoutError:
            return False
        return True
