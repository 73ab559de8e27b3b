"""A runaway worker (the fault double allocating without bound) is killed at WORKER_MAX_RSS_MB and replaced:
the caller gets a clean error, the next request is served by a fresh worker, the app itself stays small
(issue 13). The same blow-up under the systemd unit's limits runs on the nspawn host (tests/infra)."""

from __future__ import annotations

import httpx
import psutil
import pytest

from tests.api.chat_support import CHAT, chat_body, error_of
from tests.api_harness import ApiServer, fault_codex_bin, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.faults

LIMIT_MB = 160


@pytest.fixture(scope="module")
def watched(offline_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("memory-watchdog")
    env = offline_env(
        offline_model,
        CODEX_BIN=fault_codex_bin(workdir / "bin", "normal", FAULT_ALLOCATE_MAX_MB="1024"),
        WORKER_MAX_RSS_MB=str(LIMIT_MB),
        WORKER_BACKOFF_INITIAL_MS="50",
    )
    server = ApiServer(workdir, env).start()
    try:
        yield server
    finally:
        server.stop()


def worker(server: ApiServer) -> dict:
    return server.health()["backend"]["workers"][0]


def test_a_runaway_worker_is_killed_with_a_clean_error_and_replaced(watched: ApiServer) -> None:
    before = worker(watched)

    r = httpx.post(watched.base_url + CHAT, headers=watched.headers(), json=chat_body("fault:allocate"), timeout=60)
    assert r.status_code == 502, r.text
    err = error_of(r)
    assert (err["type"], err["code"]) == ("server_error", "worker_exited")

    def replaced() -> bool:
        w = worker(watched)
        return w["ready"] and w["pid"] not in (None, before["pid"]) and w["restarts"] == before["restarts"] + 1

    wait_for(replaced, timeout=30, what="a fresh worker")
    assert f"over WORKER_MAX_RSS_MB={LIMIT_MB}" in worker(watched)["last_exit"]["reason"]
    ok = httpx.post(watched.base_url + CHAT, headers=watched.headers(), json=chat_body("after"), timeout=30)
    assert ok.json()["choices"][0]["message"]["content"] == "echo: after"
    assert psutil.Process(watched.proc.pid).memory_info().rss < 200 * 2**20, "the app itself stays small"
