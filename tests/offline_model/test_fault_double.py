"""The fault double itself (tests/fakes/fault_app_server.py) does what the fault tests rely on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.faults

SCRIPT = REPO / "tests" / "fakes" / "fault_app_server.py"


class Double:
    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.ids = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> int:
        self.ids += 1
        await self.send({"id": self.ids, "method": method, "params": params or {}})
        return self.ids

    async def line(self, timeout: float = 5) -> bytes:
        assert self.proc.stdout is not None
        with anyio.fail_after(timeout):
            return await self.proc.stdout.readline()

    async def message(self, timeout: float = 5) -> dict[str, Any]:
        """The next valid JSON object line (garbage lines are skipped, as the real client must)."""
        while True:
            raw = await self.line(timeout)
            assert raw, "fault double closed stdout"
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value

    async def until(self, predicate, timeout: float = 5) -> list[dict[str, Any]]:
        seen = []
        while True:
            msg = await self.message(timeout)
            seen.append(msg)
            if predicate(msg):
                return seen

    async def handshake(self) -> None:
        rid = await self.call("initialize", {"clientInfo": {"name": "t", "version": "0"}})
        await self.until(lambda m: m.get("id") == rid)
        await self.send({"method": "initialized"})

    async def thread(self) -> str:
        rid = await self.call("thread/start", {"ephemeral": True})
        [*_, reply] = await self.until(lambda m: m.get("id") == rid)
        return reply["result"]["thread"]["id"]

    async def start_turn(self, thread_id: str, text: str) -> dict[str, Any]:
        rid = await self.call("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})
        [*_, reply] = await self.until(lambda m: m.get("id") == rid)
        return reply

    def logged(self) -> list[dict[str, Any]]:
        return [json.loads(line)["message"] for line in self.log.read_text().splitlines()] if self.log.exists() else []


@asynccontextmanager
async def double(tmp_path: Path, mode: str = "normal", **env: str) -> AsyncIterator[Double]:
    log = tmp_path / "fault.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "app-server",
        "--listen",
        "stdio://",
        "-c",
        "ignored=1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FAULT_MODE": mode, "FAULT_LOG": str(log), **env},
        limit=16 * 1024 * 1024,
    )
    try:
        yield Double(proc, log)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                await stream.read()
        if proc.stdin is not None:
            proc.stdin.close()


def deltas(messages: list[dict[str, Any]]) -> str:
    return "".join(m["params"]["delta"] for m in messages if m.get("method") == "item/agentMessage/delta")


def is_turn_completed(m: dict[str, Any]) -> bool:
    return m.get("method") == "turn/completed"


async def test_normal_turn_looks_like_the_real_one(tmp_path: Path) -> None:
    async with double(tmp_path) as d:
        await d.handshake()
        thread_id = await d.thread()
        reply = await d.start_turn(thread_id, "hello there")
        events = await d.until(
            lambda m: m.get("method") == "thread/status/changed" and m["params"]["status"]["type"] == "idle"
        )

    assert reply["result"]["turn"]["status"] == "inProgress"
    assert deltas(events) == "echo: hello there"
    usage = next(m for m in events if m.get("method") == "thread/tokenUsage/updated")["params"]["tokenUsage"]
    assert usage["last"] == usage["total"]
    assert usage["last"]["outputTokens"] == 3
    assert next(m for m in events if is_turn_completed(m))["params"]["turn"]["status"] == "completed"


async def test_requests_before_initialize_are_refused(tmp_path: Path) -> None:
    async with double(tmp_path) as d:
        rid = await d.call("thread/start")
        [reply] = await d.until(lambda m: m.get("id") == rid)

    assert reply["error"]["message"] == "Not initialized"


async def test_crash_mid_turn_exits_after_the_first_delta(tmp_path: Path) -> None:
    async with double(tmp_path, "crash_mid_turn") as d:
        await d.handshake()
        await d.start_turn(await d.thread(), "one two three")
        first = await d.until(lambda m: m.get("method") == "item/agentMessage/delta")
        assert await d.line() == b""  # stdout closed: nothing after the first delta
        with anyio.fail_after(5):
            assert await d.proc.wait() == 1
        assert d.proc.stderr is not None
        assert b"crashing mid-turn" in await d.proc.stderr.read()

    assert deltas(first) == "echo:"


async def test_per_turn_crash_via_prompt(tmp_path: Path) -> None:
    async with double(tmp_path) as d:
        await d.handshake()
        thread_id = await d.thread()
        await d.start_turn(thread_id, "fine")
        await d.until(is_turn_completed)
        await d.start_turn(thread_id, "now fault:crash")
        with anyio.fail_after(5):
            assert await d.proc.wait() == 1


async def test_hang_answers_nothing_and_survives_stdin_close(tmp_path: Path) -> None:
    async with double(tmp_path, "hang") as d:
        await d.handshake()
        await d.call("thread/start", {"ephemeral": True})
        with anyio.move_on_after(0.5):
            await d.line(timeout=1)
            pytest.fail("a hung double must not answer")
        assert d.proc.stdin is not None
        d.proc.stdin.close()
        with anyio.move_on_after(0.3):
            await d.proc.wait()
        assert d.proc.returncode is None  # still there: only a signal ends it
        d.proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(5):
            assert await d.proc.wait() == -signal.SIGTERM
        assert [m["method"] for m in d.logged()] == ["initialize", "initialized", "thread/start"]


@pytest.mark.parametrize("method", ["turn/start", "thread/start"])
async def test_overloaded_rejects_the_first_k_calls(tmp_path: Path, method: str) -> None:
    async with double(tmp_path, "overloaded", FAULT_OVERLOAD_COUNT="2", FAULT_OVERLOAD_METHOD=method) as d:
        await d.handshake()
        errors = []
        for _ in range(3):
            if method == "thread/start":
                rid = await d.call("thread/start", {"ephemeral": True})
                [*_, reply] = await d.until(lambda m, rid=rid: m.get("id") == rid)
            else:
                reply = await d.start_turn(await d.thread(), "hi")
            errors.append(reply.get("error"))

    overloaded = {"code": -32001, "message": "Server overloaded; retry later."}
    assert errors == [overloaded, overloaded, None]


async def test_malformed_lines_surround_valid_messages(tmp_path: Path) -> None:
    async with double(tmp_path, "malformed") as d:
        rid = await d.call("initialize", {"clientInfo": {"name": "t", "version": "0"}})
        lines = []
        while True:
            raw = await d.line()
            lines.append(raw)
            if raw.startswith(b'{"id"') and json.loads(raw).get("id") == rid:
                break
        await d.send({"method": "initialized"})
        await d.start_turn(await d.thread(), "a b")
        events = await d.until(is_turn_completed)

    assert b"this is not json\n" in lines
    assert b"{truncated\n" in lines
    assert deltas(events) == "echo: a b"


async def test_oversized_line_in_the_middle_of_a_turn(tmp_path: Path) -> None:
    async with double(tmp_path, "oversized", FAULT_OVERSIZED_BYTES=str(9 << 20)) as d:
        await d.handshake()
        await d.start_turn(await d.thread(), "a b")
        events = await d.until(is_turn_completed, timeout=10)

    huge = [m for m in events if m.get("method") == "fault/huge"]
    assert len(huge[0]["params"]["blob"]) == 9 << 20
    assert deltas(events) == "echo: a b"


async def test_exit_at_start(tmp_path: Path) -> None:
    async with double(tmp_path, "exit_at_start", FAULT_EXIT_CODE="3", FAULT_EXIT_MESSAGE="boom at start") as d:
        with anyio.fail_after(5):
            assert await d.proc.wait() == 3
        assert d.proc.stderr is not None
        assert b"boom at start" in await d.proc.stderr.read()


async def test_slow_handshake_delays_initialize(tmp_path: Path) -> None:
    async with double(tmp_path, "slow_handshake", FAULT_HANDSHAKE_DELAY_MS="300") as d:
        started = time.monotonic()
        await d.handshake()

    assert time.monotonic() - started >= 0.3


async def test_server_requests_block_the_turn_until_answered(tmp_path: Path) -> None:
    async with double(tmp_path, "server_request") as d:
        await d.handshake()
        await d.start_turn(await d.thread(), "go")
        before = await d.until(lambda m: m.get("method") == "item/fault/unknownRequest")
        requests = [m for m in before if "id" in m and "method" in m]
        assert [r["method"] for r in requests] == ["item/commandExecution/requestApproval", "item/fault/unknownRequest"]
        with anyio.move_on_after(0.3):
            await d.line(timeout=1)
            pytest.fail("the turn must wait for both answers")
        await d.send({"id": requests[0]["id"], "result": {"decision": "decline"}})
        await d.send({"id": requests[1]["id"], "error": {"code": -32601, "message": "unknown"}})
        events = await d.until(is_turn_completed)

    assert deltas(events) == "echo: go"
    answers = [m for m in d.logged() if "method" not in m]
    assert answers == [
        {"id": requests[0]["id"], "result": {"decision": "decline"}},
        {"id": requests[1]["id"], "error": {"code": -32601, "message": "unknown"}},
    ]


async def test_interrupt_ends_a_slow_turn_and_is_logged(tmp_path: Path) -> None:
    async with double(tmp_path, "slow", FAULT_DELTAS="1000", FAULT_DELTA_INTERVAL_MS="20") as d:
        await d.handshake()
        thread_id = await d.thread()
        reply = await d.start_turn(thread_id, "long")
        await d.until(lambda m: m.get("method") == "item/agentMessage/delta")
        await d.call("turn/interrupt", {"threadId": thread_id, "turnId": reply["result"]["turn"]["id"]})
        events = await d.until(is_turn_completed)

    assert events[-1]["params"]["turn"]["status"] == "interrupted"
    assert "turn/interrupt" in [m.get("method") for m in d.logged()]


async def test_silent_turn_says_nothing_until_interrupted_while_others_go_on(tmp_path: Path) -> None:
    async with double(tmp_path) as d:
        await d.handshake()
        silent_thread, other = await d.thread(), await d.thread()
        rid = await d.call(
            "turn/start", {"threadId": silent_thread, "input": [{"type": "text", "text": "fault:silent"}]}
        )
        await d.call("turn/start", {"threadId": other, "input": [{"type": "text", "text": "meanwhile"}]})
        events = await d.until(is_turn_completed)
        silent_turn = next(m for m in events if m.get("id") == rid)["result"]["turn"]["id"]
        await d.call("turn/interrupt", {"threadId": silent_thread, "turnId": silent_turn})
        ended = await d.until(is_turn_completed)

    silent_events = [m for m in events if "method" in m and m["params"].get("threadId") == silent_thread]
    assert [m["method"] for m in silent_events] == ["thread/status/changed", "turn/started"]
    assert events[-1]["params"]["threadId"] == other
    assert deltas(events) == "echo: meanwhile"
    assert ended[-1]["params"] == {
        "threadId": silent_thread,
        "turn": {"id": silent_turn, "status": "interrupted", "items": [], "error": None},
    }


async def test_deltas_mode_streams_n_deltas(tmp_path: Path) -> None:
    async with double(tmp_path) as d:
        await d.handshake()
        await d.start_turn(await d.thread(), "fault:deltas=250")
        events = await d.until(is_turn_completed)

    pieces = [m["params"]["delta"] for m in events if m.get("method") == "item/agentMessage/delta"]
    assert pieces == [f"w{i} " for i in range(250)]
