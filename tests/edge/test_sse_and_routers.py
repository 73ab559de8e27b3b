"""SSE streams through Traefik unbuffered; every router loads; a missing reference disables its router."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.edge.conftest import App, Keys
from tests.edge.harness import ROUTERS, Authd, Traefik, edge_env, start_traefik
from tests.edge.traefik_config import DYNAMIC_DIR

pytestmark = pytest.mark.edge


def test_sse_events_arrive_spaced_as_sent(edge: Traefik, keys: Keys) -> None:
    """The offline model streams 5 deltas 250 ms apart; through Traefik they must arrive spread out,
    not in one burst at the end (buffering, compress or forwardBody would bunch them)."""
    body = {
        "model": "codev-5",
        "stream": True,
        "messages": [{"role": "user", "content": "abcdefghij [[offline chunks=5 interval_ms=250]]"}],
    }
    arrivals: list[float] = []
    with (
        edge.client() as client,
        client.stream(
            "POST",
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {keys.default}"},
            json=body,
            extensions=edge.ext,
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers
        text = ""
        for line in r.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if delta:
                    arrivals.append(time.monotonic())
                    text += delta
    assert text == "echo: abcdefghij"
    assert len(arrivals) == 5
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.1, gaps  # each delta arrived on its own, ~250 ms after the previous
    assert arrivals[-1] - arrivals[0] > 0.75


def test_every_router_is_enabled_without_errors(edge: Traefik) -> None:
    routers = {r["name"]: r for r in edge.api("/http/routers")}  # type: ignore[union-attr]
    for name in ROUTERS:
        assert routers[f"{name}@file"]["status"] == "enabled"
        assert "error" not in routers[f"{name}@file"]
    overview = edge.api("/overview")
    for kind in ("routers", "middlewares", "services"):
        assert overview["http"][kind]["errors"] == 0, kind  # type: ignore[index]
        assert overview["http"][kind]["warnings"] == 0, kind  # type: ignore[index]
    assert edge.error_log_lines() == []


def test_every_middleware_is_enabled(edge: Traefik) -> None:
    middlewares = {m["name"]: m for m in edge.api("/http/middlewares")}  # type: ignore[union-attr]
    for name in ("cors", "security-headers", "ratelimit-memory", "strip-identity", "forward-auth", "chain-api"):
        assert middlewares[f"{name}@file"]["status"] == "enabled", name


@pytest.mark.parametrize(
    ("removed", "broken_router"),
    [("forward-auth.yml", "codex-api"), ("services.yml", "codex-health"), ("cors.yml", "codex-preflight")],
)
def test_missing_reference_disables_the_router(
    tmp_path: Path, cert: tuple[Path, Path], authd: Authd, app: App, removed: str, broken_router: str
) -> None:
    """Traefik keeps running with a dangling reference and only marks the router disabled: this is the
    check that catches it (harness.md §1.7)."""
    dynamic = tmp_path / "dynamic"
    shutil.copytree(DYNAMIC_DIR, dynamic)
    (dynamic / removed).unlink()
    traefik = start_traefik(
        tmp_path / "logs", edge_env(app.url, authd.url, *cert), cert[0], dynamic_dir=dynamic, routers=()
    )
    try:

        def router() -> dict:
            return {r["name"]: r for r in traefik.api("/http/routers")}.get(f"{broken_router}@file", {})  # type: ignore[union-attr]

        wait_for(lambda: router().get("status"), what="the router to be loaded")
        assert router()["status"] == "disabled"
        assert router()["error"]
        assert traefik.api("/overview")["http"]["routers"]["errors"] >= 1  # type: ignore[index]
    finally:
        traefik.proc.stop()
