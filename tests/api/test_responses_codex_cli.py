"""Issue 5 acceptance: the pinned Codex CLI as a *client* of the proxy's `/v1/responses`.

client `codex exec` → proxy (real app) → `codex app-server` → offline model. Codex is a demanding Responses client:
it declares its own built-in tools (function, namespace and web_search), `tool_choice:"auto"`,
`parallel_tool_calls`, `reasoning`, `include`, `store:false`, `prompt_cache_key`, `client_metadata`, and sends
`developer` messages with `input_text` parts plus an environment-context user message. Its function and namespace
tools are offered to the model behind the proxy (web_search is left out), and when the model calls one, codex
runs it in its own sandbox and sends the result back: a full agent loop through the proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from app.offline_model import Reasoning
from app.settings import default_codex_bin
from tests.api.responses_support import MODEL

pytestmark = [pytest.mark.codex, pytest.mark.slow]


KEY_ENV = "CODEX_PROXY_TEST_KEY"


def client_home(tmp_path: Path, base_url: str) -> Path:
    """A throwaway CODEX_HOME whose only provider is the proxy under test."""
    home = tmp_path / "client-codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "proxy"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "read-only"\n'
        "project_doc_max_bytes = 0\n"
        "\n"
        "[model_providers.proxy]\n"
        'name = "codex-openai-api under test"\n'
        f'base_url = "{base_url}/v1"\n'
        'wire_api = "responses"\n'
        f'env_key = "{KEY_ENV}"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    return home


def run_codex_exec(api, tmp_path: Path, prompt: str, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "client-codex-home"
    if not home.exists():
        client_home(tmp_path, api.base_url)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CODEX_HOME": str(home),
        KEY_ENV: api.headers()["Authorization"].removeprefix("Bearer "),
    }
    return subprocess.run(
        [default_codex_bin(), "exec", *args, "--skip-git-repo-check", "--json", prompt],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )


def agent_messages(api, proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The agent messages of a successful `codex exec --json` run (its JSONL event stream on stdout)."""
    assert proc.returncode == 0, proc.stderr[-3000:] + api.log()
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert any(e.get("type") == "turn.completed" for e in events), proc.stdout
    return [
        e["item"]["text"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]


def test_codex_exec_through_the_proxy_prints_the_offline_models_answer(api, offline_model, tmp_path):
    before = len(offline_model.requests)
    proc = run_codex_exec(api, tmp_path, "hello from codex as a client")
    assert agent_messages(api, proc) == ["echo: hello from codex as a client"]
    # Exactly one model call behind the proxy, which was offered Codex CLI's own tools (not web_search).
    behind = offline_model.requests[before:]
    assert len(behind) == 1
    # exec_command is a name codex reserves at the top level: the proxy offers it in its own namespace
    assert {"client_tools.exec_command", "write_stdin"} <= set(behind[0].functions)
    assert "web_search" not in behind[0].tools


def test_codex_exec_resume_sends_history_with_reasoning_back_and_still_gets_an_answer(api, offline_model, tmp_path):
    """Turn 2 of a session: codex resends turn 1 (its reasoning item, our message) as `input`; the proxy accepts it."""
    offline_model.script(Reasoning("pondering the greeting"))
    first = run_codex_exec(api, tmp_path, "first turn")
    assert agent_messages(api, first) == ["echo: first turn"]
    before = len(offline_model.requests)
    second = run_codex_exec(api, tmp_path, "second turn", "resume", "--last")
    assert agent_messages(api, second) == ["echo: second turn"]
    behind = offline_model.requests[before:]
    assert len(behind) == 1
    history = [(i.role, i.text) for i in behind[0].input if i.type == "message"]
    assert any(role == "assistant" and "echo: first turn" in text for role, text in history), history


def test_codex_exec_runs_its_shell_tool_when_the_model_behind_the_proxy_calls_it(api, offline_model, tmp_path):
    """The offline model calls the CLI's `exec_command`; the CLI runs it in its sandbox and sends the output back;
    the model's final answer (through the proxy again) contains the command's output."""
    before = len(offline_model.requests)
    marker = "sandbox-says-" + "42"
    proc = run_codex_exec(api, tmp_path, f'call exec_command {{"cmd": "echo {marker}"}}')
    messages = agent_messages(api, proc)
    assert messages and marker in messages[-1] and messages[-1].startswith("exec_command returned:")
    behind = offline_model.requests[before:]
    assert [r.rule for r in behind] == ["calls", "tool_outputs"]
    output = next(i for i in behind[1].input if i.type == "function_call_output")
    assert marker in (output.output or "")
