"""Assembles the model backend from Settings: Codex home, offline model or login, the worker pool.

The app's lifespan owns one `ModelBackend`: `start()` never raises for an environment problem (wrong
CODEX_BIN, unwritable CODEX_HOME, no login in production…) — the process keeps serving /healthz while
/readyz explains the fix. A login that appears later (the operator ran `make login` / `login.yml`) is
picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, cast

import msgspec

from app.codex import protocol as p
from app.codex.launch import Backend, Policy, WorkerState, build_argv, build_env, has_login, prepare_codex_home
from app.codex.pool import PoolConfig, WorkerPool, WorkerStatus
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
from app.errors import login_required, not_ready
from app.login_state import BackendChoice, LoginState, WatchedTurn, choose_backend, login_file
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
        self._watch_task: asyncio.Task[None] | None = None
        self._retiring: list[Callable[[], Awaitable[None]]] = []
        self.login = LoginState(self.codex_home)

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
        # A forced provider brings its own credentials (config.toml), so it needs no ChatGPT login.
        choice = choose_backend(s.backend, s.env, has_login(self.codex_home) or bool(s.force_provider))
        if choice == "needs_login":
            self.mode = "needs_login"
            self.login.missing()
        else:
            self.pool = await self._start_pool(choice)
            if choice == "codex":
                self.login.present()
        if s.backend != "offline" and not s.force_provider:
            # A login may appear (first login), disappear or be replaced (re-login after a rejection) at any time.
            self._watch_task = asyncio.create_task(self._watch_login(), name="login-watch")

    async def _start_pool(self, choice: BackendChoice) -> WorkerPool:
        s = self.settings
        assert self.workdir is not None
        backend = await self._choose_backend(choice)
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
        pool = WorkerPool(config, preflight=self._preflight, observe=self.quota.observers())
        await pool.start()
        if choice == "codex":
            self._models_task = asyncio.create_task(self._load_account_models(pool), name="account-models")
        return pool

    async def _choose_backend(self, choice: BackendChoice) -> Backend:
        s = self.settings
        if choice == "codex":
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
        if s.backend == "offline":
            logger.warning("PROXY_BACKEND=offline: serving the built-in offline model (replies echo the prompt)")
        else:
            logger.warning(
                "No Codex login in %s: serving the built-in offline model (replies echo the prompt). "
                "To use your ChatGPT account run `make login` (or `CODEX_HOME=%s %s login --device-auth`); "
                "the login is picked up without a restart.",
                self.codex_home,
                self.codex_home,
                s.codex_bin,
            )
        return Backend(mode="offline", offline_base_url=url)

    # ---- the login on disk -----------------------------------------------------------------------------------

    async def _watch_login(self) -> None:
        """Poll auth.json (a stat every PROXY_LOGIN_POLL_MS); owned by the backend, cancelled in stop()."""
        while True:
            await asyncio.sleep(self.settings.login_poll_ms / 1000)
            try:
                await self._check_login()
            except Exception:  # one failed switch must not end the watch for the process's lifetime
                logger.exception("checking the Codex login in %s failed", self.codex_home)

    async def _check_login(self) -> None:
        present = login_file(self.codex_home) is not None
        if self.mode in ("needs_login", "offline") and present:
            logger.info("a Codex login appeared in %s: starting workers that use it", self.codex_home)
            await self._replace_pool("codex")
        elif self.mode == "codex" and not present:
            self.login.missing()
        elif self.mode == "codex" and (self.login.status == "missing" or self.login.login_replaced()):
            logger.info("the Codex login in %s changed: restarting the workers with it", self.codex_home)
            await self._replace_pool("codex")

    async def _replace_pool(self, choice: Literal["codex"]) -> None:
        """Start the new pool, let it get ready (bounded), switch to it, then drain and stop the old one."""
        old_pool, old_offline = self.pool, self.offline
        await self._cancel_models_task()
        pool = await self._start_pool(choice)
        try:
            await pool.wait_ready(self.settings.worker_startup_timeout_ms / 1000)
        except BaseException:  # stop() cancelled the watch mid-switch: the new pool is not ours to keep
            await asyncio.shield(pool.stop())
            raise
        self.pool, self.offline = pool, None
        self.login.present()  # only now: readiness must not come back on the old pool's workers
        # Until they are stopped, the old pool and offline model are stop()'s to clean up if it runs now.
        retiring = [x.stop for x in (old_pool, old_offline) if x is not None]
        self._retiring += retiring
        if old_pool is not None:
            await old_pool.wait_idle(self.settings.request_timeout_ms / 1000)
        for stop in retiring:
            with contextlib.suppress(Exception):
                await stop()
            self._retiring.remove(stop)

    # ---- what the generation routes and the health endpoints ask ------------------------------------------

    def serving_pool(self) -> WorkerPool:
        """The pool a generation request may use, or the 503 that says why there is none.

        No login → 503 codex_login_required (never the offline model in its place). A login the provider
        rejected still gets its turns: codex answers them (a 401 becomes codex_login_required too) until one
        succeeds, which is what brings readiness back.
        """
        if self.login.status == "missing":
            raise login_required()
        if self.pool is None:
            raise not_ready(self.not_ready_reason())
        return self.pool

    def _watched(self, session: TurnSession) -> TurnSession:
        """Let the login state see the turn's outcome (auth failures, successes) when a login is in use."""
        if self.mode != "codex" or self.settings.force_provider:
            return session
        return cast(TurnSession, WatchedTurn(session, self.login))

    def _preflight(self) -> str | None:
        """Checked before every spawn so /readyz names the fix instead of a raw errno."""
        path = Path(self.settings.codex_bin)
        if not path.exists():
            return f"CODEX_BIN {path} does not exist: run `make run` (installs the pinned Codex CLI) or set CODEX_BIN"
        if not os.access(path, os.X_OK):
            return f"CODEX_BIN {path} is not executable: chmod +x it or set CODEX_BIN"
        return None

    async def _load_account_models(self, pool: WorkerPool) -> None:
        """Once a worker is ready, learn the account's models (owned by the backend, cancelled on stop)."""
        if await pool.wait_ready(self.settings.worker_startup_timeout_ms / 1000 * 2):
            await self.refresh_account_models()
            with contextlib.suppress(Exception):  # the plan's windows before the first turn (ChatGPT login only)
                async with pool.lease() as lease:
                    await self.quota.refresh(lease.client, lease.request_timeout)

    async def _cancel_models_task(self) -> None:
        if self._models_task is not None:
            self._models_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._models_task
            self._models_task = None

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
        pool = self.serving_pool()  # 503 codex_login_required / worker_not_ready when it cannot serve
        s = self.settings
        session = TurnSession(
            pool,
            msgspec.structs.replace(req, sandbox=s.sandbox_mode, approval_policy=s.approval_policy),
            overload_retries=s.worker_overload_retries,
            usage_grace=s.usage_grace_ms / 1000,
            in_flight=self.in_flight,
        )
        return await self.turns.open(self._watched(session))

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
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self._cancel_models_task()
        for stop in self._retiring:
            with contextlib.suppress(Exception):
                await stop()
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
        return self.pool is not None and self.login.usable and self.pool.ready_count > 0

    def not_ready_reason(self) -> str:
        if self.problem:
            return self.problem
        if not self.login.usable:
            return self.login.reason()
        if self.pool is None:
            return "backend starting"
        return self.pool.not_ready_reason()

    def not_ready_code(self) -> str | None:
        """A stable word for monitoring: None when ready, else misconfigured / needs_login / worker_not_ready."""
        if self.ready:
            return None
        if self.problem:
            return "misconfigured"
        if not self.login.usable:
            return "needs_login"
        return "worker_not_ready"

    def health(self) -> BackendHealth:
        pool = self.pool
        return BackendHealth(
            backend_mode=self.mode,
            login=self.login.status,
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
    # not_used (offline model), missing, present, rejected (the provider refused it; see reason)
    login: str
    ready: bool
    reason: str | None
    codex_home: str
    in_flight_turns: int
    restarts_total: int
    workers: list[WorkerStatus]
    uptime_s: int
