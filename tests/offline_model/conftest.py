"""Fixtures for the offline-model tests: the model itself, a Codex home, and a bare JSON-lines app-server driver.

The driver is deliberately minimal (no app/codex code): these tests pin the contract between the real codex
binary and the offline model, independently of the proxy's own client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.offline_model import OfflineModel

REPO = Path(__file__).resolve().parents[2]
CODEX_BIN = REPO / "codex-cli/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
CONFIG_TEMPLATE = REPO / "app/codex_home/config.toml"
# stderr lines the pinned binary prints in this environment (app-server-protocol.md §1) and the per-turn
# "Unknown model offline ... fallback model metadata" WARN (a `model_catalog_json` would silence it but replaces the
# whole bundled catalog and then warns about codex's own auxiliary model instead; docs/offline-model.md).
# Anything else at ERROR/WARN level fails the codex tests.
KNOWN_STDERR = (
    "could not find bubblewrap",
    "could not create PATH aliases",
    "Unknown model offline is used",
    "`[features].multi_agent` is deprecated",
    # turn/interrupt while the model hangs: codex aborts the turn task after a 100 ms grace; under load it says so
    "didn't complete gracefully after",
)


@pytest.fixture
async def model() -> AsyncIterator[OfflineModel]:
    async with OfflineModel() as m:
        yield m


@dataclass
class AppServer:
    """A running `codex app-server` spoken to in raw JSON lines; notifications land in `events` in order."""

    proc: asyncio.subprocess.Process
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)
    next_id: int = 100

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10) -> dict[str, Any]:
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.send({"id": self.next_id, "method": method, "params": params or {}})
        with anyio.fail_after(timeout):
            reply = await fut
        assert "error" not in reply, reply
        return reply["result"]

    async def next_event(self, timeout: float = 10) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await self.events.get()

    async def read_turn(self, thread_id: str, timeout: float = 15) -> list[dict[str, Any]]:
        """Collect this thread's events until `turn/completed` (server requests included, unanswered)."""
        seen: list[dict[str, Any]] = []
        with anyio.fail_after(timeout):
            while True:
                event = await self.events.get()
                if event.get("params", {}).get("threadId") not in (thread_id, None):
                    continue
                seen.append(event)
                if event.get("method") == "turn/completed":
                    return seen

    async def start_thread(self, **params: Any) -> str:
        result = await self.request("thread/start", {"ephemeral": True, **params})
        return result["thread"]["id"]

    async def turn(self, text: str, **thread_params: Any) -> tuple[str, list[dict[str, Any]]]:
        thread_id = await self.start_thread(**thread_params)
        await self.request("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})
        return thread_id, await self.read_turn(thread_id)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "id" in message and "method" not in message:
                fut = self.pending.pop(message["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(message)
            else:
                self.events.put_nowait(message)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    def unexpected_stderr(self) -> list[str]:
        return [
            line
            for line in self.stderr
            if ("ERROR" in line or "WARN" in line) and not any(k in line for k in KNOWN_STDERR)
        ]


def codex_home(path: Path) -> Path:
    """A throwaway CODEX_HOME holding the repo's config template, as the proxy would install it."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG_TEMPLATE, path / "config.toml")
    return path


@contextlib.asynccontextmanager
async def app_server(model: OfflineModel, home: Path, *extra_args: str) -> AsyncIterator[AppServer]:
    """Spawn the real app-server pointed at `model`, handshake, and stop it (stdin close → wait → kill) after."""
    assert CODEX_BIN.exists(), f"pinned codex binary missing at {CODEX_BIN}: run `make codex`"
    env = {**os.environ, "CODEX_HOME": str(home), "RUST_LOG": "warn", **model.provider_env()}
    proc = await asyncio.create_subprocess_exec(
        str(CODEX_BIN),
        "app-server",
        *model.provider_config(),
        *extra_args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=home,
        limit=8 * 1024 * 1024,
    )
    server = AppServer(proc)
    readers = [asyncio.create_task(server._read_stdout()), asyncio.create_task(server._read_stderr())]
    try:
        await server.request(
            "initialize",
            {"clientInfo": {"name": "offline-model-tests", "version": "0"}, "capabilities": {"experimentalApi": True}},
        )
        await server.send({"method": "initialized"})
        yield server
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            with anyio.move_on_after(5, shield=True):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        with anyio.move_on_after(2, shield=True):
            await asyncio.gather(*readers, return_exceptions=True)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


# One offline model and one app-server per test module (the codex tests of this folder share them).


@pytest.fixture(scope="module")
async def shared_model() -> AsyncIterator[OfflineModel]:
    async with OfflineModel() as m:
        yield m


@pytest.fixture(scope="module")
async def codex(shared_model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AppServer]:
    async with app_server(shared_model, codex_home(tmp_path_factory.mktemp("codex-home"))) as server:
        yield server
