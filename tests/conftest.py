"""Run-wide test helpers: asyncio-only anyio backend, free loopback ports, a deadline poller."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it, so parallel runs don't collide).

    Never the same port twice in one run: the probe socket is closed before the child binds, so the
    kernel may offer a port again that an earlier caller was given but whose child has not bound it yet
    (a fixture allocating several ports up front, e.g. Traefik's four entry points)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # the thing being waited for may not be up yet
            last_exc = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last_exc!r}" if last_exc else ""))


# ---- API fixtures: one offline model and one real app for the whole run ----------------------------------


@pytest.fixture(scope="session")
def offline_model():
    """The offline model in a background thread; tests `script()` replies and read `requests`."""
    from tests.api_harness import ThreadedOfflineModel

    model = ThreadedOfflineModel().start()
    try:
        yield model
    finally:
        model.stop()


@pytest.fixture
def script_guard(offline_model):
    """The offline model is shared by the whole run: every scripted reply must be consumed by its own test,
    and leftovers are cleared so one failing test cannot feed the next one the wrong reply."""
    offline_model.clear_script()
    yield
    assert offline_model.clear_script() == 0, "a scripted reply was never requested by codex"


@pytest.fixture(scope="session")
def api(offline_model, tmp_path_factory):
    """`python -m app` (real Granian, real codex app-server, 1 worker) backed by `offline_model`.

    Keepalives every 300 ms so keepalive tests don't wait 15 s. No per-key request rate: the whole run sends
    this one key close to 900 generation requests a minute at times, more than the default 600/min allows (the
    limits have their own tests in tests/gateway). Tests that need other settings start their own `ApiServer`.
    """
    from tests.api_harness import ApiServer, offline_env

    # `*` (an explicit opt-in since the default became cors-origins.txt) keeps the wildcard CORS rules under test.
    env = offline_env(
        offline_model, PROXY_SSE_KEEPALIVE_MS="300", PROXY_KEY_REQUESTS_PER_MINUTE="0", PROXY_CORS_ALLOWED_ORIGINS="*"
    )
    server = ApiServer(tmp_path_factory.mktemp("api"), env).start()
    try:
        yield server
    finally:
        server.stop()
