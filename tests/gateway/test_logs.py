"""Logs an operator can use, tested on the real `python -m app` process (Granian + the app + codex children):
`PROXY_LOG_JSON` makes every line one JSON object, `PROXY_LOG_LEVEL` is obeyed, no ANSI escapes, and no API
key, prompt or completion text appears in any line above DEBUG."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import httpx
import pytest

from tests.api_harness import API_KEY, ApiServer
from tests.conftest import wait_for

pytestmark = pytest.mark.codex
CHAT = "/v1/chat/completions"


class Run:
    """A finished app run: every line it wrote (the process has exited, so nothing is still buffered)."""

    def __init__(self, lines: list[str], secrets_: dict[str, str]) -> None:
        self.lines = lines
        self.secrets = secrets_


def drive(server: ApiServer) -> dict[str, str]:
    """Successful, streaming, failing and unauthenticated requests with unique prompt text; returns the strings
    that must never be logged. (The built-in offline model runs inside the app, so its lines are in this log.)"""
    words = {name: f"{name}-{secrets.token_hex(6)}" for name in ("prompt", "stream", "responses", "fail")}
    bad_key = "sk-wrong-" + secrets.token_hex(12)
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as http:
        r = http.post(CHAT, json={"model": "codev-5", "messages": [{"role": "user", "content": words["prompt"]}]})
        assert r.json()["choices"][0]["message"]["content"] == f"echo: {words['prompt']}"
        body = {"model": "codev-5", "stream": True, "messages": [{"role": "user", "content": words["stream"]}]}
        with http.stream("POST", CHAT, json=body) as s:
            assert words["stream"] in s.read().decode()
        r = http.post("/v1/responses", json={"model": "codev-5", "input": words["responses"]})
        assert r.status_code == 200
        fail = {"model": "codev-5", "messages": [{"role": "user", "content": f"{words['fail']} [[offline fail=500]]"}]}
        assert http.post(CHAT, json=fail).status_code >= 500
        assert http.post(CHAT, json=fail, headers={"Authorization": f"Bearer {bad_key}"}).status_code == 401
        assert http.get("/v1/usage").status_code == 200
    return {**words, "api key": API_KEY, "wrong key": bad_key}


@pytest.fixture(scope="module")
def json_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    server = ApiServer(
        tmp_path_factory.mktemp("json-logs"), {"PROXY_BACKEND": "offline", "PROXY_LOG_JSON": "true"}
    ).start()
    try:
        never = drive(server)
        wait_for(lambda: '"route":"/v1/usage"' in server.log(), what="the last access line")
    finally:
        assert server.stop() == 0
    return Run(server.log_path.read_text(errors="replace").splitlines(), never)


def test_every_line_is_one_json_object(json_run: Run) -> None:
    entries = []
    for line in json_run.lines:
        entry = json.loads(line)
        assert isinstance(entry, dict) and {"ts", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    loggers = {e["logger"] for e in entries}
    assert "app.access" in loggers  # the access log
    assert "_granian" in loggers  # Granian's own lines
    assert "app" in loggers  # "serving the API on …"
    codex = [e for e in entries if e["logger"] == "app.codex.transport" and e.get("worker")]
    assert codex, "no codex stderr line was logged"  # codex's start-up notice (no bubblewrap on PATH)


def test_access_lines_carry_the_operator_fields(json_run: Run) -> None:
    access = [json.loads(line) for line in json_run.lines if '"logger":"app.access"' in line]
    chat = next(e for e in access if e["route"] == CHAT and e["status"] == 200)
    assert chat["request_id"].startswith("req_")
    assert (chat["method"], chat["key"], chat["outcome"], chat["model"]) == ("POST", "default", "completed", "codev-5")
    assert chat["tokens"] > 0 and chat["bytes_out"] > 0 and chat["duration_ms"] >= 0
    assert chat["user_agent"].startswith("python-httpx/")
    refused = next(e for e in access if e["status"] == 401)
    assert refused["key"] is None and refused["outcome"] is None


def test_no_key_prompt_or_completion_in_any_line(json_run: Run) -> None:
    text = "\n".join(json_run.lines)
    for what, value in json_run.secrets.items():
        assert value not in text, f"the {what} was logged"


def test_no_ansi_escape_in_any_line(json_run: Run) -> None:
    text = "\n".join(json_run.lines)
    assert "\x1b" not in text
    assert not re.search(r"\\u001b", text, re.IGNORECASE)
    assert not re.search(r"\[[0-9;]*m", "\n".join(json.loads(line)["message"] for line in json_run.lines))


def test_per_turn_codex_noise_is_not_logged_above_debug(json_run: Run) -> None:
    assert not [line for line in json_run.lines if "fallback model metadata" in line]


def test_log_level_warning_suppresses_info_lines(tmp_path: Path) -> None:
    server = ApiServer(tmp_path, {"PROXY_BACKEND": "offline", "PROXY_LOG_LEVEL": "WARNING"}).start()
    try:
        drive(server)
    finally:
        assert server.stop() == 0
    lines = server.log_path.read_text(errors="replace").splitlines()
    levels = [m.group(1) for line in lines if (m := re.match(r"^\S+ \S+ ([A-Z]+) \S+: ", line))]
    assert len(levels) == len(lines), [line for line in lines if not re.match(r"^\S+ \S+ [A-Z]+ \S+: ", line)]
    assert "WARNING" in levels  # e.g. "No Codex login …: serving the built-in offline model"
    assert set(levels) <= {"WARNING", "ERROR", "CRITICAL"}, [line for line in lines if " INFO " in line]
