"""The edge of the public path: CORS answered at the Worker, keys refused at ForwardAuth, the caller's
identity as the app records it — each checked on the hops behind, not only on what the client sees."""

from __future__ import annotations

import secrets

import openai
import pytest

from tests.chain.conftest import Chain

pytestmark = pytest.mark.chain

MODEL = "codex-5"
CHAT = "/v1/chat/completions"
REQUESTED_HEADERS = "authorization, content-type, x-stainless-os, x-stainless-lang"
# Obsidian desktop, and Obsidian mobile (Capacitor), which may send its origin with a trailing slash.
ALLOWED = ["app://obsidian.md", "capacitor://localhost/"]
DENIED = "https://evil.example.test"


def _chat_body(text: str = "hi") -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def _preflight_headers(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": REQUESTED_HEADERS,
    }


def _options_at_traefik(chain: Chain) -> int:
    return sum(1 for e in chain.traefik.settled_access_log() if e.get("RequestMethod") == "OPTIONS")


def test_the_probes_see_requests_that_do_reach_each_hop(chain: Chain) -> None:
    """The control for every "never saw it" below: the same counters move for requests that do get there
    (a preflight sent to Traefik directly; an accepted key through the Worker reaching authd and the app)."""
    before = (_options_at_traefik(chain), chain.authd.settled_verify_hits(), chain.app.settled_hits("POST", CHAT))
    with chain.traefik.client() as direct:
        assert direct.options(CHAT, headers=_preflight_headers(ALLOWED[0]), extensions=chain.traefik.ext).is_success
    with chain.http() as http:
        assert http.post(CHAT, headers={"authorization": f"Bearer {chain.keys.alice}"}, json=_chat_body()).is_success
    after = (_options_at_traefik(chain), chain.authd.settled_verify_hits(), chain.app.settled_hits("POST", CHAT))
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1)


@pytest.mark.parametrize("origin", ALLOWED)
def test_preflight_is_answered_at_the_worker_and_reaches_nothing_behind_it(chain: Chain, origin: str) -> None:
    before = (_options_at_traefik(chain), chain.authd.settled_verify_hits(), chain.app.settled_hits("OPTIONS", CHAT))
    with chain.http() as http:
        r = http.options(CHAT, headers=_preflight_headers(origin))
    assert r.status_code == 204
    assert r.headers["x-cors-worker"] == "1"
    assert r.headers["access-control-allow-origin"] == origin
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in REQUESTED_HEADERS.split(",")} <= allowed
    after = (_options_at_traefik(chain), chain.authd.settled_verify_hits(), chain.app.settled_hits("OPTIONS", CHAT))
    assert after == before  # Traefik, authd and the app never saw it


@pytest.mark.parametrize("origin", ALLOWED)
def test_actual_request_carries_exactly_one_allow_origin(chain: Chain, origin: str) -> None:
    """Three hops have a CORS opinion (Worker, Traefik, app); the browser must get one answer, its origin."""
    with chain.http() as http:
        r = http.post(
            CHAT, headers={"origin": origin, "authorization": f"Bearer {chain.keys.alice}"}, json=_chat_body()
        )
    assert r.status_code == 200, r.text
    assert r.headers.get_list("access-control-allow-origin") == [origin]
    assert r.headers.get_list("access-control-allow-credentials") == ["true"]
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()


def test_disallowed_origin_gets_no_allow_origin_from_any_hop(chain: Chain) -> None:
    with chain.http() as http:
        preflight = http.options(CHAT, headers=_preflight_headers(DENIED))
        actual = http.post(
            CHAT, headers={"origin": DENIED, "authorization": f"Bearer {chain.keys.alice}"}, json=_chat_body()
        )
    assert preflight.status_code == 204
    assert actual.status_code == 200  # served: enforcing CORS is the browser's job, it just gets no permission
    for r in (preflight, actual):
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize("which", ["wrong", "disabled"])
def test_refused_key_gets_401_from_forward_auth_and_never_reaches_the_app(chain: Chain, which: str) -> None:
    key = {"wrong": f"sk-wrong-{secrets.token_urlsafe(24)}", "disabled": chain.keys.mallory}[which]
    before_authd, before_app = chain.authd.settled_verify_hits(), chain.app.settled_hits("POST", CHAT)
    with chain.openai(key) as client, pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "let me in"}])
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.response.headers["www-authenticate"] == "Bearer realm=api"
    assert "x-request-id" not in info.value.response.headers  # every answer of the app carries one
    assert chain.authd.settled_verify_hits() == before_authd + 1  # authd decided
    assert chain.app.settled_hits("POST", CHAT) == before_app  # and the app never saw the request


def test_the_ledger_names_the_keys_owner_not_a_user_the_client_claims(chain: Chain) -> None:
    """The app trusts X-Auth-User from Traefik (a trusted proxy); forwardAuth sets it from authd's answer and
    the client's own X-Auth-User must die on the way, or any key could bill its turns to anyone."""
    agent = f"chain-identity-{secrets.token_hex(6)}"
    headers = {"X-Auth-User": "admin", "User-Agent": agent}
    with chain.openai(chain.keys.alice, default_headers=headers) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "who"}]
        )
    request_id = raw.headers["x-request-id"]
    with chain.http(headers={"authorization": f"Bearer {chain.keys.alice}"}) as http:
        records = http.get("/v1/usage/raw", params={"limit": 200}).json()["data"]
    [record] = [r for r in records if r["request_id"] == request_id]
    assert record["key"] == "alice"
    assert any("user=alice" in line for line in chain.app.wait_logged(request_id))
    [entry] = [e for e in chain.traefik.settled_access_log() if e.get("request_User-Agent") == agent]
    assert entry["request_X-Auth-User"] == "alice"  # what Traefik handed the app
