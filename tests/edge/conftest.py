"""Run-wide edge fixtures: one authd, one real app, one recording upstream, and Traefik in front of them.

`edge` is Traefik → authd + the real app (`python -m app`, offline model). `edge_recording` is a second
Traefik with the same files whose app upstream is a recorder, for what the real app cannot report
(which X-Auth-User it was handed, whether a preflight reached it). Rate-limit tests start their own
Traefik instances so their buckets never throttle the other tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port, wait_for
from tests.edge.harness import (
    API_HOST,
    Authd,
    Proc,
    RecordingUpstream,
    Traefik,
    base_env,
    edge_env,
    make_cert,
    recording_upstream,
    start_authd,
    start_traefik,
)


@dataclass(frozen=True)
class Keys:
    default: str  # PROXY_API_KEY, name "default"
    alice: str  # keys-file entry "alice"
    disabled: str  # keys-file entry with disabled: true
    expired: str  # keys-file entry whose expires_at has passed
    file: Path


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_keys_file(path: Path, entries: list[dict[str, object]]) -> None:
    """Write atomically (temp file + rename), the way Ansible and editors replace files."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": entries}))
    tmp.chmod(0o600)
    tmp.replace(path)


@pytest.fixture(scope="session")
def edge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="session")
def keys(edge_dir: Path) -> Keys:
    k = Keys(
        default=f"sk-default-{secrets.token_urlsafe(24)}",
        alice=f"sk-alice-{secrets.token_urlsafe(24)}",
        disabled=f"sk-disabled-{secrets.token_urlsafe(24)}",
        expired=f"sk-expired-{secrets.token_urlsafe(24)}",
        file=edge_dir / "api-keys.json",
    )
    write_keys_file(
        k.file,
        [
            {"name": "alice", "sha256": _digest(k.alice)},
            {"name": "mallory", "sha256": _digest(k.disabled), "disabled": True},
            {"name": "past", "sha256": _digest(k.expired), "expires_at": "2020-01-01T00:00:00Z"},
        ],
    )
    return k


@pytest.fixture(scope="session")
def cert(edge_dir: Path) -> tuple[Path, Path]:
    return make_cert(edge_dir)


@pytest.fixture(scope="session")
def authd(edge_dir: Path, keys: Keys) -> Iterator[Authd]:
    server = start_authd(edge_dir, {"PROXY_API_KEY": keys.default, "PROXY_API_KEYS_FILE": str(keys.file)})
    yield server
    server.proc.stop()


@dataclass
class App:
    url: str
    proc: Proc

    def hits(self, method: str, path: str) -> int:
        """Requests the app answered, from its access log (`app.access ... METHOD PATH STATUS ...`)."""
        pattern = re.compile(rf"app\.access\b.* {re.escape(method)} {re.escape(path)} \d{{3}} ")
        return sum(1 for line in self.proc.log().splitlines() if pattern.search(line))

    def settled_hits(self, method: str, path: str) -> int:
        """hits() once everything sent before this call is logged: a marker request's line is awaited
        first (one worker logs in order), so a request that did reach the app cannot be missed."""
        request_id = httpx.get(f"{self.url}/livez", timeout=5).headers["x-request-id"]
        wait_for(lambda: f"id={request_id}" in self.proc.log(), what="the app's marker access line", interval=0.01)
        return self.hits(method, path)


@pytest.fixture(scope="session")
def app(edge_dir: Path, keys: Keys) -> Iterator[App]:
    """The real app (`python -m app`) on a free loopback port, offline model, one codex worker."""
    if not (REPO / "app" / "__main__.py").exists():
        pytest.fail("app/__main__.py is missing: the edge tests need the real app (`python -m app`)")
    port = free_port()
    codex_home = edge_dir / "codex-home"  # no auth.json: the app runs its offline model
    codex_home.mkdir()
    env = {
        **base_env(),
        "PORT": str(port),
        "PROXY_HOST": "127.0.0.1",
        "PROXY_ENV": "dev",
        "PROXY_API_KEY": keys.default,
        "PROXY_API_KEYS_FILE": str(keys.file),
        "PROXY_ALLOWED_HOSTS": API_HOST,  # Traefik passes the public Host through (passHostHeader)
        "CODEX_HOME": str(codex_home),
        "PROXY_WORKER_COUNT": "1",
    }
    proc = Proc("app", [sys.executable, "-m", "app"], env, edge_dir)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        proc.assert_alive()
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200

    try:
        wait_for(ready, timeout=45, interval=0.1, what="the app's /readyz")
        yield App(url, proc)
    finally:
        proc.stop(timeout=15)


@pytest.fixture(scope="session")
def recorder() -> Iterator[RecordingUpstream]:
    with recording_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def edge(edge_dir: Path, cert: tuple[Path, Path], authd: Authd, app: App) -> Iterator[Traefik]:
    """Traefik (repo dynamic files, prod env names) → authd + the real app. Generous limits: other
    tests must never hit 429 here."""
    env = edge_env(app.url, authd.url, *cert, RATE_LIMIT_AVERAGE="10000", RATE_LIMIT_BURST="10000")
    traefik = start_traefik(edge_dir / "traefik-app", env, cert[0])
    yield traefik
    traefik.proc.stop()


@pytest.fixture(scope="session")
def edge_recording(
    edge_dir: Path, cert: tuple[Path, Path], authd: Authd, recorder: RecordingUpstream
) -> Iterator[Traefik]:
    env = edge_env(recorder.url, authd.url, *cert, RATE_LIMIT_AVERAGE="10000", RATE_LIMIT_BURST="10000")
    traefik = start_traefik(edge_dir / "traefik-recorder", env, cert[0])
    yield traefik
    traefik.proc.stop()
