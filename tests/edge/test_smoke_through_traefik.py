"""`python -m app.smoke --host-header`: the origin reached directly, as behind Cloudflare (issue 10).

The connection goes to Traefik's loopback address while Host and TLS SNI name the public host; Traefik's
sniStrict and Host rules only route the request when both are right, so this proves the option does both.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.edge.conftest import Keys
from tests.edge.harness import API_HOST, Traefik

pytestmark = pytest.mark.edge


def _smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.smoke", *args], cwd=REPO, capture_output=True, text=True, timeout=180, check=False
    )


def test_smoke_passes_through_traefik_with_the_public_host_name(edge: Traefik, keys: Keys) -> None:
    r = _smoke(
        *("--base-url", f"https://127.0.0.1:{edge.tls_port}", "--host-header", API_HOST),
        *("--ca-file", str(edge.cert), "--key", keys.default),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"(Host: {API_HOST})" in r.stdout.splitlines()[0]
    assert r.stdout.rstrip().endswith("smoke: 6/6 passed")


def test_smoke_without_the_host_name_is_refused_by_traefik(edge: Traefik, keys: Keys) -> None:
    r = _smoke("--base-url", f"https://127.0.0.1:{edge.tls_port}", "--ca-file", str(edge.cert), "--key", keys.default)
    assert r.returncode == 1
    assert "smoke: 0/6 passed" in r.stdout
