"""How a `codex app-server` child is launched: argv, environment, Codex home preparation.

Built-in tools are switched off on the command line as well as in the repo's config template, so a home
whose config.toml was edited by hand still gives the model only the client's tools (app-server-protocol §12).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import msgspec

from app.offline_model.server import API_KEY_ENV as OFFLINE_API_KEY_ENV
from app.offline_model.server import provider_args

logger = logging.getLogger(__name__)

DISABLED_FEATURES = (
    "shell_tool",
    "unified_exec",
    "goals",
    "view_image",
    "image_generation",
    "sleep_tool",
    "tool_suggest",
    "skill_search",
    "apps",
    "plugins",
    "browser_use",
    "computer_use",
)
TEMPLATE_FILES = ("config.toml", "AGENTS.md")
# Secrets of the proxy itself never reach the children.
SCRUBBED_ENV = ("PROXY_API_KEY", "PROXY_METRICS_TOKEN", "PROXY_API_KEYS_FILE")


class WorkerState:
    """Per-worker private directories for everything codex persists about requests (issue 13).

    Measured with the pinned 0.169.0 binary: even with `ephemeral: true` threads and `thread/delete`, codex kept
    each thread's preview (the user's first message) in `state_5.sqlite` + WAL and whole conversations in
    `thread_history_1.sqlite` + WAL, all in CODEX_HOME, forever. Three settings stop that, each verified by
    tests/codex/test_state_on_disk.py:

    - `experimental_thread_store = {type = "in_memory"}`: threads (history, rollouts) live in the process only,
      so no `thread_history_*.sqlite` and no `sessions/` rollout is written;
    - `sqlite_home`: the state, goals, memories and queue databases go to this worker's private directory;
    - `log_dir`: so does the log database (`logs_2.sqlite`).

    The directory is wiped and recreated before every start of the worker and removed when it exits, so nothing
    of a request outlives the child that served it. CODEX_HOME keeps only the login (`auth.json`), the
    repo-managed `config.toml`/`AGENTS.md` and codex's install bookkeeping (`installation_id`, bundled skills).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, index: int, generation: int) -> Path:
        """One directory per life: a recycled child still finishing its turns keeps its own while the next runs."""
        return self.root / f"worker-{index}.{generation}"

    def prepare(self, index: int, generation: int) -> list[str]:
        """Fresh, empty 0700 directory for that life of worker `index`; returns the codex arguments into it."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory = self.path(index, generation)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)
        return state_args(directory, index)

    def discard(self, index: int, generation: int) -> None:
        """That life's child has exited: delete what it stored."""
        shutil.rmtree(self.path(index, generation), ignore_errors=True)


def state_args(directory: Path, index: int) -> list[str]:
    """`-c` overrides that keep codex's per-request state in `directory` (paths as TOML basic strings)."""
    where = json.dumps(str(directory))
    return [
        *("-c", f'experimental_thread_store={{type="in_memory",id="worker-{index}"}}'),
        *("-c", f"sqlite_home={where}"),
        *("-c", f"log_dir={where}"),
    ]


class Backend(msgspec.Struct, frozen=True):
    """Which model the children talk to: the operator's login, or the built-in offline model."""

    mode: str  # "codex" | "offline"
    offline_base_url: str | None = None


def has_login(codex_home: Path) -> bool:
    return (codex_home / "auth.json").is_file()


def prepare_codex_home(codex_home: Path) -> None:
    """Create the home (0700) and install the repo templates when missing; never touch auth.json."""
    codex_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.access(codex_home, os.W_OK | os.X_OK):
        raise PermissionError(f"CODEX_HOME {codex_home} is not writable by uid {os.getuid()}")
    template_dir = resources.files("app.codex_home")
    for name in TEMPLATE_FILES:
        target = codex_home / name
        if not target.exists():
            with resources.as_file(template_dir / name) as src:
                shutil.copyfile(src, target)
            target.chmod(0o600)


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """What the operator configured for every thread (PROXY_SANDBOX_MODE, PROXY_APPROVAL_POLICY,
    CODEX_FORCE_PROVIDER); the values are validated by app.settings before they get here."""

    sandbox_mode: str = "read-only"
    approval_policy: str = "never"
    force_provider: str | None = None


def build_argv(codex_bin: str, backend: Backend, policy: Policy | None = None) -> list[str]:
    policy = policy or Policy()
    argv = [codex_bin, "app-server"]
    for feature in DISABLED_FEATURES:
        argv += ["--disable", feature]
    # `--disable multi_agent` is deprecated (logged as an ERROR); `agents.enabled=false` removes the subagent tools.
    argv += ["-c", 'web_search="disabled"', "-c", "agents.enabled=false"]
    argv += ["-c", f'sandbox_mode="{policy.sandbox_mode}"', "-c", f'approval_policy="{policy.approval_policy}"']
    if backend.mode == "offline" and backend.offline_base_url:
        argv += provider_args(backend.offline_base_url)
    elif policy.force_provider:
        argv += ["-c", f'model_provider="{policy.force_provider}"']
    return argv


def build_env(base: Mapping[str, str], codex_home: Path, backend: Backend) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in SCRUBBED_ENV}
    env["CODEX_HOME"] = str(codex_home)
    env.setdefault("RUST_LOG", "warn")
    if backend.mode == "offline":
        env[OFFLINE_API_KEY_ENV] = "offline"
    return env
