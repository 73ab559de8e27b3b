"""Who a request is recorded as, and what /readyz says about the keys file (issue 13).

- `X-Auth-User` never chooses the identity: a value different from the name of the presented key, or one sent
  from outside PROXY_TRUSTED_PROXIES, is ignored (and logged); the usage record carries the key's name. Through
  Traefik the header is stripped and set by authd (tests/edge/test_auth.py).
- A keys file that fails to parse keeps the last good key set serving, and /readyz (503 + reason) and
  /metrics (`codex_api_keys_file_loaded 0`) say so until a good file is in place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.api_harness import API_KEY, ApiServer, ThreadedOfflineModel, offline_env
from tests.conftest import wait_for

pytestmark = pytest.mark.codex

CHAT = {"model": "codev-5", "messages": [{"role": "user", "content": "who am i"}]}


def write_keys(path: Path, names: dict[str, str]) -> None:
    entries = [{"name": n, "sha256": hashlib.sha256(k.encode()).hexdigest()} for n, k in names.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": entries}))
    tmp.replace(path)


def full_log(server: ApiServer) -> str:
    return server.log_path.read_text(errors="replace")


ALICE = "alice-key-0123456789abcdef"


def last_usage_key(server: ApiServer, request_id: str, key: str = ALICE) -> str:
    """The recorded key name, read with `key` (usage is private to its key: alice reads her own records)."""

    def find() -> str | None:
        headers = {"Authorization": f"Bearer {key}"}
        records = httpx.get(server.base_url + "/v1/usage/raw", headers=headers, timeout=10).json()["data"]
        return next((r["key"] for r in records if r["request_id"] == request_id), None)

    return wait_for(find, what=f"usage record {request_id}")


@pytest.fixture(scope="module")
def keyed(offline_model: ThreadedOfflineModel, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("identity")
    keys_file = root / "api-keys.json"
    write_keys(keys_file, {"alice": "alice-key-0123456789abcdef"})
    server = ApiServer(root, offline_env(offline_model, PROXY_API_KEYS_FILE=str(keys_file))).start()
    try:
        yield server, keys_file
    finally:
        server.stop()


@pytest.mark.parametrize("claimed", ["mallory", "default", "ALICE"])
def test_spoofed_x_auth_user_is_ignored_and_logged(keyed, claimed: str) -> None:
    server, _ = keyed
    r = httpx.post(
        server.base_url + "/v1/chat/completions",
        headers={"Authorization": "Bearer alice-key-0123456789abcdef", "X-Auth-User": claimed},
        json=CHAT,
        timeout=30,
    )
    assert r.status_code == 200
    assert last_usage_key(server, r.headers["x-request-id"]) == "alice"
    wait_for(lambda: f"ignored X-Auth-User {claimed!r}" in full_log(server), what="the log line")


def test_matching_x_auth_user_from_a_trusted_proxy_is_quiet(keyed) -> None:
    server, _ = keyed
    before = full_log(server).count("ignored X-Auth-User")
    r = httpx.post(
        server.base_url + "/v1/chat/completions",
        headers={"Authorization": "Bearer alice-key-0123456789abcdef", "X-Auth-User": "alice"},
        json=CHAT,
        timeout=30,
    )
    assert last_usage_key(server, r.headers["x-request-id"]) == "alice"
    wait_for(lambda: f"id={r.headers['x-request-id']}" in full_log(server), what="the access line")
    assert full_log(server).count("ignored X-Auth-User") == before


def test_x_auth_user_from_an_untrusted_address_is_ignored(offline_model, tmp_path) -> None:
    env = offline_env(offline_model, PROXY_TRUSTED_PROXIES="192.0.2.0/24")  # loopback is not a proxy here
    server = ApiServer(tmp_path, env).start()
    try:
        r = httpx.post(
            server.base_url + "/v1/chat/completions",
            headers={**server.headers(), "X-Auth-User": "default"},
            json=CHAT,
            timeout=30,
        )
        assert last_usage_key(server, r.headers["x-request-id"], API_KEY) == "default"
        wait_for(lambda: "not a trusted proxy" in full_log(server), what="the log line")
    finally:
        server.stop()


def test_a_broken_keys_file_shows_on_readyz_and_metrics_until_fixed(keyed) -> None:
    server, keys_file = keyed
    assert httpx.get(server.base_url + "/readyz").status_code == 200
    keys_file.write_text('{"keys": [{"name": "alice", "sha256": ')  # a revocation edit gone wrong
    r = wait_for(lambda: (x := httpx.get(server.base_url + "/readyz")).status_code == 503 and x, what="readyz 503")
    assert "keys file" in r.json()["reason"] and "not loaded" in r.json()["reason"]
    assert "codex_api_keys_file_loaded 0" in httpx.get(server.base_url + "/metrics").text
    # Still serving the last good set meanwhile.
    ok = httpx.post(
        server.base_url + "/v1/chat/completions",
        headers={"Authorization": "Bearer alice-key-0123456789abcdef"},
        json=CHAT,
        timeout=30,
    )
    assert ok.status_code == 200
    write_keys(keys_file, {"alice": "alice-key-0123456789abcdef"})
    wait_for(lambda: httpx.get(server.base_url + "/readyz").status_code == 200, what="readyz 200 again")
    assert "codex_api_keys_file_loaded 1" in httpx.get(server.base_url + "/metrics").text
    assert API_KEY  # the harness key (name "default") stays valid throughout
