"""Usage is private to its key: on both routes, with and without `?key=`, an admin (`usage:all`) sees all."""

from __future__ import annotations

import time

import pytest

from tests.gateway.conftest import Gateway, chat_body

pytestmark = pytest.mark.codex
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def since(gateway: Gateway) -> int:
    """Both keys made a request after this time."""
    start = int(time.time() * 1000)
    for name in ("bob", "carol"):
        with gateway.client(name) as client:
            assert client.post(CHAT, json=chat_body(f"{name} was here")).status_code == 200
    return start


def test_a_key_sees_only_its_own_usage(gateway: Gateway, since: int) -> None:
    with gateway.client("bob") as bob:
        summary = bob.get("/v1/usage", params={"start": since}).json()
        raw = bob.get("/v1/usage/raw", params={"limit": 10000}).json()["data"]
    assert set(summary["by_key"]) == {"bob"}
    assert summary["totals"]["requests"] == summary["by_key"]["bob"]["requests"] >= 1
    assert raw and {rec["key"] for rec in raw} == {"bob"}


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/usage/raw"])
def test_a_key_cannot_name_another_key(gateway: Gateway, since: int, path: str) -> None:
    with gateway.client("bob") as bob:
        other = bob.get(path, params={"key": "carol"})
        own = bob.get(path, params={"key": "bob"})
    assert other.status_code == 403
    assert (other.json()["error"]["code"], other.json()["error"]["param"]) == ("insufficient_scope", "key")
    assert own.status_code == 200


def test_an_admin_sees_every_key_and_can_filter(gateway: Gateway, since: int) -> None:
    with gateway.client("ops") as ops:
        summary = ops.get("/v1/usage", params={"start": since}).json()
        raw = ops.get("/v1/usage/raw", params={"limit": 10000}).json()["data"]
        only_carol = ops.get("/v1/usage", params={"start": since, "key": "carol"}).json()
        raw_carol = ops.get("/v1/usage/raw", params={"key": "carol"}).json()["data"]
    assert {"bob", "carol"} <= set(summary["by_key"])
    assert {"bob", "carol"} <= {rec["key"] for rec in raw}
    assert set(only_carol["by_key"]) == {"carol"}
    assert raw_carol and {rec["key"] for rec in raw_carol} == {"carol"}
