"""Assembles the model backend from Settings: Codex home, offline model or login, the worker pool.

The app's lifespan owns one `ModelBackend`: `start()` never raises for an environment problem (wrong
CODEX_BIN, unwritable CODEX_HOME…) — the process keeps serving /healthz while /readyz explains the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from app.codex import protocol as p
from app.codex.launch import Backend, Policy, WorkerState, build_argv, build_env, has_login, prepare_codex_home
from app.codex.pool import PoolConfig, PoolNotReady, WorkerPool, WorkerStatus
from app.codex.turn import (
    InFlight,
    OpenTurn,
    TurnFailed,
    TurnFinished,
    TurnRequest,
    TurnSession,
    TurnSource,
    TurnTasks,
    Usage,
)
from app.offline_model import OfflineModel
from app.quota import PlanQuota
from app.settings import Settings

logger = logging.getLogger(__name__)


class ModelBackend:
    """`turns`, when given, replaces codex altogether (the in-process test seam: scripted turn events)."""

    def __init__(self, settings: Settings, turns: TurnSource | None = None) -> None:
        self.settings = settings
        self.scripted = turns
        self.turns = TurnTasks()
        self.mode = "starting"
        self.problem: str | None = None
        self.pool: WorkerPool | None = None
        self.offline: OfflineModel | None = None
        self.in_flight = InFlight()
        self.account_models: list[str] = []
        self.codex_home = settings.codex_home_path
        self.workdir: Path | None = None
        self.state: WorkerState | None = None
        self._models_task: asyncio.Task[None] | None = None
        self.quota = PlanQuota()  # the plan's windows, fed by every worker's account/rateLimits notifications
        self._finishing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        s = self.settings
        if self.scripted is not None:
            self.mode = "scripted"
            return
        try:
            prepare_codex_home(self.codex_home)
            self.workdir = s.workdir()
            self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(self.workdir, os.W_OK | os.X_OK):
                raise PermissionError(f"PROXY_CODEX_WORKDIR {self.workdir} is not writable")
            self.state = WorkerState(s.state_dir())
            self.state.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            self.problem = f"{exc} — fix the directory's owner/mode or point the variable elsewhere"
            logger.error("backend not started: %s", self.problem)
            self.mode = "misconfigured"
            return
        backend = await self._choose_backend()
        policy = Policy(sandbox_mode=s.sandbox_mode, approval_policy=s.approval_policy, force_provider=s.force_provider)
        argv = build_argv(s.codex_bin, backend, policy)
        env = build_env(os.environ, self.codex_home, backend)
        config = PoolConfig(
            argv=argv,
            env=env,
            cwd=str(self.workdir),
            count=s.worker_count,
            max_concurrency=s.worker_max_concurrency,
            queue_timeout=s.worker_queue_timeout_ms / 1000,
            startup_timeout=s.worker_startup_timeout_ms / 1000,
            request_timeout=s.worker_request_timeout_ms / 1000,
            backoff_initial=s.worker_backoff_initial_ms / 1000,
            backoff_max=s.worker_backoff_max_ms / 1000,
            healthy_reset=s.worker_healthy_reset_ms / 1000,
            crash_loop_failures=s.worker_crash_loop_failures,
            shutdown_grace=s.worker_shutdown_grace_ms / 1000,
            max_turns=s.worker_max_turns,
            life=self.state,
            max_rss=s.worker_max_rss_mb * 2**20,
            handshake_timeout=s.worker_handshake_timeout_ms / 1000,
            restart_max=s.worker_restart_max,
        )
        self.pool = WorkerPool(config, preflight=self._preflight, observe=self.quota.observers())
        await self.pool.start()
        if self.mode == "codex":
            self._models_task = asyncio.create_task(self._load_account_models(), name="account-models")

    async def _choose_backend(self) -> Backend:
        s = self.settings
        # A forced provider brings its own credentials (config.toml), so it needs no ChatGPT login.
        no_login = not has_login(self.codex_home) and not s.force_provider
        use_offline = s.backend == "offline" or (s.backend == "auto" and no_login)
        if not use_offline:
            self.mode = "codex"
            if s.force_provider:
                logger.info("model backend: provider %s (CODEX_FORCE_PROVIDER)", s.force_provider)
            else:
                logger.info("model backend: the Codex login in %s", self.codex_home)
            return Backend(mode="codex")
        self.mode = "offline"
        url = s.offline_model_url
        if url is None:
            # Serving `make run` for hours: keep only the last requests it recorded (tests use their own instance).
            self.offline = OfflineModel(max_recorded=100, max_raw_bytes=4096)
            await self.offline.start()
            url = self.offline.base_url
        logger.warning(
            "No Codex login in %s: serving the built-in offline model (replies echo the prompt). "
            "To use your ChatGPT account run `CODEX_HOME=%s %s login` and restart.",
            self.codex_home,
            self.codex_home,
            s.codex_bin,
        )
        return Backend(mode="offline", offline_base_url=url)

    def _preflight(self) -> str | None:
        """Checked before every spawn so /readyz names the fix instead of a raw errno."""
        path = Path(self.settings.codex_bin)
        if not path.exists():
            return f"CODEX_BIN {path} does not exist: run `make run` (installs the pinned Codex CLI) or set CODEX_BIN"
        if not os.access(path, os.X_OK):
            return f"CODEX_BIN {path} is not executable: chmod +x it or set CODEX_BIN"
        return None

    async def _load_account_models(self) -> None:
        """Once a worker is ready, learn the account's models (owned by the backend, cancelled on stop)."""
        assert self.pool is not None
        if await self.pool.wait_ready(self.settings.worker_startup_timeout_ms / 1000 * 2):
            await self.refresh_account_models()
            with contextlib.suppress(Exception):  # the plan's windows before the first turn (ChatGPT login only)
                async with self.pool.lease() as lease:
                    await self.quota.refresh(lease.client, lease.request_timeout)

    async def refresh_account_models(self) -> None:
        """With a real login, add the models the account reports (model/list) to the accepted ids."""
        if self.mode != "codex" or self.pool is None:
            return
        try:
            models: list[str] = []
            cursor: str | None = None
            async with self.pool.lease() as lease:
                for _ in range(20):  # model/list pages until nextCursor is null
                    result = await lease.client.request(
                        "model/list",
                        p.ModelListParams(cursor=cursor),
                        timeout=lease.request_timeout,
                        result_type=p.ModelListResult,
                    )
                    models += [m.id for m in result.data if not m.hidden]
                    cursor = result.next_cursor
                    if cursor is None:
                        break
            self.account_models = models
            logger.info("account models: %s", ", ".join(models) or "none")
        except Exception as exc:  # the list is a nicety; never block serving on it
            logger.info("model/list failed: %s", exc)

    async def open_turn(self, req: TurnRequest) -> OpenTurn:
        """One request's turn, opened by its owner task (raises PoolBusy / PoolNotReady / TurnFailed)."""
        if self.scripted is not None:
            return await self.scripted.open(req)
        if self.pool is None:
            raise PoolNotReady(self.not_ready_reason())
        s = self.settings
        session = TurnSession(
            self.pool,
            msgspec.structs.replace(req, sandbox=s.sandbox_mode, approval_policy=s.approval_policy),
            overload_retries=s.worker_overload_retries,
            usage_grace=s.usage_grace_ms / 1000,
            in_flight=self.in_flight,
        )
        return await self.turns.open(session)

    def let_finish(self, turn: OpenTurn, done: Callable[[str, Usage | None], None], deadline: float) -> None:
        """PROXY_KILL_ON_DISCONNECT=false: nobody reads this turn any more, but it runs on to its own end (at most
        until `deadline`, monotonic) instead of being interrupted; then `done("cancelled", usage)` and release."""
        task = asyncio.get_running_loop().create_task(self._finish(turn, done, deadline), name="turn-finish")
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, turn: OpenTurn, done: Callable[[str, Usage | None], None], deadline: float) -> None:
        usage: Usage | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while (event := await turn.next_event()) is not None:
                    if isinstance(event, TurnFinished):
                        usage = event.usage
        except (TimeoutError, TurnFailed):
            pass  # past the request deadline, or the worker was lost: record what is known
        finally:
            done("cancelled", usage)
            turn.release()

    async def stop(self) -> None:
        for task in list(self._finishing):
            task.cancel()
        if self._finishing:
            await asyncio.wait(self._finishing, timeout=self.settings.worker_shutdown_grace_ms / 1000 + 2)
        await self.turns.aclose(timeout=self.settings.worker_shutdown_grace_ms / 1000 + 2)
        if self._models_task is not None:
            self._models_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._models_task
        if self.pool is not None:
            await self.pool.stop()
        if self.state is not None and self.settings.codex_state_dir is None:
            with contextlib.suppress(OSError):
                self.state.root.rmdir()  # our own temp dir, empty by now: every worker's dir went with its child
        if self.offline is not None:
            with contextlib.suppress(Exception):
                await self.offline.stop()

    # ---- health ---------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        if self.scripted is not None:
            return True
        return self.pool is not None and self.pool.ready_count > 0

    def not_ready_reason(self) -> str:
        if self.problem:
            return self.problem
        if self.pool is None:
            return "backend starting"
        return self.pool.not_ready_reason()

    def health(self) -> BackendHealth:
        pool = self.pool
        return BackendHealth(
            backend_mode=self.mode,
            ready=self.ready,
            reason=None if self.ready else self.not_ready_reason(),
            codex_home=str(self.codex_home),
            in_flight_turns=self.in_flight.value,
            restarts_total=sum(w.restarts for w in pool.workers) if pool else 0,
            workers=pool.statuses() if pool else [],
            uptime_s=int(time.time() - pool.started_at) if pool else 0,
        )


class BackendHealth(msgspec.Struct):
    backend_mode: str
    ready: bool
    reason: str | None
    codex_home: str
    in_flight_turns: int
    restarts_total: int
    workers: list[WorkerStatus]
    uptime_s: int
