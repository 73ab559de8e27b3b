"""Auth through the real edge: Traefik → forwardAuth → authd → the real app (issue 6, first acceptance line)."""

from __future__ import annotations

import pytest

from tests.edge.conftest import Keys
from tests.edge.harness import App, Authd, RecordingUpstream, Traefik

pytestmark = pytest.mark.edge

CHAT = "/v1/chat/completions"
UNAUTHORIZED = {
    "error": {"message": "unauthorized", "type": "authentication_error", "param": None, "code": "invalid_api_key"}
}


def chat_body(text: str = "ping") -> dict[str, object]:
    return {"model": "codev-5", "messages": [{"role": "user", "content": text}]}


def _variants(keys: Keys) -> dict[str, list[tuple[str, str]]]:
    k = keys.default
    return {
        "no-header": [],
        "wrong-token": [("authorization", "Bearer sk-not-a-key")],
        "scheme-missing": [("authorization", k)],
        "basic-scheme": [("authorization", f"Basic {k}")],
        "bearer-no-token": [("authorization", "Bearer")],
        "two-headers-both-valid": [("authorization", f"Bearer {k}"), ("authorization", f"Bearer {k}")],
        "two-headers-one-valid": [("authorization", "Bearer nope"), ("authorization", f"Bearer {k}")],
        "prefix-of-key": [("authorization", f"Bearer {k[:-1]}")],
        "key-plus-suffix": [("authorization", f"Bearer {k}x")],
        "suffix-of-key": [("authorization", f"Bearer {k[1:]}")],
        "token-with-inner-space": [("authorization", f"Bearer {k[:5]} {k[5:]}")],
        "scheme-glued": [("authorization", f"Bearer{k}")],
        "disabled-key": [("authorization", f"Bearer {keys.disabled}")],
        "expired-key": [("authorization", f"Bearer {keys.expired}")],
    }


VARIANT_IDS = list(_variants(Keys("k", "a", "d", "e", file=None)).keys())  # type: ignore[arg-type]


def assert_unauthorized(status: int, headers: dict[str, str] | object, body: object) -> None:
    assert status == 401
    assert headers["www-authenticate"] == "Bearer realm=api"  # type: ignore[index]
    assert body == UNAUTHORIZED


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_bad_credentials_get_401_and_never_reach_the_app(
    edge: Traefik, app: App, keys: Keys, authd: Authd, variant: str
) -> None:
    before_app, before_authd = app.settled_hits("POST", CHAT), authd.settled_verify_hits()
    with edge.client() as client:
        r = client.post(CHAT, headers=_variants(keys)[variant], json=chat_body(), extensions=edge.ext)
    assert_unauthorized(r.status_code, r.headers, r.json())
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    assert authd.settled_verify_hits() == before_authd + 1  # authd decided, not the app
    assert app.settled_hits("POST", CHAT) == before_app


@pytest.mark.parametrize("form", ["obs-fold-newline", "empty-token", "empty-header"])
def test_raw_header_forms_get_401(edge: Traefik, keys: Keys, app: App, form: str) -> None:
    """Forms httpx will not send. obs-fold: a continuation line (CRLF + space) that Traefik unfolds into
    a space inside the token; empty-token: `Bearer ` with nothing after it; empty-header: no value."""
    value = {
        "obs-fold-newline": f"Bearer {keys.default[:8]}\r\n {keys.default[8:]}",
        "empty-token": "Bearer ",
        "empty-header": "",
    }[form]
    before = app.settled_hits("POST", CHAT)
    request = (
        f"POST {CHAT} HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: {value}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()
    status, headers, _ = edge.raw(request)
    assert status == 401
    assert headers["www-authenticate"] == "Bearer realm=api"
    assert app.settled_hits("POST", CHAT) == before


@pytest.mark.parametrize("separator", [b"\n", b"\r", b"\x00", b"\x0b"], ids=["lf", "cr", "nul", "vt"])
def test_raw_control_character_in_token_is_rejected_before_auth(
    edge: Traefik, keys: Keys, authd: Authd, app: App, separator: bytes
) -> None:
    """Bare CR/LF/control bytes in a header value are malformed HTTP: Traefik answers 400 itself, so
    neither authd nor the app ever parses such a token (authd would 401 it: see test_authd_keys.py)."""
    before_authd, before_app = authd.settled_verify_hits(), app.settled_hits("POST", CHAT)
    key = keys.default.encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer "
        + key[:8]
        + separator
        + key[8:]
        + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    status, _, _ = edge.raw(request)
    assert status == 400
    assert authd.settled_verify_hits() == before_authd
    assert app.settled_hits("POST", CHAT) == before_app


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_right_key_reaches_the_app_with_any_scheme_case(edge: Traefik, keys: Keys, app: App, scheme: str) -> None:
    before = app.settled_hits("POST", CHAT)
    with edge.client() as client:
        r = client.post(
            CHAT, headers={"authorization": f"{scheme} {keys.default}"}, json=chat_body("hi"), extensions=edge.ext
        )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "echo: hi"
    assert app.settled_hits("POST", CHAT) == before + 1


def test_keys_file_key_reaches_the_app(edge: Traefik, keys: Keys) -> None:
    with edge.client() as client:
        r = client.post(CHAT, headers={"authorization": f"Bearer {keys.alice}"}, json=chat_body(), extensions=edge.ext)
    assert r.status_code == 200, r.text


def test_app_records_the_identity_authd_resolved(edge: Traefik, keys: Keys, app: App) -> None:
    """The app logs the key name it trusts from Traefik (a trusted proxy), not one the client claims."""
    with edge.client() as client:
        r = client.post(
            CHAT,
            headers={"authorization": f"Bearer {keys.alice}", "x-auth-user": "admin"},
            json=chat_body("who"),
            extensions=edge.ext,
        )
    assert r.status_code == 200
    lines = app.wait_logged(r.headers["x-request-id"])
    assert any("user=alice" in line for line in lines), lines
    assert not any("user=admin" in line for line in lines)


def test_client_sent_x_auth_user_is_overwritten(
    edge_recording: Traefik, recorder: RecordingUpstream, keys: Keys
) -> None:
    recorder.requests.clear()
    with edge_recording.client() as client:
        r = client.get(
            "/v1/anything",
            headers={"authorization": f"Bearer {keys.alice}", "x-auth-user": "admin"},
            extensions=edge_recording.ext,
        )
    assert r.status_code == 200
    assert recorder.requests[-1].headers["x-auth-user"] == ["alice"]


@pytest.mark.parametrize("header", ["X-Auth-User", "x-auth-user", "X_Auth_User"])
def test_client_x_auth_user_never_reaches_public_routes(
    edge_recording: Traefik, recorder: RecordingUpstream, header: str
) -> None:
    """On the public models and health routes forwardAuth does not run; the identity header (and its
    underscore alias, which WSGI/ASGI-style backends may read as the same name) is still removed."""
    recorder.requests.clear()
    with edge_recording.client() as client:
        for path in ("/v1/models", "/healthz"):
            assert client.get(path, headers={header: "admin"}, extensions=edge_recording.ext).status_code == 200
    for request in recorder.requests:
        assert not {"x-auth-user", "x_auth_user"} & request.headers.keys(), request
