"""Run-wide edge fixtures: one authd, one real app, one recording upstream, and Traefik in front of them.

`edge` is Traefik → authd + the real app (`python -m app`, the run's offline model). `edge_recording` is a second
Traefik with the same files whose app upstream is a recorder, for what the real app cannot report
(which X-Auth-User it was handed, whether a preflight reached it). Rate-limit tests start their own
Traefik instances so their buckets never throttle the other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api_harness import ThreadedOfflineModel, offline_env
from tests.edge.harness import (
    API_HOST,
    App,
    Authd,
    RecordingUpstream,
    Traefik,
    edge_env,
    key_entry,
    make_cert,
    new_key,
    recording_upstream,
    start_app,
    start_authd,
    start_traefik,
    write_keys_file,
)


@dataclass(frozen=True)
class Keys:
    default: str  # PROXY_API_KEY, name "default"
    alice: str  # keys-file entry "alice"
    disabled: str  # keys-file entry with disabled: true
    expired: str  # keys-file entry whose expires_at has passed
    file: Path


@pytest.fixture(scope="session")
def edge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="session")
def keys(edge_dir: Path) -> Keys:
    k = Keys(
        default=new_key("default"),
        alice=new_key("alice"),
        disabled=new_key("disabled"),
        expired=new_key("expired"),
        file=edge_dir / "api-keys.json",
    )
    write_keys_file(
        k.file,
        [
            key_entry("alice", k.alice),
            key_entry("mallory", k.disabled, disabled=True),
            key_entry("past", k.expired, expires_at="2020-01-01T00:00:00Z"),
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


@pytest.fixture(scope="session")
def app(edge_dir: Path, keys: Keys, offline_model: ThreadedOfflineModel) -> Iterator[App]:
    """The real app (`python -m app`) on a free loopback port, one codex worker, backed by the run's
    offline model (tests script it and read what it did)."""
    codex_home = edge_dir / "codex-home"
    codex_home.mkdir()
    env = {
        "PROXY_HOST": "127.0.0.1",
        "PROXY_ENV": "dev",
        "PROXY_API_KEY": keys.default,
        "PROXY_API_KEYS_FILE": str(keys.file),
        "PROXY_ALLOWED_HOSTS": API_HOST,  # Traefik passes the public Host through (passHostHeader)
        "CODEX_HOME": str(codex_home),
        "PROXY_WORKER_COUNT": "1",
        **offline_env(offline_model),
    }
    server = start_app(edge_dir, env)
    yield server
    server.stop()


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
