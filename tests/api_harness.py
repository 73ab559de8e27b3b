"""Shared harness for API tests: the offline model in a background thread, the app as a real Granian process.

The app runs exactly as in production (`python -m app`, real `codex app-server` children) and is pointed at an
offline model that lives in the test process, so a test can `script()` replies and read `requests` directly.
For faults the real binary cannot produce, `fault_codex_bin()` makes an executable that launches the fault
double instead of codex.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx

from app.offline_model import OfflineModel
from tests.conftest import REPO, free_port, wait_for

T = TypeVar("T")
API_KEY = "test-key-" + "x" * 24


class ThreadedOfflineModel:
    """An OfflineModel running on its own event loop thread; safe to script and inspect from tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="offline-model", daemon=True)
        self.model = OfflineModel()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the model's loop (state is only touched there)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def start(self) -> ThreadedOfflineModel:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.model.start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        fut: Future[None] = asyncio.run_coroutine_threadsafe(self.model.stop(), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def base_url(self) -> str:
        return self.model.base_url

    def script(self, *replies: Any) -> None:
        self.call(lambda: self.model.script(*replies))

    def clear_script(self) -> int:
        return self.call(self.model.clear_script)

    @property
    def requests(self) -> list[Any]:
        return self.call(lambda: list(self.model.requests))

    @property
    def in_flight(self) -> int:
        return self.call(lambda: self.model.in_flight)

    @property
    def cancelled(self) -> int:
        return self.call(lambda: self.model.cancelled)

    def progress(self) -> tuple[int, str]:
        """(deltas sent so far, outcome) of the latest response: what the model has done at this moment, so
        a test can tell a stream relayed as it is produced from one handed over at the end."""

        def latest() -> tuple[int, str]:
            record = self.model.requests[-1] if self.model.requests else None
            return (len(record.deltas), record.outcome) if record else (0, "none")

        return self.call(latest)


class ApiServer:
    """`python -m app` on a free loopback port; `stop()` sends SIGTERM and waits (the pool stops its children)."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "app.log"
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "PROXY_HOST": "127.0.0.1",
            "PROXY_API_KEY": API_KEY,
            "CODEX_HOME": str(workdir / "codex-home"),
            "PROXY_CODEX_WORKDIR": str(workdir / "codex-work"),
            "PROXY_WORKER_COUNT": "1",
            "PROXY_LOG_LEVEL": "INFO",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 30.0, expect_ready: bool = True) -> ApiServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        path = "/readyz" if expect_ready else "/healthz"

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited with {self.proc.returncode}:\n{self.log()}")
            return httpx.get(self.base_url + path, timeout=2).status_code == 200

        try:
            wait_for(up, timeout=ready_timeout, what=f"app {path} on port {self.port}")
        except BaseException:
            self.stop()  # a start that failed must not leave the app and its codex children running
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}", **extra}

    def health(self) -> dict[str, Any]:
        return httpx.get(self.base_url + "/healthz", timeout=5).json()

    def child_pids(self) -> list[int]:
        return [w["pid"] for w in self.health()["backend"]["workers"] if w["pid"]]


def offline_env(model: ThreadedOfflineModel, **extra: str) -> dict[str, str]:
    return {"PROXY_BACKEND": "offline", "PROXY_OFFLINE_MODEL_URL": model.base_url, **extra}


def placeholder_login(workdir: Path) -> None:
    """An auth.json in the ApiServer's CODEX_HOME: without one, PROXY_BACKEND=codex means `needs_login`."""
    home = workdir / "codex-home"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "auth.json").write_text('{"OPENAI_API_KEY": null}\n')
    (home / "auth.json").chmod(0o600)


def fault_codex_bin(directory: Path, mode: str, **env: str) -> str:
    """An executable standing in for CODEX_BIN that runs the fault double in `mode`."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"fault-codex-{mode}"
    exports = "".join(f"export {k}={v!s}\n" for k, v in env.items())
    script.write_text(
        f"#!/bin/sh\nexport FAULT_MODE={mode}\n{exports}"
        f'exec {sys.executable} {REPO / "tests" / "fakes" / "fault_app_server.py"} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
