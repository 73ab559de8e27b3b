"""Nothing of a request outlives it on disk (issue 13): after a run of distinctive prompts through the real app and
the real codex, none of them is found anywhere under the Codex home, the work dir or the workers' state dirs —
while the worker still runs and after it stopped — and the login file is untouched.

Before the fix, codex 0.169.0 kept every thread's first message in CODEX_HOME/state_5.sqlite(-wal) and whole
conversations in thread_history_1.sqlite(-wal), ephemeral threads and thread/delete notwithstanding.

To cover a new kind of request (tool calls, say), append an `Exchange` to EXCHANGES: a name and a function that
sends one request carrying the given marker somewhere the client would put private text.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import msgspec
import pytest

from tests.api_harness import ApiServer, ThreadedOfflineModel, offline_env

pytestmark = pytest.mark.codex

MODEL = "codev-5"
AUTH_JSON = b'{"OPENAI_API_KEY": null, "tokens": null, "last_refresh": null}\n'


class Exchange(NamedTuple):
    name: str
    send: Callable[[httpx.Client, str], httpx.Response]


def _chat_non_stream(client: httpx.Client, marker: str) -> httpx.Response:
    history = [
        {"role": "system", "content": f"system {marker}-sys"},
        {"role": "user", "content": f"earlier {marker}-u1"},
        {"role": "assistant", "content": f"reply {marker}-a1"},
    ]
    body = {"model": MODEL, "messages": [*history, {"role": "user", "content": f"now {marker}"}]}
    return client.post("/v1/chat/completions", json=body)


def _chat_stream(client: httpx.Client, marker: str) -> httpx.Response:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"stream {marker}"}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.read()
    return r


def _responses_stream(client: httpx.Client, marker: str) -> httpx.Response:
    body = {
        "model": MODEL,
        "stream": True,
        "instructions": f"be brief {marker}-instr",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": f"earlier {marker}-u1"}]},
            {"role": "assistant", "content": f"reply {marker}-a1"},
            {"role": "user", "content": [{"type": "input_text", "text": f"now {marker}"}]},
        ],
    }
    with client.stream("POST", "/v1/responses", json=body) as r:
        r.read()
    return r


def _responses_non_stream(client: httpx.Client, marker: str) -> httpx.Response:
    return client.post("/v1/responses", json={"model": MODEL, "input": f"plain {marker}"})


def _completion(client: httpx.Client, marker: str) -> httpx.Response:
    return client.post("/v1/completions", json={"model": MODEL, "prompt": f"legacy {marker}"})


def _oversized(client: httpx.Client, marker: str) -> httpx.Response:
    """The shape that once left a 213 MB rollout: a long history with a large last message (within the bounds)."""
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"{marker}-h{i} " + "lorem ipsum " * 80}
        for i in range(2000)
    ]
    last = {"role": "user", "content": f"big {marker} " + "x" * 1_000_000}
    return client.post("/v1/chat/completions", json={"model": MODEL, "messages": [*history, last]})


LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def _tool_call(client: httpx.Client, marker: str) -> httpx.Response:
    """A call (its arguments carry the marker) and, in a second request, its result and the final answer."""
    ask = {"role": "user", "content": f'look it up\ncall lookup {{"q": "{marker}-args"}}'}
    first = client.post("/v1/chat/completions", json={"model": MODEL, "messages": [ask], "tools": [LOOKUP]})
    first.raise_for_status()
    call = first.json()["choices"][0]["message"]
    result = {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": f"found {marker}-result"}
    body = {"model": MODEL, "messages": [ask, call, result], "tools": [LOOKUP]}
    return client.post("/v1/chat/completions", json=body)


EXCHANGES: list[Exchange] = [
    Exchange("chat", _chat_non_stream),
    Exchange("chatstream", _chat_stream),
    Exchange("respstream", _responses_stream),
    Exchange("resp", _responses_non_stream),
    Exchange("completion", _completion),
    Exchange("oversized", _oversized),
    Exchange("toolcall", _tool_call),
]


def files_containing(root: Path, needles: list[bytes]) -> dict[str, list[str]]:
    """{path: [needles found]} for every file under `root` (binary-safe: sqlite pages and WAL frames included)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a lock file codex removed meanwhile
            continue
        hits = [n.decode() for n in needles if n in data]
        if hits:
            found[str(path)] = hits
    return found


class Run(NamedTuple):
    server: ApiServer
    home: Path
    work: Path
    state: Path
    markers: dict[str, bytes]
    live_hits: dict[str, dict[str, list[str]]]
    auth_before: tuple[str, int]
    state_dbs: list[str]


def _auth_signature(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def run(offline_model: ThreadedOfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("state-on-disk")
    home, work, state = root / "codex-home", root / "codex-work", root / "codex-state"
    home.mkdir(mode=0o700)
    (home / "auth.json").write_bytes(AUTH_JSON)
    os.chmod(home / "auth.json", 0o600)
    auth_before = _auth_signature(home / "auth.json")
    server = ApiServer(
        root,
        offline_env(
            offline_model,
            PROXY_CODEX_STATE_DIR=str(state),
            PROXY_IGNORE_CLIENT_SYSTEM_PROMPT="false",  # system text and instructions go to codex too
        ),
    ).start()
    token = secrets.token_hex(6)
    markers = {e.name: f"ZQ{e.name}{token}".encode() for e in EXCHANGES}
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=120) as client:
            for exchange in EXCHANGES:
                r = exchange.send(client, markers[exchange.name].decode())
                assert r.status_code == 200, (exchange.name, r.status_code)
        needles = list(markers.values())
        live_hits = {str(d): files_containing(d, needles) for d in (home, work, state)}
        state_dbs = sorted(p.name for p in state.rglob("*.sqlite"))
    finally:
        server.stop()
    return Run(server, home, work, state, markers, live_hits, auth_before, state_dbs)


def test_the_prompts_reached_the_model(run: Run, offline_model: ThreadedOfflineModel) -> None:
    """The markers were really sent (else finding none on disk would prove nothing)."""
    sent = msgspec.json.encode(offline_model.requests)
    expected = [*run.markers.values()]
    expected += [run.markers["chat"] + s for s in (b"-sys", b"-u1", b"-a1")]
    expected += [run.markers["respstream"] + s for s in (b"-instr", b"-u1", b"-a1")]
    assert [m for m in expected if m not in sent] == []


def test_codex_databases_live_in_the_workers_state_dir(run: Run) -> None:
    assert "state_5.sqlite" in run.state_dbs and "logs_2.sqlite" in run.state_dbs, run.state_dbs


def test_no_prompt_on_disk_while_the_worker_runs(run: Run) -> None:
    assert run.live_hits == {str(run.home): {}, str(run.work): {}, str(run.state): {}}


def test_no_prompt_on_disk_after_the_worker_stopped(run: Run) -> None:
    needles = list(run.markers.values())
    assert files_containing(run.home, needles) == {}
    assert files_containing(run.work, needles) == {}
    assert not any(run.state.iterdir()), "a worker's private state dir survived its child"


def test_no_prompt_in_the_app_log(run: Run) -> None:
    log = (run.server.workdir / "app.log").read_bytes()
    assert [m for m in run.markers.values() if m in log] == []


def test_codex_home_keeps_only_the_login_config_and_bookkeeping(run: Run) -> None:
    names = {p.name for p in run.home.iterdir()}
    assert not {n for n in names if ".sqlite" in n or n in ("sessions", "archived_sessions", "history.jsonl")}, names


def test_the_login_file_is_untouched(run: Run) -> None:
    assert _auth_signature(run.home / "auth.json") == run.auth_before
    assert (run.home / "auth.json").stat().st_mode & 0o777 == 0o600
