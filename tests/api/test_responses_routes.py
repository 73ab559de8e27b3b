"""Route-level switches of `/v1/responses`: `PROXY_ENABLE_RESPONSES=false` hides it; `HEAD` reports readiness."""

from __future__ import annotations

import httpx
import pytest

from tests.api.responses_support import MODEL, assert_error_envelope
from tests.api_harness import ApiServer, offline_env

pytestmark = pytest.mark.codex


@pytest.fixture(scope="module")
def disabled_api(offline_model, tmp_path_factory):
    """A second app with the Responses route switched off (everything else as in the session `api`)."""
    server = ApiServer(
        tmp_path_factory.mktemp("responses-off"), offline_env(offline_model, PROXY_ENABLE_RESPONSES="false")
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def unready_api(offline_model, tmp_path_factory):
    """An app whose CODEX_BIN does not exist: the process serves HTTP but no worker ever becomes ready."""
    workdir = tmp_path_factory.mktemp("responses-unready")
    env = offline_env(offline_model, CODEX_BIN=str(workdir / "no-such-codex"))
    server = ApiServer(workdir, env).start(expect_ready=False)
    try:
        yield server
    finally:
        server.stop()


def test_head_is_200_when_a_worker_is_ready(api):
    resp = httpx.head(api.base_url + "/v1/responses", headers=api.headers(), timeout=10)
    assert resp.status_code == 200
    assert resp.content == b""


def test_head_requires_the_api_key(api):
    resp = httpx.head(api.base_url + "/v1/responses", timeout=10)
    assert resp.status_code == 401


def test_head_is_503_when_no_worker_is_ready(unready_api):
    resp = httpx.head(unready_api.base_url + "/v1/responses", headers=unready_api.headers(), timeout=10)
    assert resp.status_code == 503


def test_post_is_a_503_envelope_when_no_worker_is_ready(unready_api):
    resp = httpx.post(
        unready_api.base_url + "/v1/responses",
        json={"model": MODEL, "input": "anyone there?"},
        headers=unready_api.headers(),
        timeout=10,
    )
    err = assert_error_envelope(resp, 503)
    assert err["type"] == "server_error"
    assert resp.headers.get("retry-after")


@pytest.mark.parametrize("method", ["POST", "HEAD"])
def test_disabled_route_is_a_404(disabled_api, method):
    resp = httpx.request(
        method,
        disabled_api.base_url + "/v1/responses",
        json={"model": MODEL, "input": "hi"} if method == "POST" else None,
        headers=disabled_api.headers(),
        timeout=10,
    )
    assert resp.status_code == 404
    if method == "POST":
        err = assert_error_envelope(resp, 404)
        assert err["code"] == "not_found"


def test_disabling_responses_leaves_the_other_routes(disabled_api):
    resp = httpx.get(disabled_api.base_url + "/v1/models", headers=disabled_api.headers(), timeout=10)
    assert resp.status_code == 200
    assert MODEL in [m["id"] for m in resp.json()["data"]]
