"""`make login` / `python -m app.login` against the real pinned codex binary, up to the point that needs the
internet (issue 10). HTTPS_PROXY points codex at a loopback address, so the outcome is the same with or without
internet on the machine: a refused connection fails at once, a silent one is cut off at --code-timeout. Either
way the message says what to check, no codex process is left, and an existing login is untouched (codex itself
would delete it before contacting the server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.codex

OLD_LOGIN = '{"tokens": {"refresh_token": "the-working-login"}}\n'


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "codex-home"
    h.mkdir(mode=0o700)
    (h / "auth.json").write_text(OLD_LOGIN)
    (h / "auth.json").chmod(0o600)
    return h


@pytest.fixture
def silent_proxy() -> Iterator[int]:
    """A proxy that accepts connections and never answers (a firewall that swallows the CONNECT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def _codex_children_of(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if "login" in (proc.info["cmdline"] or []) and str(home) in (proc.info["environ"] or {}).get(
                "CODEX_HOME", ""
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _run(cmd: list[str], home: Path, proxy_port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_HOME": str(home), "HTTPS_PROXY": f"http://127.0.0.1:{proxy_port}"}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    # The timeout only keeps a broken build from hanging the suite; the tool's own bound is what is tested.
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_make_login_fails_cleanly_when_the_login_server_is_unreachable(home: Path) -> None:
    r = _run(["make", "--no-print-directory", "login"], home, free_port())
    assert r.returncode != 0
    assert "LOGIN FAILED: codex could not start the device-code login" in r.stdout, r.stdout + r.stderr
    assert "auth.openai.com" in r.stdout and "HTTPS_PROXY" in r.stdout
    assert "Error 3" in r.stderr, "app.login's own status (3: no code from the login server)"


def test_a_failed_login_keeps_the_existing_login_byte_for_byte(home: Path) -> None:
    r = _run([sys.executable, "-m", "app.login"], home, free_port())
    assert r.returncode == 3
    assert "Replacing the login" in r.stdout
    assert (home / "auth.json").read_text() == OLD_LOGIN
    assert oct((home / "auth.json").stat().st_mode & 0o777) == "0o600"
    assert not list(home.glob(".login-*")), "the staging home is removed"


def test_a_silent_login_server_is_cut_off_at_the_code_timeout(home: Path, silent_proxy: int) -> None:
    r = _run([sys.executable, "-m", "app.login", "--code-timeout", "2"], home, silent_proxy)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "LOGIN FAILED: no answer from the login server within 2 s, so codex was stopped" in r.stdout
    assert not _codex_children_of(home), "codex login was stopped, not left running"
    assert (home / "auth.json").read_text() == OLD_LOGIN


def test_the_transcript_mirrors_the_output_privately(home: Path, tmp_path: Path) -> None:
    transcript = tmp_path / "transcript"
    r = _run([sys.executable, "-m", "app.login", "--transcript", str(transcript)], home, free_port())
    assert r.returncode == 3
    assert transcript.read_text() == r.stdout
    assert transcript.stat().st_mode & 0o077 == 0
    assert transcript.read_text().splitlines()[-1].startswith("LOGIN FAILED:")


def test_a_missing_codex_binary_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    r = _run([sys.executable, "-m", "app.login", "--codex-bin", str(tmp_path / "nope")], home, free_port())
    assert r.returncode == 2
    assert "make codex" in r.stdout
