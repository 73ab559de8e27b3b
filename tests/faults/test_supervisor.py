"""Supervisor behaviour under faults: crashes, hangs, overload, malformed output, shutdown.

Crashes use the REAL codex binary where a kill is enough (SIGKILL mid-turn); the fault double
(tests/fakes/fault_app_server.py) stands in only where codex cannot misbehave on cue.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.codex.pool import PoolConfig, WorkerPool
from app.codex.turn import InFlight, TextDelta, TurnFailed, TurnFinished, TurnRequest, TurnSession
from app.offline_model import Hang, OfflineModel
from tests.api_harness import pid_alive
from tests.codex.test_pool import pool_config
from tests.conftest import REPO

FAULT = REPO / "tests" / "fakes" / "fault_app_server.py"
FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "request_timeout": 2.0, "startup_timeout": 5.0}


def fault_pool(tmp_path: Path, mode: str, count: int = 1, **env: str) -> tuple[WorkerPool, Path]:
    log = tmp_path / "fault.jsonl"
    config = PoolConfig(
        argv=[sys.executable, str(FAULT), "app-server"],
        env={**os.environ, "FAULT_MODE": mode, "FAULT_LOG": str(log), **env},
        cwd=str(tmp_path),
        count=count,
        **{**FAST, "shutdown_grace": 0.5},
    )
    return WorkerPool(config), log


def received(log: Path, with_pid: bool = False) -> list:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [(e["pid"], e["message"]) if with_pid else e["message"] for e in entries]


async def turn(pool: WorkerPool, text: str = "hi") -> str:
    out = []
    async with TurnSession(
        pool, TurnRequest(input_text=text), overload_retries=3, usage_grace=0.1, in_flight=InFlight()
    ) as t:
        while (event := await t.next_event()) is not None:
            if isinstance(event, TextDelta):
                out.append(event.text)
            elif isinstance(event, TurnFinished):
                assert event.status == "completed", event
    return "".join(out)


@pytest.fixture
async def started() -> AsyncIterator[list[WorkerPool]]:
    pools: list[WorkerPool] = []
    yield pools
    for p in pools:
        await p.stop()


async def start(started: list[WorkerPool], pool: WorkerPool, count: int = 1) -> WorkerPool:
    started.append(pool)
    await pool.start()
    assert await pool.wait_ready(15, count=count), pool.not_ready_reason()
    return pool


@pytest.mark.codex
async def test_killing_real_codex_mid_turn_fails_the_caller_fast_and_the_worker_returns(tmp_path, started):
    async with OfflineModel() as model:
        model.script(Hang())
        pool = await start(started, WorkerPool(pool_config(tmp_path / "h", tmp_path / "w", model.base_url, **FAST)))
        old_pid = pool.child_pids()[0]
        async with TurnSession(
            pool, TurnRequest(input_text="x"), overload_retries=0, usage_grace=0.1, in_flight=InFlight()
        ) as t:
            waiter = asyncio.ensure_future(t.next_event())
            await asyncio.sleep(0.3)  # the turn is running against the hanging model
            killed_at = time.monotonic()
            os.kill(old_pid, signal.SIGKILL)
            with pytest.raises(TurnFailed):
                await asyncio.wait_for(waiter, 5)
            assert time.monotonic() - killed_at < 1.0
        assert await pool.wait_ready(5)
        new_pid = pool.child_pids()[0]
        assert new_pid != old_pid
        assert pool.workers[0].restarts == 1


@pytest.mark.faults
async def test_crash_mid_turn_is_an_error_not_a_hang(tmp_path, started):
    pool = await start(started, fault_pool(tmp_path, "normal")[0])
    with pytest.raises(TurnFailed):
        await asyncio.wait_for(turn(pool, "fault:crash"), 5)
    # No wait here: a request that arrives while the only worker restarts waits for it instead of failing.
    assert await turn(pool, "again") == "echo: again"
    assert pool.workers[0].restarts == 1


@pytest.mark.faults
async def test_hung_worker_is_killed_and_replaced(tmp_path, started):
    pool, _ = fault_pool(tmp_path, "hang")
    pool.config = PoolConfig(**{**_fields(pool.config), "request_timeout": 0.5})
    await start(started, pool)
    hung_pid = pool.child_pids()[0]
    with pytest.raises(TimeoutError):
        await turn(pool)
    deadline = time.monotonic() + 5
    while pid_alive(hung_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not pid_alive(hung_pid)
    assert await pool.wait_ready(5)
    assert pool.child_pids()[0] != hung_pid
    assert "no answer" in (pool.workers[0].last_exit.reason if pool.workers[0].last_exit else "")


@pytest.mark.faults
async def test_a_worker_that_hangs_mid_turn_is_found_by_the_probe(tmp_path, started):
    pool, _ = fault_pool(tmp_path, "normal")
    pool.config = PoolConfig(**{**_fields(pool.config), "request_timeout": 0.5})
    await start(started, pool)
    hung_pid = pool.child_pids()[0]
    session = TurnSession(
        pool, TurnRequest(input_text="fault:hang"), overload_retries=0, usage_grace=0.1, in_flight=InFlight()
    )
    async with session:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(session.next_event(), 0.5)
    # No other request arrives; the liveness probe alone must notice and replace the worker.
    deadline = time.monotonic() + 5
    while pid_alive(hung_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not pid_alive(hung_pid)
    assert await pool.wait_ready(5)
    assert pool.workers[0].restarts == 1


def _fields(config: PoolConfig) -> dict:
    return {f: getattr(config, f) for f in config.__struct_fields__}


@pytest.mark.faults
async def test_overloaded_answers_are_retried(tmp_path, started):
    pool, log = fault_pool(tmp_path, "overloaded", count=2, FAULT_OVERLOAD_COUNT="1")
    await start(started, pool, count=2)
    assert await turn(pool, "busy?") == "echo: busy?"
    # Each double rejects its first turn/start: the retry moves to the other worker, then comes back.
    starts = [pid for pid, m in received(log, with_pid=True) if m.get("method") == "turn/start"]
    assert len(starts) == 3
    assert starts[0] != starts[1]


@pytest.mark.faults
async def test_server_requests_are_answered_so_the_turn_completes(tmp_path, started):
    pool, log = fault_pool(tmp_path, "server_request")
    await start(started, pool)
    assert await asyncio.wait_for(turn(pool, "ask"), 5) == "echo: ask"
    answers = [m for m in received(log) if "method" not in m and ("result" in m or "error" in m)]
    assert {"decision": "decline"} in [a.get("result") for a in answers]
    assert -32601 in [a.get("error", {}).get("code") for a in answers]


@pytest.mark.faults
@pytest.mark.parametrize("mode", ["malformed", "oversized"])
async def test_malformed_and_oversized_lines_are_skipped(tmp_path, started, mode):
    pool = await start(started, fault_pool(tmp_path, mode)[0])
    assert await asyncio.wait_for(turn(pool, "still fine"), 10) == "echo: still fine"


@pytest.mark.faults
async def test_leaving_a_turn_early_sends_turn_interrupt(tmp_path, started):
    pool, log = fault_pool(tmp_path, "slow")
    await start(started, pool)
    async with TurnSession(
        pool, TurnRequest(input_text="long"), overload_retries=0, usage_grace=0.1, in_flight=InFlight()
    ) as t:
        assert isinstance(await t.next_event(), TextDelta)
    methods = [m.get("method") for m in received(log)]
    assert "turn/interrupt" in methods
    assert "thread/unsubscribe" in methods
    assert pool.in_flight == 0


@pytest.mark.faults
async def test_shutdown_kills_a_child_that_ignores_sigterm(tmp_path):
    pool, _ = fault_pool(tmp_path, "hang", count=2, FAULT_IGNORE_SIGTERM="1")
    await pool.start()
    assert await pool.wait_ready(15, count=2)
    pids = pool.child_pids()
    await pool.stop()
    assert [pid for pid in pids if pid_alive(pid)] == []
