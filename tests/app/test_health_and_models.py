"""Health, readiness, models and the foundation's bad-input promises, on the real app process."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from app.model_ids import advertised
from tests.api_harness import API_KEY, ApiServer, fault_codex_bin, offline_env, placeholder_login
from tests.conftest import REPO, wait_for

pytestmark = pytest.mark.codex


def test_healthz_reports_backend_mode_workers_and_restarts(api):
    body = httpx.get(api.base_url + "/healthz").json()
    backend = body["backend"]
    assert body["ok"] is True
    assert backend["backend_mode"] == "offline"
    assert backend["restarts_total"] == 0
    assert [w["state"] for w in backend["workers"]] == ["ready"]
    assert backend["workers"][0]["pid"] > 0


def test_readyz_and_livez_are_200_when_a_worker_is_ready(api):
    ready = httpx.get(api.base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready_workers"] == 1
    assert httpx.get(api.base_url + "/livez").status_code == 200


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/"])
def test_models_lists_the_dev_ids(api, path):
    r = httpx.get(api.base_url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == advertised("dev")
    assert all(m["object"] == "model" and m["owned_by"] == "codex" for m in body["data"])


def test_head_models_is_200_json_without_body(api):
    r = httpx.head(api.base_url + "/v1/models")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("model_id", ["codev-5-low", "CODEX-5", "gpt-5.2-codex-XH"])
def test_get_one_model_accepts_both_prefixes(api, model_id):
    r = httpx.get(f"{api.base_url}/v1/models/{model_id}")
    assert r.status_code == 200
    assert r.json()["id"] == model_id


def test_unknown_model_is_a_404_envelope(api):
    r = httpx.get(api.base_url + "/v1/models/gpt-4o")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("GET", "/v1/chat/completions"), ("DELETE", "/v1/models")]
)
def test_unknown_routes_and_methods_get_json_envelopes(api, method, path):
    r = httpx.request(method, api.base_url + path, headers=api.headers())
    assert r.status_code in (404, 405)
    assert r.headers["content-type"].startswith("application/json")
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def prod_protected(offline_model, tmp_path_factory):
    env = offline_env(offline_model, PROXY_ENV="prod", PROXY_PROTECT_MODELS="true")
    server = ApiServer(tmp_path_factory.mktemp("prod"), env).start()
    yield server
    server.stop()


def test_prod_lists_the_prod_ids_behind_the_bearer_gate(prod_protected):
    assert httpx.get(prod_protected.base_url + "/v1/models").status_code == 401
    r = httpx.get(prod_protected.base_url + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == advertised("prod")


def test_prod_refuses_to_start_with_the_dev_key(offline_model, tmp_path):
    server = ApiServer(tmp_path, offline_env(offline_model, PROXY_ENV="prod", PROXY_API_KEY="codex-local-secret"))
    done = subprocess.run([sys.executable, "-m", "app"], cwd=REPO, env=server.env, capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"PROXY_API_KEY" in done.stderr


def _not_ready(server: ApiServer, needle: str) -> None:
    assert httpx.get(server.base_url + "/healthz").status_code == 200

    def says_why() -> bool:
        r = httpx.get(server.base_url + "/readyz")
        return r.status_code == 503 and needle in r.json()["reason"]

    wait_for(says_why, timeout=15, what=f"/readyz 503 mentioning {needle!r}")


def test_wrong_codex_bin_keeps_serving_and_readyz_names_the_fix(offline_model, tmp_path):
    server = ApiServer(tmp_path, offline_env(offline_model, CODEX_BIN=str(tmp_path / "no-such-codex")))
    server.start(expect_ready=False)
    try:
        _not_ready(server, "CODEX_BIN")
        assert "CODEX_BIN" in server.log()
    finally:
        server.stop()


def test_unusable_codex_home_keeps_serving_and_readyz_names_it(offline_model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = ApiServer(tmp_path, offline_env(offline_model, CODEX_HOME=str(blocker / "home")))
    server.start(expect_ready=False)
    try:
        _not_ready(server, str(blocker))
    finally:
        server.stop()


def test_a_child_that_exits_at_once_is_reported_as_a_crash_loop(offline_model, tmp_path):
    env = offline_env(
        offline_model,
        CODEX_BIN="/bin/false",
        WORKER_BACKOFF_INITIAL_MS="20",
        WORKER_BACKOFF_MAX_MS="50",
        WORKER_CRASH_LOOP_FAILURES="3",
    )
    server = ApiServer(tmp_path, env).start(expect_ready=False)
    try:
        _not_ready(server, "crash loop")
        assert server.health()["backend"]["restarts_total"] >= 3
    finally:
        server.stop()


@pytest.mark.faults
def test_a_logged_in_backend_adds_the_accounts_models(tmp_path):
    """With a login (PROXY_BACKEND=codex), the ids `model/list` reports are advertised and accepted.

    The fault double stands in for a logged-in codex: the real binary cannot list an account's models here.
    """
    env = {"PROXY_BACKEND": "codex", "CODEX_BIN": fault_codex_bin(tmp_path / "bin", "normal")}
    placeholder_login(tmp_path)
    server = ApiServer(tmp_path, env).start()
    try:
        wait_for(
            lambda: "fault-model" in [m["id"] for m in httpx.get(server.base_url + "/v1/models").json()["data"]],
            timeout=10,
            what="the account's model in /v1/models",
        )
        assert httpx.get(server.base_url + "/v1/models/FAULT-MODEL").status_code == 200
        r = httpx.post(
            server.base_url + "/v1/chat/completions",
            headers=server.headers(),
            json={"model": "fault-model", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert r.status_code == 200
        assert server.health()["backend"]["backend_mode"] == "codex"
    finally:
        server.stop()


@pytest.mark.faults
def test_secrets_on_a_childs_stderr_never_reach_the_log_or_healthz(tmp_path):
    secret = "sk-live-" + "Z" * 24
    codex = fault_codex_bin(tmp_path / "bin", "exit_at_start", FAULT_EXIT_MESSAGE=f"'login failed: Bearer {secret}'")
    placeholder_login(tmp_path)
    server = ApiServer(tmp_path, {"PROXY_BACKEND": "codex", "CODEX_BIN": codex}).start(expect_ready=False)
    try:
        wait_for(lambda: server.health()["backend"]["restarts_total"] >= 1, timeout=15, what="a failed start")
        health = httpx.get(server.base_url + "/healthz").text
        assert "[redacted]" in health
        assert secret not in health
    finally:
        server.stop()
    assert secret not in server.log()


def test_healthz_through_a_proxy_tells_only_the_summary(api):
    public = httpx.get(api.base_url + "/healthz", headers={"X-Forwarded-For": "198.51.100.9"}).json()
    assert public == {"ok": True, "backend_mode": "offline", "ready_workers": 1}
    direct = httpx.get(api.base_url + "/healthz").json()
    assert direct["backend"]["workers"][0]["pid"] > 0
