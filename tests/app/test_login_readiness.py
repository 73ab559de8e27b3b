"""Production never serves the offline model in place of a login (issue 10), on the real app and codex binary.

No login → /readyz 503 `needs_login`, generation 503 `codex_login_required`; a login that appears is picked up
without a restart; a login the provider rejects while serving flips readiness until a turn succeeds again.

"Logged in" here means: CODEX_HOME holds an auth.json and a config.toml whose model provider is the offline
model, so the real codex binary runs in codex mode (the app passes no provider override) and a scripted
provider 401 is exactly what codex reports when the ChatGPT login is refused (docs/offline-model.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.errors import LOGIN_HINT
from app.offline_model import Fail
from app.offline_model.server import API_KEY_ENV
from tests.api_harness import ApiServer, ThreadedOfflineModel, offline_env
from tests.conftest import REPO, wait_for

pytestmark = pytest.mark.codex

CHAT = {"model": "codex-5", "messages": [{"role": "user", "content": "what is 2+2"}]}
RESPONSES = {"model": "codex-5", "input": "what is 2+2"}
# API_KEY_ENV: the offline provider's env_key, which codex needs once a config.toml points at it.
PROD = {"PROXY_ENV": "prod", "PROXY_LOGIN_POLL_MS": "100", API_KEY_ENV: "offline"}


def _log_in(home: Path, model: ThreadedOfflineModel, marker: str = "1") -> None:
    """What `codex login` leaves behind, with the provider pointed at the offline model (see module doc)."""
    home.mkdir(parents=True, exist_ok=True)
    provider = "\n".join(s.replace("=", " = ", 1) for s in model.model.provider_settings())
    template = re.sub(r"^model = .*\n", "", (REPO / "app/codex_home/config.toml").read_text(), flags=re.M)
    (home / "config.toml").write_text(provider + "\n" + template)
    auth = home / "auth.json"
    auth.write_text(f'{{"OPENAI_API_KEY": null, "test_login": "{marker}"}}\n')
    auth.chmod(0o600)


def _readyz(server: ApiServer) -> httpx.Response:
    return httpx.get(server.base_url + "/readyz", timeout=5)


def _post(server: ApiServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.base_url + path, json=body, headers=server.headers(), timeout=30)


@pytest.fixture
def prod_without_login(tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(tmp_path, PROD).start(expect_ready=False)
    try:
        yield server
    finally:
        server.stop()


def test_prod_without_login_is_not_ready_and_says_how_to_log_in(prod_without_login: ApiServer) -> None:
    r = _readyz(prod_without_login)
    assert r.status_code == 503
    body = r.json()
    assert (body["code"], body["backend_mode"], body["ready_workers"]) == ("needs_login", "needs_login", 0)
    assert "make login" in body["reason"] and "login.yml" in body["reason"]
    assert str(prod_without_login.workdir / "codex-home") in body["reason"]


def test_prod_without_login_shows_it_on_healthz_and_starts_no_codex(prod_without_login: ApiServer) -> None:
    r = httpx.get(prod_without_login.base_url + "/healthz", timeout=5)
    assert r.status_code == 200
    backend = r.json()["backend"]
    assert (backend["backend_mode"], backend["login"], backend["workers"]) == ("needs_login", "missing", [])
    assert "needs_login" in backend["reason"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", {**CHAT, "stream": True}),
        ("/v1/responses", RESPONSES),
        ("/v1/responses", {**RESPONSES, "stream": True}),
        ("/v1/completions", {"model": "codex-5", "prompt": "2+2"}),
    ],
    ids=["chat", "chat-stream", "responses", "responses-stream", "completions"],
)
def test_prod_without_login_refuses_generation(prod_without_login: ApiServer, path: str, body: dict) -> None:
    r = _post(prod_without_login, path, body)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json"), "refused before any stream started"
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("server_error", "codex_login_required")
    assert err["message"] == LOGIN_HINT
    assert "echo" not in r.text


def test_prod_with_explicit_offline_backend_serves_the_offline_model(
    offline_model: ThreadedOfflineModel, tmp_path: Path
) -> None:
    server = ApiServer(tmp_path, offline_env(offline_model, PROXY_ENV="prod")).start()
    try:
        r = _post(server, "/v1/chat/completions", CHAT)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "echo: what is 2+2"
        assert _readyz(server).json()["backend_mode"] == "offline"
    finally:
        server.stop()


def test_a_login_that_appears_is_picked_up_without_a_restart(
    offline_model: ThreadedOfflineModel, prod_without_login: ApiServer
) -> None:
    pid = prod_without_login.proc.pid if prod_without_login.proc else None
    _log_in(prod_without_login.workdir / "codex-home", offline_model)
    wait_for(lambda: _readyz(prod_without_login).status_code == 200, timeout=30, what="/readyz 200 after the login")
    assert prod_without_login.proc is not None and prod_without_login.proc.pid == pid
    assert prod_without_login.health()["backend"]["backend_mode"] == "codex"
    seen = len(offline_model.requests)
    r = _post(prod_without_login, "/v1/chat/completions", CHAT)
    assert r.status_code == 200, r.text
    assert len(offline_model.requests) == seen + 1, "answered by codex through the home's provider"


@pytest.fixture
def logged_in_prod(offline_model: ThreadedOfflineModel, tmp_path: Path) -> Iterator[ApiServer]:
    _log_in(tmp_path / "codex-home", offline_model)
    offline_model.clear_script()
    server = ApiServer(tmp_path, PROD).start()
    try:
        yield server
    finally:
        offline_model.clear_script()
        server.stop()


def test_a_logged_in_prod_backend_runs_codex_mode_with_the_login(logged_in_prod: ApiServer) -> None:
    backend = logged_in_prod.health()["backend"]
    assert (backend["backend_mode"], backend["login"]) == ("codex", "present")
    r = _post(logged_in_prod, "/v1/chat/completions", CHAT)
    assert r.status_code == 200, r.text


def test_a_rejected_login_flips_readiness_until_a_turn_succeeds(
    offline_model: ThreadedOfflineModel, logged_in_prod: ApiServer
) -> None:
    offline_model.script(Fail(401, "invalid_api_key", "Your authentication token has expired."))
    r = _post(logged_in_prod, "/v1/chat/completions", CHAT)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "codex_login_required"

    ready = _readyz(logged_in_prod)
    assert ready.status_code == 503
    assert ready.json()["code"] == "needs_login"
    assert "rejected" in ready.json()["reason"] and "make login" in ready.json()["reason"]
    assert logged_in_prod.health()["backend"]["login"] == "rejected"

    # Turns are still tried while the flag is up: the first one that succeeds brings readiness back.
    again = _post(logged_in_prod, "/v1/responses", RESPONSES)
    assert again.status_code == 200, again.text
    assert _readyz(logged_in_prod).status_code == 200
    assert logged_in_prod.health()["backend"]["login"] == "present"


def test_a_stream_that_hits_a_rejected_login_flips_readiness(
    offline_model: ThreadedOfflineModel, logged_in_prod: ApiServer
) -> None:
    offline_model.script(Fail(401, "invalid_api_key", "token revoked"))
    r = _post(logged_in_prod, "/v1/chat/completions", {**CHAT, "stream": True})
    assert r.status_code == 200, "the stream had started"
    assert '"code":"codex_login_required"' in r.text
    assert _readyz(logged_in_prod).json()["code"] == "needs_login"


def test_a_new_login_after_a_rejection_restores_readiness_without_a_turn(
    offline_model: ThreadedOfflineModel, logged_in_prod: ApiServer
) -> None:
    before = logged_in_prod.child_pids()
    offline_model.script(Fail(401, "invalid_api_key", "token revoked"))
    assert _post(logged_in_prod, "/v1/chat/completions", CHAT).status_code == 503
    assert _readyz(logged_in_prod).status_code == 503

    _log_in(logged_in_prod.workdir / "codex-home", offline_model, marker="2")  # the operator logged in again
    wait_for(lambda: _readyz(logged_in_prod).status_code == 200, timeout=30, what="/readyz 200 after re-login")
    assert logged_in_prod.child_pids() != before, "the workers were restarted with the new login"
    assert _post(logged_in_prod, "/v1/chat/completions", CHAT).status_code == 200


def test_a_removed_login_refuses_generation(logged_in_prod: ApiServer) -> None:
    (logged_in_prod.workdir / "codex-home" / "auth.json").unlink()
    wait_for(lambda: _readyz(logged_in_prod).status_code == 503, timeout=10, what="/readyz 503 without auth.json")
    assert _readyz(logged_in_prod).json()["code"] == "needs_login"
    r = _post(logged_in_prod, "/v1/chat/completions", CHAT)
    assert (r.status_code, r.json()["error"]["code"]) == (503, "codex_login_required")
