"""`make run` is one of the two README commands: it must serve the API on the offline model when there is no login."""

from __future__ import annotations

import os
import signal
import subprocess

import httpx
import pytest

from app.model_ids import advertised
from tests.api_harness import pid_alive
from tests.conftest import REPO, free_port, wait_for

pytestmark = pytest.mark.codex


def test_make_run_serves_readyz_and_the_dev_models(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "CODEX_HOME": str(tmp_path / "codev")}
    env.pop("PROXY_API_KEY", None)
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "-s", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(base + "/readyz", timeout=2).status_code == 200, timeout=30, what="make run /readyz")
        ids = [m["id"] for m in httpx.get(base + "/v1/models").json()["data"]]
        assert ids == advertised("dev")
        chat = httpx.post(
            base + "/v1/chat/completions",
            headers={"Authorization": "Bearer codex-local-secret"},
            json={"model": "codev-5", "messages": [{"role": "user", "content": "first request"}]},
            timeout=30,
        )
        assert chat.json()["choices"][0]["message"]["content"] == "echo: first request"
        children = httpx.get(base + "/healthz").json()["backend"]["workers"]
        pids = [w["pid"] for w in children]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
        log.close()
    text = (tmp_path / "make-run.log").read_text()
    assert "No Codex login" in text and "login" in text
    assert (tmp_path / "codev" / "config.toml").is_file()
    assert [pid for pid in pids if pid and pid_alive(pid)] == []
