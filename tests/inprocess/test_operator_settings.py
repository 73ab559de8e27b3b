"""Settings an operator brings over from the older implementation, on the in-process seam (issue 12):
PROXY_DEFAULT_STREAM, PROXY_USAGE_ALLOW_UNAUTH, maintenance mode and its file switch."""

from __future__ import annotations

import pytest

from tests.seam import seam


async def test_default_stream_streams_a_chat_request_that_did_not_say(tmp_path):
    async with seam(tmp_path, default_stream=True) as s:
        r = await s.http.post(
            "/v1/chat/completions", json={"model": "codev-5", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.text.rstrip().endswith("data: [DONE]")
        assert "echo: hi" in r.text


async def test_default_stream_leaves_an_explicit_false_alone(tmp_path):
    async with seam(tmp_path, default_stream=True) as s:
        body = {"model": "codev-5", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
        r = await s.http.post("/v1/chat/completions", json=body)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["choices"][0]["message"]["content"] == "echo: hi"


async def test_without_default_stream_chat_answers_json(tmp_path):
    async with seam(tmp_path) as s:
        r = await s.http.post(
            "/v1/chat/completions", json={"model": "codev-5", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/usage/raw"])
async def test_usage_allow_unauth_opens_the_usage_routes(tmp_path, path):
    async with seam(tmp_path, usage_allow_unauth=True) as s:
        del s.http.headers["Authorization"]
        assert (await s.http.get(path)).status_code == 200


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/usage/raw"])
async def test_usage_needs_the_bearer_by_default(tmp_path, path):
    async with seam(tmp_path) as s:
        del s.http.headers["Authorization"]
        assert (await s.http.get(path)).status_code == 401


CHAT = {"model": "codev-5", "messages": [{"role": "user", "content": "hi"}]}


async def test_maintenance_mode_refuses_generation_with_503_and_retry_after(tmp_path):
    async with seam(tmp_path, maintenance_mode=True, maintenance_retry_after_s=90) as s:
        for path, body in [
            ("/v1/chat/completions", CHAT),
            ("/v1/responses", {"model": "codev-5", "input": "hi"}),
            ("/v1/completions", {"model": "codev-5", "prompt": "hi"}),
        ]:
            r = await s.http.post(path, json=body)
            assert r.status_code == 503, path
            assert r.headers["retry-after"] == "90"
            assert r.json()["error"]["code"] == "maintenance"
        assert (await s.http.head("/v1/responses")).status_code == 503
        assert s.turns.requests == []  # nothing reached a turn


async def test_maintenance_mode_drains_readyz_but_keeps_health_models_and_usage(tmp_path):
    async with seam(tmp_path, maintenance_mode=True) as s:
        ready = await s.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["maintenance"] is True
        assert "maintenance" in ready.json()["reason"]
        health = await s.http.get("/healthz")
        assert health.status_code == 200
        assert health.json()["maintenance"] is True
        assert (await s.http.get("/v1/models")).status_code == 200
        assert (await s.http.get("/v1/usage")).status_code == 200
        assert (await s.http.get("/livez")).status_code == 200


async def test_the_maintenance_file_flips_it_without_a_restart(tmp_path):
    switch = tmp_path / "maintenance"
    async with seam(tmp_path, maintenance_file=str(switch)) as s:
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 200
        switch.touch()
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 503
        assert (await s.http.get("/readyz")).status_code == 503
        switch.unlink()
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert (await s.http.get("/readyz")).status_code == 200


async def test_a_file_saying_off_overrides_the_variable(tmp_path):
    switch = tmp_path / "maintenance"
    switch.write_text("off\n")
    async with seam(tmp_path, maintenance_mode=True, maintenance_file=str(switch)) as s:
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 200
        switch.write_text("on\n")
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 503


async def test_the_default_switch_file_lives_in_the_codex_home(tmp_path):
    async with seam(tmp_path) as s:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        (home / "maintenance").touch()
        assert (await s.http.post("/v1/chat/completions", json=CHAT)).status_code == 503
