"""The whole public path, once per run: client → Worker (workerd) → Traefik → authd + app → codex → model.

Every hop is the real component started from the repository's own files, on loopback only:

- the offline model (the run's `offline_model`, scripted per test) behind the real app (`python -m app`,
  Granian, a pool of two pinned `codex app-server` children), in production mode;
- authd with the keys file the app also reads (two keys: `alice`, and `mallory`, disabled);
- Traefik with the shipped traefik/traefik.yml (ports and paths moved, `static_config`) and the repo's
  dynamic files, TLS with a throwaway certificate, the production env file's values;
- the Worker in workerd (cloudflare-worker/test/mf-serve.mjs, shipped wrangler.jsonc) whose origin is
  that Traefik, reached over HTTPS by name and verified against the throwaway certificate.

Per-run values reach each process the way deployments hand them over: an EnvironmentFile per service
with the names Ansible renders (app.env, authd.env, traefik.env; read back and passed as the
environment, as systemd does) and Worker vars (`ORIGIN_URL`, plus `NODE_EXTRA_CA_CERTS` so workerd
trusts the private origin certificate). The public host name is `localhost`: workerd resolves names
itself, and this is the one name that reaches loopback on every machine without editing /etc/hosts.

`pytest -m chain` runs just this; the startup time is printed in the terminal summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import openai
import pytest

from app.settings import default_codex_bin
from tests.api_harness import ThreadedOfflineModel
from tests.conftest import free_port, wait_for
from tests.edge.harness import (
    App,
    Authd,
    Traefik,
    cors_allowlist,
    edge_env,
    key_entry,
    make_cert,
    new_key,
    read_env_file,
    start_app,
    start_authd,
    start_traefik,
    write_env_file,
    write_keys_file,
)
from tests.worker.harness import MfServe, start_mf_serve

PUBLIC_HOST = "localhost"
CHAIN_STARTUP = pytest.StashKey[str]()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass(frozen=True)
class ChainKeys:
    alice: str  # keys-file entry "alice": accepted
    mallory: str  # keys-file entry "mallory", disabled: true
    file: Path


@dataclass
class Chain:
    worker: MfServe
    traefik: Traefik
    authd: Authd
    app: App
    model: ThreadedOfflineModel
    keys: ChainKeys
    startup_s: float

    @property
    def base_url(self) -> str:
        """The public URL a client is given: the Worker's."""
        return f"{self.worker.url}/v1"

    def openai(self, key: str, **kwargs: Any) -> openai.OpenAI:
        """The official SDK pointed at the Worker, no retries (a retry would hide a refused request)."""
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=60, **kwargs)

    def http(self, **kwargs: Any) -> httpx.Client:
        """Plain HTTP to the Worker, for what the SDK hides (preflights, SSE comments, raw headers)."""
        return httpx.Client(base_url=self.worker.url, timeout=60, trust_env=False, **kwargs)

    @contextmanager
    def stream(self, path: str, body: dict[str, object]) -> Iterator[httpx.Response]:
        """POST a streamed request as alice and hand over the open SSE response; leaving the block hangs up."""
        with (
            self.http() as http,
            http.stream("POST", path, headers={"authorization": f"Bearer {self.keys.alice}"}, json=body) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            yield r


def _start_all(starters: dict[str, Callable[[], _Stoppable]], took: dict[str, float]) -> dict[str, Any]:
    """Run the starters side by side (each waits for its own readiness), noting in `took` how long each
    needed; if one fails, stop the others."""

    def timed(name: str) -> _Stoppable:
        begin = time.monotonic()
        part = starters[name]()
        took[name] = time.monotonic() - begin
        return part

    with ThreadPoolExecutor(len(starters)) as pool:
        futures: dict[str, Future[_Stoppable]] = {name: pool.submit(timed, name) for name in starters}
        errors = [(name, f.exception()) for name, f in futures.items() if f.exception() is not None]
    if errors:
        for future in futures.values():
            if future.exception() is None:
                future.result().stop()
        name, error = errors[0]
        raise AssertionError(f"chain: {name} did not start: {error}") from error
    return {name: f.result() for name, f in futures.items()}


def _app_env(directory: Path, port: int, keys_file: Path, model: ThreadedOfflineModel) -> dict[str, str]:
    """app.env with the names ansible/roles/app/templates/etc/codex-api/app.env.j2 renders, production
    values except where the run needs its own (ports, paths, the offline model via app_extra_env)."""
    return {
        "PROXY_ENV": "prod",
        "PROXY_HOST": "127.0.0.1",
        "PORT": str(port),
        "PROXY_API_KEY": "",  # keys-file keys only, as with app_api_key unset
        "PROXY_API_KEYS_FILE": str(keys_file),
        "PROXY_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        "CODEX_HOME": str(directory / "codex-home"),
        "PROXY_CODEX_WORKDIR": str(directory / "codex-work"),
        "CODEX_BIN": default_codex_bin(),
        "PROXY_WORKER_COUNT": "2",
        "PROXY_ENABLE_CORS": "true",
        "PROXY_CORS_ALLOWED_ORIGINS": ",".join(cors_allowlist()),  # app_cors_allowed_origins
        "PROXY_PROTECT_MODELS": "false",
        "PROXY_ENABLE_RESPONSES": "true",
        "PROXY_SSE_KEEPALIVE_MS": "200",  # short, so keepalive comments show up within one test's stream
        # app_extra_env
        "PROXY_BACKEND": "offline",
        "PROXY_OFFLINE_MODEL_URL": model.base_url,
    }


@pytest.fixture(scope="session")
def chain(
    tmp_path_factory: pytest.TempPathFactory, offline_model: ThreadedOfflineModel, pytestconfig: pytest.Config
) -> Iterator[Chain]:
    started = time.monotonic()
    directory = tmp_path_factory.mktemp("chain")
    keys = ChainKeys(alice=new_key("alice"), mallory=new_key("mallory"), file=directory / "api-keys.json")
    write_keys_file(keys.file, [key_entry("alice", keys.alice), key_entry("mallory", keys.mallory, disabled=True)])
    cert, key = make_cert(directory, host=PUBLIC_HOST)
    app_port, authd_port, tls_port = free_port(), free_port(), free_port()
    app_env = write_env_file(directory / "app.env", _app_env(directory, app_port, keys.file, offline_model))
    # authd.env, plus the unit's own `Environment=PROXY_API_KEYS_FILE=%d/api-keys.json` (the credential).
    authd_env = write_env_file(
        directory / "authd.env",
        {"AUTHD_HOST": "127.0.0.1", "AUTHD_PORT": str(authd_port), "AUTHD_ACCESS_LOG": "true"},
    )
    traefik_env = write_env_file(
        directory / "traefik.env",
        edge_env(
            f"http://127.0.0.1:{app_port}",
            f"http://127.0.0.1:{authd_port}",
            cert,
            key,
            API_HOST=PUBLIC_HOST,
            CORS_EXTRA_ORIGIN=f"https://{PUBLIC_HOST}",
        ),
    )
    worker_vars = {"ORIGIN_URL": f"https://{PUBLIC_HOST}:{tls_port}", "NODE_EXTRA_CA_CERTS": str(cert)}

    took: dict[str, float] = {}
    parts = _start_all(
        {
            "app": lambda: start_app(directory, read_env_file(app_env), port=app_port),
            "authd": lambda: start_authd(
                directory, {**read_env_file(authd_env), "PROXY_API_KEYS_FILE": str(keys.file)}, port=authd_port
            ),
            "traefik": lambda: start_traefik(
                directory / "traefik", read_env_file(traefik_env), cert, tls_port=tls_port
            ),
            "worker": lambda: start_mf_serve(directory, worker_vars),
        },
        took,
    )
    result = Chain(
        worker=parts["worker"],
        traefik=parts["traefik"],
        authd=parts["authd"],
        app=parts["app"],
        model=offline_model,
        keys=keys,
        startup_s=0.0,
    )
    try:
        with result.http() as client:
            wait_for(lambda: client.get("/healthz").status_code == 200, timeout=20, what="/healthz through the chain")
        result.startup_s = time.monotonic() - started
        parts_took = ", ".join(f"{name} {seconds:.1f}" for name, seconds in took.items())
        pytestconfig.stash[CHAIN_STARTUP] = f"up in {result.startup_s:.1f} s ({parts_took}, side by side)"
        yield result
    finally:
        for part in (result.worker, result.traefik, result.authd, result.app):
            part.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    startup = config.stash.get(CHAIN_STARTUP, None)
    if startup is not None:
        terminalreporter.write_line(f"chain: Worker → Traefik → authd + app → codex → model {startup}")
