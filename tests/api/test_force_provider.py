"""CODEX_FORCE_PROVIDER: the workers run with `-c model_provider=<id>`, a provider the operator defined in
CODEX_HOME/config.toml, and need no ChatGPT login for it (issue 12). The provider here is the offline model
declared under a name of the operator's choosing; a real request goes through it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.codex.launch import prepare_codex_home
from tests.api.chat_support import CHAT, chat_body
from tests.api_harness import ApiServer

pytestmark = pytest.mark.codex


@pytest.fixture(scope="module")
def forced(offline_model, tmp_path_factory):
    work = tmp_path_factory.mktemp("forced-provider")
    home = work / "codex-home"
    prepare_codex_home(home)
    with (home / "config.toml").open("a") as f:
        f.write(
            "\n[model_providers.operator_llm]\n"
            'name = "The operator\'s provider"\n'
            f'base_url = "{offline_model.base_url}"\n'
            'wire_api = "responses"\n'
            'env_key = "OPERATOR_LLM_KEY"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n"
        )
    env = {"CODEX_FORCE_PROVIDER": "operator_llm", "OPERATOR_LLM_KEY": "provider-secret", "PROXY_BACKEND": "auto"}
    server = ApiServer(work, env).start()
    try:
        yield server
    finally:
        server.stop()


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_the_forced_provider_reaches_the_childs_argv(forced):
    (pid,) = forced.child_pids()
    argv = _cmdline(pid)
    assert 'model_provider="operator_llm"' in argv
    assert not any("model_providers.offline" in arg for arg in argv)  # not the built-in offline model


def test_a_forced_provider_needs_no_login_and_serves_requests(forced, offline_model):
    assert not (forced.workdir / "codex-home" / "auth.json").exists()
    assert forced.health()["backend"]["backend_mode"] == "codex"
    before = len(offline_model.requests)
    r = httpx.post(forced.base_url + CHAT, headers=forced.headers(), json=chat_body("via the operator"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "echo: via the operator"
    assert len(offline_model.requests) == before + 1
    assert ("authorization", "Bearer provider-secret") in offline_model.requests[-1].headers
