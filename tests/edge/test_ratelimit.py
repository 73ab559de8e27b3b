"""Rate limits at Traefik: a burst past the limit gets 429; with Redis, two Traefiks share one budget.

Each test starts its own Traefik(s) so their buckets never throttle the other edge tests. All loopback
clients share one bucket (same source address), which is what these tests rely on.

Every bucket here refills once an hour (`RATE_LIMIT_PERIOD=1h`): a test then sees exactly its burst
whatever the machine's speed. A refill of a few tokens per second made the outcome depend on how long
the requests took, which a busy machine stretches (the shared-Redis bound of 10 to 13 allowed requests
held only while 30 requests took less than about 3 s).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import free_port, wait_for
from tests.edge.harness import App, Authd, Proc, Traefik, edge_env, start_traefik

pytestmark = pytest.mark.edge


@pytest.fixture
def redis_endpoint(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server missing: apt-get install redis-server (listed in apt-packages.txt)")
    port = free_port()
    proc = Proc(
        "redis",
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        {},
        tmp_path,
    )
    try:

        def pong() -> bool:
            proc.assert_alive()
            with redis.Redis(port=port, socket_timeout=1) as client:
                return bool(client.ping())

        wait_for(pong, what="redis-server")
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


def _get(traefik: Traefik, client: httpx.Client) -> httpx.Response:
    return client.get("/v1/models", headers={"origin": "app://obsidian.md"}, extensions=traefik.ext)


def test_burst_past_the_limit_gets_429(tmp_path: Path, cert: tuple[Path, Path], authd: Authd, app: App) -> None:
    env = edge_env(app.url, authd.url, *cert, RATE_LIMIT_AVERAGE="5", RATE_LIMIT_BURST="10", RATE_LIMIT_PERIOD="1h")
    traefik = start_traefik(tmp_path, env, cert[0])
    try:
        with traefik.client() as client, ThreadPoolExecutor(8) as pool:
            # One request alone first: it creates the source's bucket. Concurrent *first* requests of a new
            # source were seen to get more than the burst on a busy machine (14 allowed instead of 10, with one
            # configuration load in Traefik's log): its in-memory limiter appears not to serialise the creation
            # of a source's bucket. A few requests more per new client is harmless in production; it is not
            # what this test measures.
            responses = [_get(traefik, client)]
            responses += pool.map(lambda _: _get(traefik, client), range(39))
    finally:
        traefik.proc.stop()
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [200] * 10 + [429] * 30, statuses  # the burst, then nothing
    limited = [r for r in responses if r.status_code == 429]
    r = limited[0]
    assert r.headers["retry-after"]
    assert r.headers["x-frame-options"] == "DENY"  # security headers on the 429 too
    assert r.headers["access-control-allow-origin"] == "app://obsidian.md"  # and CORS, so browsers can read it


@pytest.mark.parametrize(("source_header", "separate"), [("CF-Connecting-IP", True), ("", False)], ids=["cf", "addr"])
def test_buckets_follow_the_client_header_behind_cloudflare(
    tmp_path: Path, cert: tuple[Path, Path], authd: Authd, app: App, source_header: str, separate: bool
) -> None:
    """Behind Cloudflare every request comes from an edge address: keyed on CF-Connecting-IP, one client
    exhausting its bucket leaves another client's untouched; keyed on the address, they share one."""
    env = edge_env(
        app.url,
        authd.url,
        *cert,
        RATE_LIMIT_AVERAGE="1",
        RATE_LIMIT_BURST="3",
        RATE_LIMIT_PERIOD="1h",
        RATE_LIMIT_SOURCE_HEADER=source_header,
    )
    traefik = start_traefik(tmp_path, env, cert[0])
    try:
        with traefik.client() as client:

            def get(ip: str) -> int:
                headers = {"cf-connecting-ip": ip}
                return client.get("/v1/models", headers=headers, extensions=traefik.ext).status_code

            noisy = [get("203.0.113.7") for _ in range(6)]
            other = get("198.51.100.9")
    finally:
        traefik.proc.stop()
    assert 429 in noisy, noisy
    assert other == (200 if separate else 429)


@pytest.mark.parametrize(("backend", "shared"), [("redis", True), ("memory", False)])
def test_two_traefiks_share_the_limit_only_through_redis(
    tmp_path: Path, cert: tuple[Path, Path], authd: Authd, app: App, redis_endpoint: str, backend: str, shared: bool
) -> None:
    """A burst of 10, 30 requests alternating between two Traefiks: one shared bucket lets 10 through in
    total; two in-memory buckets let 10 through each (the control proving the test can tell)."""
    env = edge_env(
        app.url,
        authd.url,
        *cert,
        RATE_LIMIT_BACKEND=backend,
        REDIS_ENDPOINT=redis_endpoint,
        RATE_LIMIT_AVERAGE="10",
        RATE_LIMIT_PERIOD="1h",
        RATE_LIMIT_BURST="10",
    )
    first = start_traefik(tmp_path / "a", env, cert[0])
    try:
        second = start_traefik(tmp_path / "b", env, cert[0])
        try:
            with first.client() as c1, second.client() as c2:
                statuses = [_get(t, c).status_code for _ in range(15) for t, c in ((first, c1), (second, c2))]
        finally:
            second.proc.stop()
    finally:
        first.proc.stop()
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == (10 if shared else 20), statuses


def test_public_health_route_is_rate_limited(tmp_path: Path, cert: tuple[Path, Path], authd: Authd, app: App) -> None:
    """/healthz needs no key, so it had to have a limit too (issue 13: it was the one unthrottled route). An hour-long
    period makes the refill negligible, so the count is exact however slow the machine is."""
    env = edge_env(app.url, authd.url, *cert, RATE_LIMIT_AVERAGE="1", RATE_LIMIT_BURST="3", RATE_LIMIT_PERIOD="1h")
    traefik = start_traefik(tmp_path, env, cert[0])
    try:
        with traefik.client() as client:
            statuses = [client.get("/healthz", extensions=traefik.ext).status_code for _ in range(8)]
    finally:
        traefik.proc.stop()
    assert statuses == [200] * 3 + [429] * 5, statuses
