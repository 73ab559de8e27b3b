"""CORS preflights answered by Traefik alone, and security headers on every kind of response."""

from __future__ import annotations

import pytest

from tests.edge.conftest import Keys
from tests.edge.harness import App, Authd, RecordingUpstream, Traefik, cors_allowlist

pytestmark = pytest.mark.edge

SDK_HEADERS = (
    "authorization,content-type,user-agent,openai-beta,x-stainless-os,x-stainless-lang,x-stainless-arch,"
    "x-stainless-runtime,x-stainless-runtime-version,x-stainless-package-version,x-stainless-retry-count,"
    "x-stainless-timeout"
)
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def preflight(origin: str, path: str = "/v1/chat/completions") -> dict[str, str]:
    return {"origin": origin, "access-control-request-method": "POST", "access-control-request-headers": SDK_HEADERS}


def assert_security_headers(headers: object) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name  # type: ignore[index]
    assert "camera=()" in headers["permissions-policy"]  # type: ignore[index]


@pytest.mark.parametrize(
    "origin", [*cors_allowlist(), "https://api.example.test", "https://web.example.test"], ids=lambda o: o
)
def test_preflight_from_allowed_origin_is_answered_at_traefik(
    edge: Traefik, authd: Authd, app: App, origin: str
) -> None:
    before_authd, before_app = authd.settled_verify_hits(), app.settled_hits("OPTIONS", "/v1/chat/completions")
    with edge.client() as client:
        r = client.options("/v1/chat/completions", headers=preflight(origin), extensions=edge.ext)
    assert r.status_code in (200, 204)  # OSS Traefik answers preflights with 200 (harness.md §1.6)
    assert r.headers["access-control-allow-origin"] == origin
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert set(SDK_HEADERS.split(",")) <= allowed
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-max-age"] == "600"
    assert_security_headers(r.headers)
    assert authd.settled_verify_hits() == before_authd
    assert app.settled_hits("OPTIONS", "/v1/chat/completions") == before_app


def test_preflight_never_reaches_the_upstream(edge_recording: Traefik, recorder: RecordingUpstream) -> None:
    """Same question asked of a recorder, which sees every request whatever its method or path."""
    recorder.requests.clear()
    with edge_recording.client() as client:
        for path in ("/v1/chat/completions", "/v1/responses", "/v1/models"):
            r = client.options(path, headers=preflight("app://obsidian.md"), extensions=edge_recording.ext)
            assert r.headers["access-control-allow-origin"] == "app://obsidian.md"
    assert recorder.requests == []


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example", "null", "app://obsidian"])
def test_disallowed_origin_gets_no_allow_origin(edge: Traefik, keys: Keys, origin: str) -> None:
    with edge.client() as client:
        pre = client.options("/v1/chat/completions", headers=preflight(origin), extensions=edge.ext)
        actual = client.get("/v1/models", headers={"origin": origin}, extensions=edge.ext)
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in actual.headers


def test_401_carries_allow_origin_so_browsers_can_read_it(edge: Traefik) -> None:
    with edge.client() as client:
        r = client.post(
            "/v1/chat/completions", headers={"origin": "capacitor://localhost"}, json={}, extensions=edge.ext
        )
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "capacitor://localhost"
    assert "Origin" in r.headers["vary"]


def test_security_headers_on_api_response(edge: Traefik, keys: Keys) -> None:
    with edge.client() as client:
        r = client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {keys.default}"},
            json={"model": "codev-5", "messages": [{"role": "user", "content": "x"}]},
            extensions=edge.ext,
        )
    assert r.status_code == 200
    assert_security_headers(r.headers)
    assert "server" not in r.headers  # the upstream's Server header is dropped


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/v1/models", 200),
        ("POST", "/v1/chat/completions", 401),
        ("GET", "/v1/no-such-route", 401),
        ("OPTIONS", "/v1/models", 418),  # OPTIONS that is not a preflight: noop@internal
    ],
    ids=["health", "models", "unauthorized", "unknown-v1", "plain-options"],
)
def test_security_headers_on_health_and_error_responses(edge: Traefik, method: str, path: str, status: int) -> None:
    with edge.client() as client:
        r = client.request(method, path, extensions=edge.ext)
    assert r.status_code == status
    assert_security_headers(r.headers)


def test_unknown_authenticated_route_is_the_apps_json_404(edge: Traefik, keys: Keys) -> None:
    with edge.client() as client:
        r = client.get("/v1/no-such-route", headers={"authorization": f"Bearer {keys.default}"}, extensions=edge.ext)
    assert r.status_code == 404
    assert r.json()["error"]["type"]
    assert_security_headers(r.headers)


@pytest.mark.parametrize("path", ["/readyz", "/livez", "/metrics", "/"])
def test_only_health_is_routed_outside_v1(edge: Traefik, path: str) -> None:
    with edge.client() as client:
        assert client.get(path, extensions=edge.ext).status_code == 404


def test_other_host_names_are_not_routed(edge: Traefik) -> None:
    with edge.client() as client:
        r = client.get("/healthz", headers={"host": "other.example.test"}, extensions=edge.ext)
    assert r.status_code == 404


def test_actual_response_echoes_allowed_origin_not_the_apps_wildcard(edge: Traefik, keys: Keys) -> None:
    """The app may answer `*` (its own default list); Traefik replaces it with the echoed allowed origin."""
    with edge.client() as client:
        r = client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {keys.default}", "origin": "app://obsidian.md"},
            json={"model": "codev-5", "messages": [{"role": "user", "content": "x"}]},
            extensions=edge.ext,
        )
    assert r.status_code == 200
    assert r.headers.get_list("access-control-allow-origin") == ["app://obsidian.md"]
