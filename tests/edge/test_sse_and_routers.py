"""SSE streams through Traefik unbuffered; every router loads; a missing reference disables its router."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.offline_model import Text
from tests.api_harness import ThreadedOfflineModel
from tests.conftest import wait_for
from tests.edge.conftest import Keys
from tests.edge.harness import ROUTERS, App, Authd, Traefik, edge_env, start_traefik
from tests.edge.traefik_config import DYNAMIC_DIR

pytestmark = pytest.mark.edge


@pytest.mark.usefixtures("script_guard")
def test_sse_deltas_arrive_while_the_model_is_still_streaming(
    edge: Traefik, keys: Keys, offline_model: ThreadedOfflineModel
) -> None:
    """The model streams 6 deltas 400 ms apart. The first must reach the client through Traefik while the
    model still has deltas to send: a hop that buffers (compress, forwardBody, a proxy buffer) hands it over
    only at the end. Judged by what the model had sent when each delta arrived, not by the gaps between
    arrivals, which a busy machine squeezes together without anything buffering."""
    chunks = [f"part{i} " for i in range(6)]
    offline_model.script(Text("".join(chunks), chunks=chunks, interval_s=0.4))
    body = {"model": "codev-5", "stream": True, "messages": [{"role": "user", "content": "stream please"}]}
    sent_when_received: list[int] = []
    text = ""
    with (
        edge.client() as client,
        client.stream(
            "POST", "/v1/chat/completions", headers={"authorization": f"Bearer {keys.default}"}, json=body,
            extensions=edge.ext,
        ) as r,
    ):  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers
        for line in r.iter_lines():
            if line.startswith("data: {") and (delta := json.loads(line[6:])["choices"][0]["delta"].get("content")):
                sent_when_received.append(offline_model.progress()[0])
                text += delta
    assert text == "".join(chunks)
    assert len(sent_when_received) == len(chunks)
    assert sent_when_received[0] < len(chunks), sent_when_received


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
