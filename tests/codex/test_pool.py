"""The worker pool against the real pinned `codex app-server` and the offline model."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from app.codex.launch import Backend, build_argv, build_env, prepare_codex_home
from app.codex.pool import PoolConfig, WorkerPool
from app.codex.turn import HistoryMessage, InFlight, TextDelta, TurnFailed, TurnFinished, TurnRequest, TurnSession
from app.offline_model import OfflineModel, Text, ToolCalls, Usage
from app.settings import default_codex_bin
from tests.api_harness import pid_alive

pytestmark = pytest.mark.codex


class LoadedThreads(msgspec.Struct):
    data: list[str]


def pool_config(home: Path, work: Path, base_url: str, count: int = 1, **overrides: object) -> PoolConfig:
    prepare_codex_home(home)
    work.mkdir(exist_ok=True)
    backend = Backend(mode="offline", offline_base_url=base_url)
    fields = {
        "argv": build_argv(default_codex_bin(), backend),
        "env": build_env(os.environ, home, backend),
        "cwd": str(work),
        "count": count,
        **overrides,
    }
    return PoolConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def model() -> AsyncIterator[OfflineModel]:
    async with OfflineModel() as m:
        yield m


@pytest.fixture
async def pool(model: OfflineModel, tmp_path: Path) -> AsyncIterator[WorkerPool]:
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=2))
    await p.start()
    try:
        assert await p.wait_ready(30, count=2), p.not_ready_reason()
        yield p
    finally:
        await p.stop()


async def run(pool: WorkerPool, req: TurnRequest) -> tuple[str, TurnFinished]:
    text = []
    async with TurnSession(pool, req, overload_retries=2, usage_grace=0.25, in_flight=InFlight()) as turn:
        while (event := await turn.next_event()) is not None:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, TurnFinished):
                finished = event
    return "".join(text), finished


async def test_a_turn_returns_the_offline_models_text_and_usage(pool, model):
    model.script(Text("Hello from offline", usage=Usage(input_tokens=42, output_tokens=3, cached_tokens=7)))
    text, finished = await run(pool, TurnRequest(input_text="say hello"))
    assert text == "Hello from offline"
    assert finished.status == "completed"
    assert finished.usage is not None
    assert (finished.usage.input_tokens, finished.usage.output_tokens, finished.usage.cached_input_tokens) == (42, 3, 7)
    assert model.requests[-1].last_user_text == "say hello"


async def test_history_reaches_the_model_as_separate_messages(pool, model):
    req = TurnRequest(
        input_text="third", history=(HistoryMessage("user", "first"), HistoryMessage("assistant", "second"))
    )
    text, _ = await run(pool, req)
    assert text == "echo: third"
    roles_texts = [(item.role, item.text) for item in model.requests[-1].input if item.role in ("user", "assistant")]
    assert roles_texts[-3:] == [("user", "first"), ("assistant", "second"), ("user", "third")]


async def test_the_model_sees_no_builtin_tools_but_request_user_input(pool, model):
    await run(pool, TurnRequest(input_text="tools?"))
    assert set(model.requests[-1].tools) <= {"request_user_input"}


async def test_threads_are_unsubscribed_and_unloaded_after_use(pool):
    for i in range(5):
        await run(pool, TurnRequest(input_text=f"turn {i}"))
    assert [w.client.open_threads for w in pool.workers if w.client] == [0, 0]
    assert pool.in_flight == 0
    for worker in pool.workers:
        assert worker.client is not None
        loaded = await worker.client.request("thread/loaded/list", {}, timeout=5, result_type=LoadedThreads)
        assert loaded.data == []


async def test_requests_go_to_the_least_loaded_worker(pool):
    first = await pool.acquire()
    second = await pool.acquire()
    try:
        assert first.worker is not second.worker
    finally:
        first.release()
        second.release()


async def test_shutdown_leaves_no_child_processes(model, tmp_path):
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=2))
    await p.start()
    assert await p.wait_ready(30, count=2)
    pids = p.child_pids()
    assert len(pids) == 2
    assert all(pid_alive(pid) for pid in pids)
    await p.stop()
    assert [pid for pid in pids if pid_alive(pid)] == []


async def test_a_recycled_worker_hands_its_slot_over_at_once_and_still_finishes_its_turn(model, tmp_path):
    """WORKER_MAX_TURNS: the slot's next request runs on a fresh child while the old one still holds its last turn
    (before, the slot took nothing until that turn ended: 429s for as long as a long turn lasted)."""
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=1, max_turns=2))
    await p.start()
    try:
        assert await p.wait_ready(30)
        first_pid = p.child_pids()[0]
        assert (await run(p, TurnRequest(input_text="one")))[0] == "echo: one"
        model.script(ToolCalls(calls=[], text="long", hold_after=1))  # streams its text, then waits for release()
        held = asyncio.create_task(run(p, TurnRequest(input_text="the old child's last turn")))
        await wait_until(lambda: model.held == 1, "the last turn of the old child to be held by the model")
        text, _ = await asyncio.wait_for(run(p, TurnRequest(input_text="meanwhile")), 30)
        assert text == "echo: meanwhile"
        worker = p.workers[0]
        assert not held.done()
        assert first_pid in p.child_pids() and len(p.child_pids()) == 2
        assert worker.status().retiring == 1 and worker.in_flight == 1 and worker.load == 0
        model.release()
        text, finished = await asyncio.wait_for(held, 30)
        assert (text, finished.status) == ("long", "completed")
        await wait_until(lambda: not pid_alive(first_pid) and not worker.retiring, "the old child to stop")
        assert p.child_pids() != [first_pid] and len(p.child_pids()) == 1
        assert (worker.recycles, worker.restarts, worker.consecutive_failures, worker.in_flight) == (1, 0, 0, 0)
    finally:
        await p.stop()


async def test_stopping_the_pool_stops_a_retiring_child_too(model, tmp_path):
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=1, max_turns=1))
    await p.start()
    assert await p.wait_ready(30)
    first_pid = p.child_pids()[0]
    model.script(ToolCalls(calls=[], text="long", hold_after=1))
    held = asyncio.create_task(run(p, TurnRequest(input_text="held")))
    try:
        await wait_until(lambda: model.held == 1 and len(p.child_pids()) == 2, "a retiring child and its successor")
        pids = p.child_pids()
    finally:
        await p.stop()
    assert first_pid in pids and [pid for pid in pids if pid_alive(pid)] == []
    model.release()
    with pytest.raises(TurnFailed, match=r"stdout closed|worker"):  # its child was stopped under it
        await asyncio.wait_for(held, 30)


async def test_a_hung_retiring_child_is_killed_and_its_successor_left_alone(model, tmp_path):
    """An RPC deadline passing on a retiring child (its client calls on_hung) kills that child, never the fresh one
    that took its slot."""
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=1, max_turns=1))
    await p.start()
    try:
        assert await p.wait_ready(30)
        old_pid = p.child_pids()[0]
        model.script(ToolCalls(calls=[], text="long", hold_after=1))
        held = asyncio.create_task(run(p, TurnRequest(input_text="held")))
        worker = p.workers[0]
        await wait_until(
            lambda: model.held == 1 and worker.ready and worker.retiring, "a retiring child and its successor"
        )
        new_pid = worker.transport.pid if worker.transport else None
        (retiring,) = worker.retiring.values()
        assert retiring.client.on_hung is not None
        retiring.client.on_hung("no answer to thread/unsubscribe within 20s")
        with pytest.raises(TurnFailed):
            await asyncio.wait_for(held, 30)
        await wait_until(lambda: not pid_alive(old_pid) and not worker.retiring, "the hung retiring child to go")
        assert worker.ready and worker.transport is not None and worker.transport.pid == new_pid
        assert not worker.hung.is_set() and worker.restarts == 0
        assert (await run(p, TurnRequest(input_text="after")))[0] == "echo: after"
    finally:
        model.release()
        await p.stop()


async def wait_until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_workers_are_recycled_after_max_turns_without_failing_a_request(model, tmp_path):
    p = WorkerPool(pool_config(tmp_path / "home", tmp_path / "work", model.base_url, count=1, max_turns=2))
    await p.start()
    try:
        assert await p.wait_ready(30)
        first_pid = p.child_pids()[0]
        texts = [(await run(p, TurnRequest(input_text=f"turn {i}")))[0] for i in range(5)]
        assert texts == [f"echo: turn {i}" for i in range(5)]
        worker = p.workers[0]
        assert (worker.recycles, worker.restarts, worker.consecutive_failures) == (2, 0, 0)
        assert await p.wait_ready(30)
        assert p.child_pids()[0] != first_pid
        assert not pid_alive(first_pid)
    finally:
        await p.stop()
