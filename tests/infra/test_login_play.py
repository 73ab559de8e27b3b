"""login.yml on a host that cannot reach the login server (the nspawn host has no network): the device-code
login fails within its bound with the reason, and the host's existing login is left exactly as it was."""

from __future__ import annotations

import subprocess

import pytest

from tests.infra.conftest import CODEX_HOME
from tests.infra.nspawn import NspawnHost

pytestmark = [pytest.mark.infra, pytest.mark.slow]


# What a login could touch; the rest of the home is codex's own runtime state (logs, its state database).
LOGIN_FILES = [f"{CODEX_HOME}/{name}" for name in ("auth.json", "config.toml", "AGENTS.md", ".repo-managed.json")]


@pytest.fixture(scope="module")
def login_run(nspawn_host: NspawnHost) -> tuple[subprocess.CompletedProcess[str], dict[str, str], dict[str, str]]:
    before = nspawn_host.digests(LOGIN_FILES)
    run = nspawn_host.run_playbook("login.yml", "-e", "login_code_timeout=20")
    return run, before, nspawn_host.digests(LOGIN_FILES)


def test_the_login_play_fails_with_the_reason(login_run) -> None:
    run, _, _ = login_run
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "LOGIN FAILED: codex could not start the device-code login" in out, out[-3000:]
    assert "auth.openai.com" in out
    assert "Fail with the login's own explanation" in out, "the play's own message, not a timeout"


def test_the_existing_login_and_config_are_untouched(login_run) -> None:
    _, before, after = login_run
    assert sorted(before) == sorted(LOGIN_FILES)
    assert after == before


def test_no_staging_home_or_transcript_is_left(nspawn_host: NspawnHost) -> None:
    r = nspawn_host.exec(f"ls -A {CODEX_HOME}")
    leftovers = [n for n in r.stdout.split() if n.startswith(".login-") and n != ".login-generation"]
    assert not leftovers, r.stdout


def test_no_login_process_is_left_running(nspawn_host: NspawnHost) -> None:
    r = nspawn_host.exec("pgrep -af '[c]odex login' || true")
    assert r.stdout.strip() == ""
