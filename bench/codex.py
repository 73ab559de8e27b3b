"""Item 4 of issue 15: what a turn costs codex, and how the pool scales (real pinned binary, offline model).

**Codex CPU per simple turn.** One-worker pools in this process (the app's own `WorkerPool` + `TurnSession`)
run sequential short turns against one offline model in its own process, with: codex's defaults (no flags, a
home without config.toml, codex's own log level), the project's settings (`app.codex.launch`: built-in tools
off, in-memory thread store, `RUST_LOG=warn`, the repo's config.toml), and the project's settings with codex's
stderr at `error`. CPU is the child's own (utime + stime from /proc) over the turns; stderr lines are counted as
the app's transport reads them. Codex's base instructions are never replaced.

**Worker scaling.** `python -m app` with `PROXY_WORKER_COUNT` × `WORKER_MAX_CONCURRENCY` from the grid, as many
concurrent clients as the pool has slots, each sending non-stream chat turns back to back: turns/s, p50/p99 and
errors. **Held turns per worker:** one worker with a high concurrency cap gets N concurrent turns that the offline
model holds for a few seconds before answering (`[[offline first_byte_ms=…]]`), for growing N; the largest N
with every turn answered correctly is what one worker holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

from app.codex.launch import Backend, WorkerState, build_argv, build_env, prepare_codex_home
from app.codex.pool import PoolConfig, WorkerPool
from app.codex.turn import InFlight, TurnFinished, TurnRequest, TurnSession
from app.offline_model.server import provider_args
from app.settings import default_codex_bin
from bench.common import PY, Server, Stat, app_env, cpu_seconds, free_port, percentile, rss_mib
from bench.loadgen import closed_loop, post
from bench.report import Section, Table


class _NoState:
    """Codex's defaults: no per-life state arguments."""

    def prepare(self, index: int, generation: int) -> list[str]:
        return []

    def discard(self, index: int, generation: int) -> None:
        return None


class _StderrCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "stderr" in record.getMessage():
            self.lines += 1


def _variant(name: str, url: str, tmp: Path) -> tuple[list[str], dict[str, str], object]:
    codex = default_codex_bin()
    home = tmp / name / "home"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXY_", "RUST_LOG"))}
    if name == "codex defaults":
        home.mkdir(parents=True, exist_ok=True)
        env = {**base_env, "CODEX_HOME": str(home), "OFFLINE_MODEL_API_KEY": "offline"}
        return [codex, "app-server", *provider_args(url)], env, _NoState()
    prepare_codex_home(home)
    backend = Backend(mode="offline", offline_base_url=url)
    env = build_env(base_env, home, backend)
    if name.endswith("RUST_LOG=error"):
        env["RUST_LOG"] = "error"
    return build_argv(codex, backend), env, WorkerState(tmp / name / "state")


async def _turn_cost(name: str, url: str, tmp: Path, reps: int, turns: int) -> dict[str, list[float]]:
    argv, env, life = _variant(name, url, tmp)
    work = tmp / name / "work"
    work.mkdir(parents=True, exist_ok=True)
    pool = WorkerPool(PoolConfig(argv=argv, env=env, cwd=str(work), count=1, life=life))  # type: ignore[arg-type]
    counter = _StderrCounter()
    transport_log = logging.getLogger("app.codex.transport")
    transport_log.addHandler(counter)
    transport_log.setLevel(logging.DEBUG)
    await pool.start()
    out: dict[str, list[float]] = {"cpu_ms": [], "latency_ms": [], "stderr_lines": [], "errors": []}
    try:
        if not await pool.wait_ready(60):
            raise RuntimeError(f"{name}: worker not ready: {pool.not_ready_reason()}")
        for rep in range(reps + 1):
            pid = pool.child_pids()[0]
            cpu0, lines0 = cpu_seconds(pid), counter.lines
            lat, errors = [], 0
            for i in range(turns):
                started = time.perf_counter()
                session = TurnSession(
                    pool,
                    TurnRequest(input_text=f"cost {i}"),
                    overload_retries=0,
                    usage_grace=0.25,
                    in_flight=InFlight(),
                )
                async with session:
                    while (event := await session.next_event()) is not None:
                        if isinstance(event, TurnFinished):
                            errors += event.status != "completed"
                lat.append((time.perf_counter() - started) * 1000)
            if rep == 0:
                continue  # warm-up
            out["cpu_ms"].append((cpu_seconds(pid) - cpu0) * 1000 / turns)
            out["latency_ms"].append(percentile(lat, 50))
            out["stderr_lines"].append((counter.lines - lines0) / turns)
            out["errors"].append(float(errors))
    finally:
        transport_log.removeHandler(counter)
        await pool.stop()
    return out


def _chat(text: str) -> bytes:
    return post(
        "/v1/chat/completions",
        json.dumps({"model": "codev-5", "messages": [{"role": "user", "content": text}]}).encode(),
    )


def _app(tmp: Path, url: str, name: str, **extra: str) -> Server:
    port = free_port()
    env = app_env(
        tmp, name, port, PROXY_BACKEND="offline", PROXY_OFFLINE_MODEL_URL=url, PROXY_LOG_LEVEL="WARNING", **extra
    )
    return Server([PY, "-m", "app"], env, port=port, log=tmp / f"{name}.log")


async def _grid_point(app: Server, clients: int, count: int, seconds: float) -> dict[str, float]:
    await closed_loop(
        app.port, _chat("warm"), b"echo: warm", clients=min(clients, 8), count=min(clients, 8), seconds=30
    )
    calls, wall = await closed_loop(
        app.port, lambda i: _chat(f"grid {i}"), b"echo: grid", clients=clients, count=count, seconds=seconds
    )
    good = [c.total * 1000 for c in calls if c.ok]
    return {
        "turns_per_s": len(good) / wall if wall else 0.0,
        "p50_ms": percentile(good, 50),
        "p99_ms": percentile(good, 99),
        "errors": float(len(calls) - len(good)),
        "turns": float(len(calls)),
    }


async def _held(app: Server, n: int, hold_ms: int) -> tuple[int, int, float, float]:
    """n concurrent turns the model holds for `hold_ms`: (answered correctly, sent, wall s, codex MiB meanwhile)."""
    text = f"[[offline first_byte_ms={hold_ms}]] held"
    load = asyncio.ensure_future(closed_loop(app.port, _chat(text), b"echo: held", clients=n, count=n, seconds=120))
    await asyncio.sleep(hold_ms / 1000 * 0.8)
    codex_mib = sum(rss_mib(pid) for pid in app.children() if pid != app.worker_pid)
    calls, wall = await load
    return sum(c.ok for c in calls), len(calls), wall, codex_mib


def run(ctx) -> Section:
    size = ctx.size
    tmp: Path = ctx.tmp / "codex"
    port = free_port()
    model = Server(
        [PY, "-m", "app.offline_model", "--port", str(port)],
        {},
        port=port,
        log=tmp / "model.log",
        ready_path="/v1/models",
    )
    url = f"http://127.0.0.1:{port}/v1"
    cost: dict[str, dict[str, list[float]]] = {}
    grid: dict[tuple[int, int], list[dict[str, float]]] = {}
    held: list[tuple[int, int, int, float, float]] = []
    with model:
        for name in ("codex defaults", "project settings", "project settings, RUST_LOG=error"):
            cost[name] = asyncio.run(_turn_cost(name, url, tmp, size.reps, size.cost_turns))
        for workers in size.grid_workers:
            for conc in size.grid_concurrency:
                clients = workers * conc
                with _app(
                    tmp,
                    url,
                    f"grid-{workers}x{conc}",
                    PROXY_WORKER_COUNT=str(workers),
                    WORKER_MAX_CONCURRENCY=str(conc),
                ) as app:
                    for _ in range(size.grid_reps):
                        point = asyncio.run(_grid_point(app, clients, max(clients, size.grid_min_turns), 60))
                        grid.setdefault((workers, conc), []).append(point)
        with _app(
            tmp,
            url,
            "held",
            PROXY_WORKER_COUNT="1",
            WORKER_MAX_CONCURRENCY="4096",
            PROXY_SSE_MAX_CONCURRENCY="0",
            WORKER_QUEUE_TIMEOUT_MS="60000",
        ) as app:
            for n in size.held_levels:
                ok, sent, wall, codex_mib = asyncio.run(_held(app, n, size.held_ms))
                held.append((n, ok, sent, wall, codex_mib))
                if ok < sent:
                    break
    return report(cost, grid, held, size)


def report(cost, grid, held, size) -> Section:
    s = Section(id="codex", title="4. Codex cost and worker scaling", text=(__doc__ or "").split("\n\n", 1)[1].strip())
    rows = []
    for name, data in cost.items():
        rows.append(
            [
                name,
                Stat.of(data["cpu_ms"]).fmt(1),
                Stat.of(data["latency_ms"]).fmt(1),
                Stat.of(data["stderr_lines"]).fmt(1),
                str(int(sum(data["errors"]))),
            ]
        )
    s.tables.append(
        Table(
            title=f"{size.reps} repetitions × {size.cost_turns} sequential turns, one worker",
            columns=["codex settings", "codex CPU / turn (ms)", "turn p50 (ms)", "stderr lines / turn", "errors"],
            rows=rows,
        )
    )
    rows = []
    for (workers, conc), points in sorted(grid.items()):
        rows.append(
            [
                f"{workers} × {conc}",
                str(workers * conc),
                Stat.of(p["turns_per_s"] for p in points).fmt(1),
                Stat.of(p["p50_ms"] for p in points).fmt(0),
                Stat.of(p["p99_ms"] for p in points).fmt(0),
                str(int(sum(p["errors"] for p in points))),
            ]
        )
    s.tables.append(
        Table(
            title=f"Worker scaling: {size.grid_reps} repetition(s) per point; clients = slots; non-stream chat turns",
            columns=["workers × concurrency", "clients", "turns/s", "p50 (ms)", "p99 (ms)", "errors"],
            rows=rows,
        )
    )
    rows = [[f"{n:,}", f"{ok:,} of {sent:,}", f"{wall:.1f}", f"{mib:,.0f}"] for n, ok, sent, wall, mib in held]
    s.tables.append(
        Table(
            title=f"Concurrent turns on one worker, each held {size.held_ms} ms by the model",
            columns=["concurrent turns", "answered correctly", "wall (s)", "codex RSS while held (MiB)"],
            rows=rows,
        )
    )
    holds = [n for n, ok, sent, *_ in held if ok == sent]
    s.data = {
        "cost": cost,
        "grid": {f"{w}x{c}": v for (w, c), v in grid.items()},
        "held": held,
        "largest_held_without_errors": max(holds) if holds else 0,
    }
    defaults = Stat.of(cost.get("codex defaults", {}).get("cpu_ms", []))
    project = Stat.of(cost.get("project settings", {}).get("cpu_ms", []))
    s.notes.append(
        f"Codex CPU per turn: {project.fmt(1)} ms with the project's settings vs {defaults.fmt(1)} ms with codex's "
        f"defaults. Largest number of concurrent held turns one worker answered without an error: "
        f"{max(holds) if holds else 0:,} (levels tried: {', '.join(str(n) for n, *_ in held)})."
    )
    return s
