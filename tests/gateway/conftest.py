"""One real app (`python -m app`, real codex, the shared offline model) with a keys file of several keys.

The keys: `alice` (3 requests per minute), `bob` and `carol` (defaults), `dave` (a 60-token daily budget),
`ops` (`usage:all`), plus `default` (the harness's PROXY_API_KEY). Six usable keys on a pool of 12 slots:
each key's fair concurrency share is 2. `gpt-4o` is an alias of `codev-5`. Each test uses its own keys, so
one test's limits never leak into another's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api_harness import ApiServer, ThreadedOfflineModel, offline_env

NAMES = ("alice", "bob", "carol", "dave", "ops")
POOL_SLOTS = 12
SHARE = POOL_SLOTS // (len(NAMES) + 1)
DAVE_TOKENS_PER_DAY = 60


@dataclass
class Gateway:
    server: ApiServer
    tokens: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def headers(self, name: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}", **extra}

    def client(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers(name), timeout=30)

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")


def write_keys(path: Path, tokens: dict[str, str]) -> None:
    def entry(name: str) -> dict[str, object]:
        e: dict[str, object] = {"name": name, "sha256": hashlib.sha256(tokens[name].encode()).hexdigest()}
        if name == "alice":
            e["limits"] = {"requests_per_minute": 3}
        if name == "dave":
            e["limits"] = {"tokens_per_day": DAVE_TOKENS_PER_DAY}
        if name == "ops":
            e["scopes"] = ["usage:all"]
        return e

    path.write_text(json.dumps({"keys": [entry(n) for n in NAMES]}))


@pytest.fixture(scope="session")
def gateway(offline_model: ThreadedOfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    tokens = {name: f"sk-{name}-{secrets.token_urlsafe(18)}" for name in NAMES}
    keys_file = workdir / "keys.json"
    write_keys(keys_file, tokens)
    env = offline_env(
        offline_model,
        PROXY_API_KEYS_FILE=str(keys_file),
        PROXY_MODEL_ALIASES="gpt-4o=codev-5",
        WORKER_MAX_CONCURRENCY=str(POOL_SLOTS),
        WORKER_QUEUE_TIMEOUT_MS="500",
    )
    server = ApiServer(workdir, env).start()
    try:
        yield Gateway(server, tokens)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def script_guard(offline_model: ThreadedOfflineModel) -> Iterator[None]:
    """The offline model is shared by the run: a test consumes exactly what it scripted."""
    offline_model.clear_script()
    yield
    assert offline_model.clear_script() == 0, "a scripted reply was never requested by codex"


def chat_body(text: str = "hi", model: str = "codev-5", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}
