"""Supervisor of N `codex app-server` workers: spawn, handshake, health, restart with backoff, dispatch.

Each worker has one supervising task that loops spawn → handshake → serve → exit → backoff. A worker is
ready only after `initialize` was answered and `initialized` sent. Requests lease the least-loaded ready
worker; a full pool waits up to the queue timeout and then fails with `PoolBusy`. Restarts back off
exponentially with jitter; the delay resets after a healthy period; too many quick failures in a row mark the
worker as crash-looping (not ready, with the reason shown on /readyz) while it keeps retrying at the capped
delay — a budget per time window, never a lifetime cap. Only an operator's `WORKER_RESTART_MAX` makes a worker give
up, after that many consecutive failures (a healthy period resets the count); /readyz then names it.

A planned recycle (`WORKER_MAX_TURNS`) is a hand-over, not a drain: the slot starts a fresh child at once while the
old one finishes the turns it already has, then stops. A slot never loses its capacity for as long as its longest
turn lasts (an agent's turn can take minutes; found by bench/streams.py, where every slot of a pool holding
thousands of streams went to draining and new requests got 429 until the old streams ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from app.codex import protocol as p
from app.codex.client import RpcClient, RpcFailure, RpcTimeout, WorkerLost
from app.codex.transport import ChildTransport

logger = logging.getLogger(__name__)

CLIENT_NAME = "codex_openai_api"
CLIENT_VERSION = "0.1.0"


def backoff_delays(
    initial: float, maximum: float, factor: float = 2.0, jitter: float = 0.25, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Pure generator of restart delays: jittered start, times factor, capped. A new generator means a reset."""
    delay = initial
    while True:
        yield min(maximum, delay) * (1 - jitter + 2 * jitter * rng())
        delay = min(maximum, delay * factor)


MEMORY_CHECK_INTERVAL = 0.25  # seconds between reads of a child's /proc/<pid>/statm
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes(pid: int) -> int | None:
    """Resident set size of `pid` from procfs (a memory-backed read that never blocks), None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


# States from which a worker is not expected back soon: only then does a request fail without waiting.
DOWN = ("crash_loop", "misconfigured", "stopped", "gave_up")


class PoolBusy(Exception):
    """Every ready worker is at its concurrency cap and none freed up within the queue timeout."""


class PoolNotReady(Exception):
    """No worker is ready (starting, backing off, crash-looping or misconfigured); the message says why."""


class WorkerExit(msgspec.Struct):
    at: float
    code: int | None
    reason: str


class WorkerStatus(msgspec.Struct):
    index: int
    state: str
    ready: bool
    reason: str
    pid: int | None
    in_flight: int
    restarts: int
    recycles: int
    turns_served: int
    consecutive_failures: int
    next_restart_delay_ms: int
    last_ready_at: float | None
    startup_latency_ms: int | None
    last_exit: WorkerExit | None
    stderr_tail: list[str]
    retiring: int = 0  # recycled children of this slot still finishing their turns


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.state = "starting"
        self.reason = "worker_starting"
        self.client: RpcClient | None = None
        self.transport: ChildTransport | None = None
        self.restarts = 0
        self.consecutive_failures = 0
        self.next_delay = 0.0
        self.last_ready_at: float | None = None
        self.startup_latency_ms: int | None = None
        self.last_exit: WorkerExit | None = None
        self.hung = asyncio.Event()
        self.hung_reason = ""
        self.recycle = asyncio.Event()
        self.recycles = 0
        self.turns_served = 0  # in this child's life
        self.generation = 0  # which life of this slot; a lease remembers the one it was taken from
        self.leases: dict[int, int] = {}  # generation -> leases held (a dead life's count until they are released)
        self.retiring: dict[int, Retiring] = {}  # recycled lives still finishing their turns

    draining = False  # set per life: takes no new turns; handed over to a fresh child at once

    @property
    def in_flight(self) -> int:
        """Leases held on this slot, on every life (what /healthz shows and what a stopping pool waits for)."""
        return sum(self.leases.values())

    @property
    def load(self) -> int:
        """Leases that count against the current child's WORKER_MAX_CONCURRENCY: all but a retiring child's."""
        return sum(n for gen, n in self.leases.items() if gen not in self.retiring)

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.client is not None and not self.client.closed.is_set()

    def status(self) -> WorkerStatus:
        return WorkerStatus(
            index=self.index,
            state=self.state,
            ready=self.ready,
            reason=self.reason,
            pid=self.transport.pid if self.transport and self.transport.returncode is None else None,
            in_flight=self.in_flight,
            restarts=self.restarts,
            recycles=self.recycles,
            turns_served=self.turns_served,
            consecutive_failures=self.consecutive_failures,
            next_restart_delay_ms=int(self.next_delay * 1000),
            last_ready_at=self.last_ready_at,
            startup_latency_ms=self.startup_latency_ms,
            last_exit=self.last_exit,
            stderr_tail=list(self.transport.stderr_tail)[-5:] if self.transport else [],
            retiring=len(self.retiring),
        )


class Retiring(msgspec.Struct, kw_only=True):
    """A recycled life of a slot: its child serves the turns it already has, then stops."""

    client: RpcClient
    transport: ChildTransport
    drained: asyncio.Event = msgspec.field(default_factory=asyncio.Event)


class WorkerLife(Protocol):
    """Per-life resources of a worker (app.codex.launch.WorkerState): made before each spawn, gone after exit."""

    def prepare(self, index: int, generation: int) -> list[str]: ...
    def discard(self, index: int, generation: int) -> None: ...


class PoolConfig(msgspec.Struct, frozen=True, kw_only=True):
    argv: list[str]
    env: dict[str, str]
    cwd: str
    count: int = 2
    max_concurrency: int = 8
    queue_timeout: float = 2.0
    startup_timeout: float = 30.0
    request_timeout: float = 20.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    healthy_reset: float = 30.0
    crash_loop_failures: int = 5
    shutdown_grace: float = 3.0
    max_turns: int = 0  # recycle a worker after this many turns (0 = never)
    life: WorkerLife | None = None  # extra argv per life + a private state dir wiped around it
    max_rss: int = 0  # bytes of resident memory after which a child is killed and replaced (0 = no limit)
    handshake_timeout: float = 0.0  # deadline for the `initialize` answer (0 = startup_timeout)
    restart_max: int = 0  # consecutive failures after which a worker is given up (0 = never)


class Lease:
    """One request's hold on a worker; released exactly once."""

    def __init__(self, pool: WorkerPool, worker: Worker, client: RpcClient) -> None:
        self.pool = pool
        self.worker = worker
        self.client = client
        self.generation = worker.generation
        self._released = False

    @property
    def request_timeout(self) -> float:
        return self.pool.config.request_timeout

    def release(self) -> None:
        if not self._released:
            self._released = True
            w, gen = self.worker, self.generation
            left = w.leases.get(gen, 0) - 1
            if left > 0:
                w.leases[gen] = left
            else:
                w.leases.pop(gen, None)
                if gen in w.retiring:
                    w.retiring[gen].drained.set()
            self.pool._wake()


class WorkerPool:
    def __init__(
        self,
        config: PoolConfig,
        *,
        preflight: Callable[[], str | None] | None = None,
        observe: Mapping[str, Callable[[msgspec.Raw], None]] | None = None,
    ) -> None:
        self.config = config
        self.preflight = preflight
        self.observe = observe  # notification observers handed to every worker's RPC client
        self.workers = [Worker(i) for i in range(config.count)]
        self._tasks: list[asyncio.Task[None]] = []
        self._retirements: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._changed = asyncio.Condition()
        self.started_at = time.time()

    # ---- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(self._supervise(worker), name=f"codex-worker-{worker.index}"))

    async def stop(self) -> None:
        """Stop supervising, then stop every child (stdin close → TERM → KILL); leaves no orphans."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        # Retiring children: end their wait rather than cancel their task, so each stops its child to the end (a
        # cancel could land inside that stop and leave the child's pipes to the garbage collector).
        for worker in self.workers:
            for retiring in worker.retiring.values():
                retiring.drained.set()
        await asyncio.gather(*self._retirements, return_exceptions=True)

    def child_pids(self) -> list[int]:
        """Every live child: each slot's current one and any recycled one still finishing its turns."""
        transports = [w.transport for w in self.workers] + [
            r.transport for w in self.workers for r in w.retiring.values()
        ]
        return [t.pid for t in transports if t is not None and t.returncode is None and t.pid]

    # ---- supervision ---------------------------------------------------------------------------------------

    async def _supervise(self, worker: Worker) -> None:
        delays = backoff_delays(self.config.backoff_initial, self.config.backoff_max)
        while not self._stopping:
            ready_since: float | None = None
            try:
                ready_since = await self._run_once(worker)
            except asyncio.CancelledError:
                worker.state, worker.reason = "stopped", "shutdown"
                await self._teardown(worker)
                raise
            if self._stopping:
                break
            if worker.recycle.is_set():
                worker.recycles += 1
                continue  # a planned restart: no failure, no backoff
            if ready_since is not None and time.monotonic() - ready_since >= self.config.healthy_reset:
                worker.consecutive_failures = 0
                delays = backoff_delays(self.config.backoff_initial, self.config.backoff_max)
            worker.consecutive_failures += 1
            if self.config.restart_max and worker.consecutive_failures >= self.config.restart_max:
                self._give_up(worker)
                await self._notify_change()
                return
            worker.restarts += 1
            worker.next_delay = next(delays)
            if worker.state == "misconfigured":
                pass  # the reason already names the fix; keep retrying in case the operator repairs it
            elif worker.consecutive_failures >= self.config.crash_loop_failures:
                worker.state = "crash_loop"
                worker.reason = (
                    f"crash loop: {worker.consecutive_failures} failures in a row; last: "
                    f"{worker.last_exit.reason if worker.last_exit else 'unknown'}"
                )
            else:
                worker.state = "backoff"
            logger.warning(
                "codex worker %d down (%s); restart %d in %.2fs",
                worker.index,
                worker.last_exit.reason if worker.last_exit else "?",
                worker.restarts,
                worker.next_delay,
            )
            await self._notify_change()
            await asyncio.sleep(worker.next_delay)
            worker.next_delay = 0.0

    def _give_up(self, worker: Worker) -> None:
        """WORKER_RESTART_MAX consecutive failures: stop restarting, and say so where operators look (/readyz)."""
        last = worker.last_exit.reason if worker.last_exit else "unknown"
        worker.state = "gave_up"
        worker.reason = (
            f"gave up after {worker.consecutive_failures} consecutive failures (WORKER_RESTART_MAX="
            f"{self.config.restart_max}); last: {last}; fix it and restart the service"
        )
        logger.error("codex worker %d: %s", worker.index, worker.reason)

    async def _run_once(self, worker: Worker) -> float | None:
        """One life of a worker. Returns when the child is gone; the monotonic time it became ready, if it did."""
        worker.hung = asyncio.Event()
        worker.recycle = asyncio.Event()
        worker.draining = False
        worker.turns_served = 0
        worker.generation += 1
        worker.state, worker.reason = "starting", "worker_launching"
        problem = self.preflight() if self.preflight else None
        if problem:
            worker.last_exit = WorkerExit(at=time.time(), code=None, reason=problem)
            worker.state, worker.reason = "misconfigured", problem
            return None
        argv = list(self.config.argv)
        if self.config.life is not None:
            try:
                argv += self.config.life.prepare(worker.index, worker.generation)
            except OSError as exc:
                reason = f"cannot prepare the worker's private state directory: {exc}"
                worker.last_exit = WorkerExit(at=time.time(), code=None, reason=reason)
                worker.state, worker.reason = "misconfigured", reason
                return None
        transport = ChildTransport(argv, env=self.config.env, cwd=self.config.cwd, name=f"worker-{worker.index}")
        worker.transport = transport
        started = time.monotonic()
        try:
            await transport.start()
        except OSError as exc:
            reason = (
                f"cannot start {self.config.argv[0]}: {exc.strerror or exc} (check CODEX_BIN; `make run` installs it)"
            )
            logger.error("codex worker %d: %s", worker.index, reason)
            worker.last_exit = WorkerExit(at=time.time(), code=None, reason=reason)
            worker.state, worker.reason = "misconfigured", reason
            return None

        life, life_hung = worker.generation, worker.hung

        def on_hung(why: str) -> None:
            """This life's child must go: kill it where it is now (its slot, or retiring next to its successor)."""
            retiring = worker.retiring.get(life)
            if retiring is not None:
                logger.error(
                    "retiring codex worker %d (pid %s) must go (%s): killing it", worker.index, transport.pid, why
                )
                retiring.transport.kill()
            elif worker.generation == life:
                worker.hung_reason = why
                life_hung.set()

        client = RpcClient(transport, on_hung=on_hung, observe=self.observe)
        client.start()
        worker.client = client
        ready_since: float | None = None
        try:
            worker.reason = "handshake_pending"
            await self._handshake(client)
            ready_since = time.monotonic()
            worker.startup_latency_ms = int((ready_since - started) * 1000)
            worker.last_ready_at = time.time()
            worker.state, worker.reason = "ready", "handshake_complete"
            logger.info("codex worker %d ready (pid %s, %d ms)", worker.index, transport.pid, worker.startup_latency_ms)
            await self._notify_change()
            closed = asyncio.create_task(client.closed.wait())
            hung = asyncio.create_task(worker.hung.wait())
            recycle = asyncio.create_task(worker.recycle.wait())
            probe = asyncio.create_task(self._probe(client))
            memory = asyncio.create_task(self._watch_memory(transport, on_hung))
            try:
                await asyncio.wait({closed, hung, recycle}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (closed, hung, recycle, probe, memory):
                    task.cancel()
                await asyncio.gather(closed, hung, recycle, probe, memory, return_exceptions=True)
            if worker.recycle.is_set() and not worker.hung.is_set() and not client.closed.is_set():
                logger.info(
                    "codex worker %d served %d turns: a fresh child takes over, the old one (pid %s) finishes its %d",
                    worker.index,
                    worker.turns_served,
                    transport.pid,
                    worker.leases.get(worker.generation, 0),
                )
                self._hand_over(worker, client, transport)
            if worker.hung.is_set():
                logger.error("codex worker %d must go (%s): killing it", worker.index, worker.hung_reason)
                transport.kill()
        except Exception as exc:
            if isinstance(exc, RpcTimeout):
                worker.hung_reason = f"handshake timed out: {exc} ({self._handshake_bound()})"
            logger.error("codex worker %d handshake failed: %s", worker.index, exc)
            worker.reason = f"handshake_failed: {exc}"
        finally:
            worker.state = "restarting" if not self._stopping else "stopped"
            await self._teardown(worker)
        if worker.recycle.is_set():
            reason = f"recycled after {worker.turns_served} turns"
        elif worker.hung.is_set():
            reason = worker.hung_reason
        else:
            reason = client.close_reason or transport.describe_exit()
        worker.last_exit = WorkerExit(at=time.time(), code=transport.returncode, reason=reason)
        if not self._stopping:
            worker.reason = "worker_exit"
        return ready_since

    async def _probe(self, client: RpcClient) -> None:
        """Liveness: when a worker has been silent for a while, ask it something cheap. No answer within the
        request deadline flags it hung (via the client's on_hung) and the supervisor replaces it — so a worker
        that hangs mid-turn is found even when no new request arrives to notice."""
        interval = max(0.5, self.config.request_timeout / 2)
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - client.last_seen < interval:
                continue
            with contextlib.suppress(RpcFailure, WorkerLost, RpcTimeout):
                await client.request(
                    "thread/loaded/list", p.ThreadLoadedListParams(), timeout=self.config.request_timeout
                )

    async def _watch_memory(self, transport: ChildTransport, kill: Callable[[str], None]) -> None:
        """Kill a child whose resident memory passes `max_rss` (issue 13): a runaway codex becomes an ordinary
        worker failure — its callers get a clean error, the supervisor starts a fresh one — long before the
        unit's MemoryMax= would have the kernel pick a victim, and also where no memory cgroup is enforced."""
        if not self.config.max_rss or transport.pid is None:
            return
        while True:
            await asyncio.sleep(MEMORY_CHECK_INTERVAL)
            rss = resident_bytes(transport.pid)
            if rss is None:
                return  # the child is gone; the supervisor sees that on its own
            if rss > self.config.max_rss:
                kill(f"resident memory {rss // 2**20} MB over WORKER_MAX_RSS_MB={self.config.max_rss // 2**20}")
                return

    async def _handshake(self, client: RpcClient) -> None:
        params = p.InitializeParams(
            client_info=p.ClientInfo(name=CLIENT_NAME, version=CLIENT_VERSION, title="Codex OpenAI-compatible API"),
            capabilities=p.InitializeCapabilities(
                experimental_api=True, opt_out_notification_methods=list(p.NOISY_NOTIFICATIONS)
            ),
        )
        await client.request("initialize", params, timeout=self._handshake_timeout())
        await client.notify("initialized")

    def _handshake_timeout(self) -> float:
        c = self.config
        return min(c.handshake_timeout, c.startup_timeout) if c.handshake_timeout else c.startup_timeout

    def _handshake_bound(self) -> str:
        c = self.config
        short = c.handshake_timeout and c.handshake_timeout < c.startup_timeout
        return "WORKER_HANDSHAKE_TIMEOUT_MS" if short else "WORKER_STARTUP_TIMEOUT_MS"

    async def _teardown(self, worker: Worker) -> None:
        client, transport = worker.client, worker.transport
        worker.client = None
        if transport is None:
            return  # handed over to a retirement (or never started): nothing of this slot's to stop here
        await self._stop_child(worker.index, worker.generation, client, transport)

    async def _stop_child(
        self, index: int, generation: int, client: RpcClient | None, transport: ChildTransport
    ) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(transport.stop(self.config.shutdown_grace))
        with contextlib.suppress(Exception):
            if client is not None:
                await client.aclose()
        if self.config.life is not None:
            self.config.life.discard(index, generation)  # the child is reaped: nothing of its requests stays

    def _hand_over(self, worker: Worker, client: RpcClient, transport: ChildTransport) -> None:
        """Detach the current child from its slot (the supervisor starts a fresh one at once) and let a task of the
        pool's stop it once its last lease is released, or when it dies first."""
        gen = worker.generation
        retiring = Retiring(client=client, transport=transport)
        worker.retiring[gen] = retiring
        worker.client = worker.transport = None
        if not worker.leases.get(gen):
            retiring.drained.set()
        task = asyncio.create_task(self._retire(worker, gen, retiring), name=f"codex-worker-{worker.index}-retiring")
        self._retirements.add(task)
        task.add_done_callback(self._retirements.discard)

    async def _retire(self, worker: Worker, gen: int, old: Retiring) -> None:
        def kill(why: str) -> None:
            logger.error(
                "retiring codex worker %d (pid %s) must go (%s): killing it", worker.index, old.transport.pid, why
            )
            old.transport.kill()

        waits = [asyncio.create_task(old.drained.wait()), asyncio.create_task(old.client.closed.wait())]
        memory = asyncio.create_task(self._watch_memory(old.transport, kill))  # a kill closes the client
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*waits, memory):
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            await asyncio.gather(memory, return_exceptions=True)
            await self._stop_child(worker.index, gen, old.client, old.transport)
            worker.retiring.pop(gen, None)
            await self._notify_change()

    # ---- dispatch ------------------------------------------------------------------------------------------

    @property
    def ready_count(self) -> int:
        return sum(1 for w in self.workers if w.ready)

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self.workers)

    def not_ready_reason(self) -> str:
        reasons = sorted({w.reason for w in self.workers})
        return "; ".join(reasons) or "no workers configured"

    def _pick(self, exclude: Sequence[Worker]) -> Worker | None:
        candidates = [
            w
            for w in self.workers
            if w.ready and not w.draining and w not in exclude and w.load < self.config.max_concurrency
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda w: (w.load, w.index))

    async def acquire(self, exclude: Sequence[Worker] = ()) -> Lease:
        """Lease the least-loaded ready worker, waiting up to the queue timeout when all are full or restarting.

        Fails at once with PoolNotReady only when no worker can come back soon (crash loop, bad CODEX_BIN)."""
        deadline = time.monotonic() + self.config.queue_timeout
        async with self._changed:
            while True:
                worker = self._pick(exclude)
                if worker is not None and worker.client is not None:
                    worker.leases[worker.generation] = worker.leases.get(worker.generation, 0) + 1
                    worker.turns_served += 1
                    if self.config.max_turns and worker.turns_served >= self.config.max_turns:
                        worker.draining = True  # its last turn: a fresh child takes the slot over at once
                        worker.recycle.set()
                    return Lease(self, worker, worker.client)
                remaining = deadline - time.monotonic()
                if all(w.state in DOWN for w in self.workers if w not in exclude):
                    raise PoolNotReady(self.not_ready_reason())
                if remaining <= 0:
                    if self.ready_count == 0:
                        raise PoolNotReady(self.not_ready_reason())
                    raise PoolBusy(f"all {self.ready_count} ready workers are at {self.config.max_concurrency} turns")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    @contextlib.asynccontextmanager
    async def lease(self, exclude: Sequence[Worker] = ()) -> AsyncIterator[Lease]:
        held = await self.acquire(exclude)
        try:
            yield held
        finally:
            held.release()

    def _wake(self) -> None:
        asyncio.get_running_loop().create_task(self._notify_change())

    async def _notify_change(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_ready(self, timeout: float, count: int = 1) -> bool:
        """Wait until at least `count` workers are ready; False on timeout."""
        return await self._wait_for(lambda: self.ready_count >= count, timeout)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no lease is held (a pool being replaced lets its turns finish first); False on timeout."""
        return await self._wait_for(lambda: not self.in_flight, timeout)

    async def _wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Re-check `condition` at every pool change until it holds (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    def statuses(self) -> list[WorkerStatus]:
        return [w.status() for w in self.workers]
