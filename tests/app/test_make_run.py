"""`make run` is one of the two README commands: it must serve the API on the offline model when there is no login."""

from __future__ import annotations

import os
import signal
import stat
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
        key = (tmp_path / "codev" / "dev-api-key").read_text().strip()
        chat = httpx.post(
            base + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
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
    assert f"dev API key {key}" in text  # the startup line tells the developer which key to use
    assert (tmp_path / "codev" / "config.toml").is_file()
    assert [pid for pid in pids if pid and pid_alive(pid)] == []


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """`make run` as a developer starts it: no key, no CORS or host settings."""
    tmp = tmp_path_factory.mktemp("make-run-dev")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "CODEX_HOME": str(tmp / "codev")}
    for name in ("PROXY_API_KEY", "PROXY_CORS_ALLOWED_ORIGINS", "PROXY_ALLOWED_HOSTS", "PROXY_ENV"):
        env.pop(name, None)
    log = (tmp / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "-s", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/livez", timeout=2).status_code == 200, timeout=30, what="make run up")
        yield base, tmp / "codev"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
        log.close()


def test_dev_key_is_random_private_and_the_old_public_key_is_refused(make_run):
    base, home = make_run
    path = home / "dev-api-key"
    key = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key != "codex-local-secret" and len(key) >= 40
    public = httpx.get(base + "/v1/usage/raw", headers={"Authorization": "Bearer codex-local-secret"})
    assert public.status_code == 401
    assert httpx.get(base + "/v1/usage/raw", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/v1/models", "/v1/chat/completions"])
def test_dns_rebinding_host_is_refused(make_run, path):
    base, _ = make_run
    r = httpx.get(base + path, headers={"Host": "rebind.evil.example"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "host_not_allowed"
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_host_names_are_answered(make_run, host):
    base, _ = make_run
    port = base.rsplit(":", 1)[1]
    assert httpx.get(base + "/livez", headers={"Host": f"{host}:{port}"}).status_code == 200


def _preflight(base: str, origin: str) -> httpx.Response:
    return httpx.options(
        base + "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_preflight_from_a_foreign_origin_gets_no_allow_origin(make_run):
    base, _ = make_run
    r = _preflight(base, "https://evil.example")
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-headers" not in r.headers


def test_preflight_from_an_allowlisted_origin_is_allowed(make_run):
    base, _ = make_run
    r = _preflight(base, "app://obsidian.md")
    assert r.headers["access-control-allow-origin"] == "app://obsidian.md"
