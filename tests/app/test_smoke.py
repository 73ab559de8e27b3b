"""`python -m app.smoke` against the real app (real codex, offline model): passes on a healthy deployment, and
each broken part shows as its own FAIL line with a non-zero exit (promotion relies on the exit status)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.smoke import CHECKS
from tests.api_harness import API_KEY, ApiServer
from tests.conftest import REPO

pytestmark = pytest.mark.codex


def smoke(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.smoke", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _lines(out: str) -> dict[str, str]:
    """check name → its report line."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[0] in ("ok", "FAIL") and parts[1] in CHECKS:
            rows[parts[1]] = line
    return rows


def test_a_healthy_deployment_passes_every_check(api: ApiServer) -> None:
    r = smoke("--base-url", api.base_url, "--key", API_KEY, "--expect-backend", "offline")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = _lines(r.stdout)
    assert list(rows) == list(CHECKS)
    assert all(line.startswith("  ok") or line.startswith("ok") for line in rows.values()), r.stdout
    assert '"echo: Reply with the single word: pong"' in rows["chat"]
    assert "app://obsidian.md allowed" in rows["preflight"]
    assert r.stdout.rstrip().endswith("smoke: 6/6 passed")


def test_the_key_can_come_from_stdin_and_is_never_printed(api: ApiServer) -> None:
    r = smoke("--base-url", api.base_url, "--key", "-", stdin=API_KEY + "\n")
    assert r.returncode == 0, r.stdout
    assert API_KEY not in r.stdout + r.stderr


def test_a_wrong_key_fails_the_generation_checks_only(api: ApiServer) -> None:
    r = smoke("--base-url", api.base_url, "--key", "sk-wrong-key-000000000000")
    assert r.returncode == 1
    rows = _lines(r.stdout)
    for name in ("chat", "chat-stream", "responses"):
        assert rows[name].lstrip().startswith("FAIL") and " 401 " in rows[name], rows[name]
        assert "invalid_api_key" in rows[name]
    for name in ("health", "models", "preflight"):
        assert rows[name].lstrip().startswith("ok"), rows[name]
    assert "FAILED" in r.stdout.splitlines()[-1]


def test_an_unexpected_backend_fails_the_health_check(api: ApiServer) -> None:
    r = smoke("--base-url", api.base_url, "--key", API_KEY, "--expect-backend", "codex", "--skip", "chat-stream")
    assert r.returncode == 1
    assert "backend is offline, expected codex" in _lines(r.stdout)["health"]
    assert "chat-stream" not in _lines(r.stdout)


def test_prod_without_a_login_fails_with_the_reason(tmp_path: Path) -> None:
    server = ApiServer(tmp_path, {"PROXY_ENV": "prod"}).start(expect_ready=False)
    try:
        r = smoke("--base-url", server.base_url, "--key", API_KEY)
    finally:
        server.stop()
    assert r.returncode == 1
    rows = _lines(r.stdout)
    assert "needs_login" in rows["health"]
    assert "codex_login_required" in rows["chat"] and " 503 " in rows["chat"]


def test_nothing_listening_is_a_failure_not_a_crash() -> None:
    r = smoke("--base-url", "http://127.0.0.1:9", "--key", "k", "--timeout", "5")
    assert r.returncode == 1
    assert all(line.lstrip().startswith("FAIL") for line in _lines(r.stdout).values())
    assert "ConnectionRefusedError" in r.stdout
    assert "Traceback" not in r.stderr


def test_a_bad_base_url_is_a_usage_error() -> None:
    r = smoke("--base-url", "ftp://x", "--key", "k")
    assert r.returncode == 2
    assert "must be http(s)" in r.stderr
