"""WORKER_HANDSHAKE_TIMEOUT_MS and WORKER_RESTART_MAX as an operator of the older implementation set them (issue 12).

The fault double stands in for codex: the real binary cannot be told to answer `initialize` late or to die at
every start.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app.codex.pool import PoolConfig
from app.main import create_app
from app.settings import Settings
from tests.api_harness import fault_codex_bin, placeholder_login
from tests.faults.test_supervisor import fault_pool, start, started  # noqa: F401 (fixture)

pytestmark = pytest.mark.faults
KEY = "limits-key-" + "k" * 24


async def _poll(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_late_initialize_answer_fails_the_handshake_at_the_handshake_timeout(tmp_path, started):  # noqa: F811
    pool, _ = fault_pool(tmp_path, "slow_handshake", FAULT_HANDSHAKE_DELAY_MS="5000")
    pool.config = msgspec.structs.replace(pool.config, handshake_timeout=0.3, startup_timeout=30.0)
    started.append(pool)
    await pool.start()

    async def failed():
        last = pool.workers[0].last_exit
        return last is not None and "WORKER_HANDSHAKE_TIMEOUT_MS" in last.reason

    await _poll(failed, what="the handshake to time out")
    assert "no answer to initialize within 0.3s" in pool.workers[0].last_exit.reason  # type: ignore[union-attr]
    assert pool.ready_count == 0


async def test_the_handshake_timeout_defaults_to_the_startup_timeout(tmp_path, started):  # noqa: F811
    pool, _ = fault_pool(tmp_path, "slow_handshake", FAULT_HANDSHAKE_DELAY_MS="300")
    assert PoolConfig(argv=[], env={}, cwd="").handshake_timeout == 0.0
    await start(started, pool)  # 0.3 s is well inside the 5 s startup timeout: ready
    assert pool.workers[0].restarts == 0


def _dead_host_settings(tmp_path, restart_max: int) -> Settings:
    placeholder_login(tmp_path)  # logged in: what fails here is the worker, not the login
    return Settings(
        codex_bin=fault_codex_bin(tmp_path / "bin", "exit_at_start", FAULT_EXIT_MESSAGE="boom-at-start"),
        codex_home=str(tmp_path / "codex-home"),
        codex_workdir=str(tmp_path / "work"),
        usage_log=str(tmp_path / "usage.ndjson"),
        backend="codex",
        api_key=KEY,
        worker_count=1,
        worker_backoff_initial_ms=10,
        worker_backoff_max_ms=40,
        worker_restart_max=restart_max,
        worker_shutdown_grace_ms=500,
    )


async def test_restart_max_gives_a_worker_up_and_readyz_says_so(tmp_path):
    app = create_app(_dead_host_settings(tmp_path, restart_max=3))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:

        async def gave_up():
            r = await client.get("/readyz")
            return r if "WORKER_RESTART_MAX=3" in (r.json()["reason"] or "") else None

        ready = await _poll(gave_up, what="/readyz to name WORKER_RESTART_MAX")
        assert ready.status_code == 503
        assert "boom-at-start" in ready.json()["reason"]
        worker = (await client.get("/healthz")).json()["backend"]["workers"][0]
        assert (worker["state"], worker["consecutive_failures"], worker["restarts"]) == ("gave_up", 3, 2)
        assert worker["pid"] is None  # no child left running, none respawned
        chat = await client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": "codev-5", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 503
        assert "WORKER_RESTART_MAX" in chat.json()["error"]["message"]


async def test_without_restart_max_a_failing_worker_keeps_retrying(tmp_path):
    app = create_app(_dead_host_settings(tmp_path, restart_max=0))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:

        async def looping():
            worker = (await client.get("/healthz")).json()["backend"]["workers"][0]
            return worker if worker["restarts"] >= 6 else None

        worker = await _poll(looping, what="six restarts")
        assert worker["state"] != "gave_up"
        assert (await client.get("/readyz")).status_code == 503
