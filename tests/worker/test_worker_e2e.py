"""The Cloudflare Worker end to end in real workerd: `cloudflare-worker/test/mf-serve.mjs` (Miniflare)
in front of a stdlib HTTP origin, driven over real loopback HTTP.

The Worker's own behaviour is covered in depth by `npm test` (node:test + Miniflare in-process);
this suite proves the pieces the Python edge tests build on: mf-serve starts from the shipped
wrangler.jsonc, answers preflights without touching the origin, streams SSE through unbuffered,
listens only on the ports it was given, and leaves no node/workerd process behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import REPO, free_port, wait_for

pytestmark = pytest.mark.worker

WORKER_DIR = REPO / "cloudflare-worker"
ALLOWED = "app://obsidian.md"
DENIED = "https://evil.example.test"
SSE_EVENTS = 5
# Offline switches (harness.md §2.2); mf-serve also passes `cf: false` to Miniflare.
OFFLINE_ENV = {
    "CLOUDFLARE_CF_FETCH_ENABLED": "false",
    "WRANGLER_SEND_METRICS": "false",
    "WRANGLER_SEND_ERROR_REPORTS": "false",
    "CI": "1",
}


# ---- origin ------------------------------------------------------------------------------------


@dataclass
class Origin:
    """A stdlib HTTP origin that records its hits and serves a lockstep SSE stream."""

    url: str = ""
    hits: list[tuple[str, str]] = field(default_factory=list)
    # SSE lockstep: event i+1 is written only after the client has received event i, so a Worker
    # that buffers the body deadlocks (the origin gives up after a deadline and says so).
    received: list[threading.Event] = field(default_factory=list)

    def reset_sse(self) -> None:
        self.received[:] = [threading.Event() for _ in range(SSE_EVENTS)]


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def _serve(self) -> None:
            origin.hits.append((self.command, self.path))
            if self.path == "/v1/sse":
                self._sse()
                return
            body = b'{"object":"list","data":[]}' if self.path == "/v1/models" else b'{"error":{"message":"nf"}}'
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _sse(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(SSE_EVENTS):
                self._chunk(f'data: {{"n":{i}}}\n\n'.encode())
                if not origin.received[i].wait(timeout=10):
                    self._chunk(b"data: client never received the previous event (buffered?)\n\n")
                    break
            else:
                self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        do_GET = do_POST = do_OPTIONS = _serve

    return Handler


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    state = Origin()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="worker-e2e-origin", daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# ---- mf-serve ----------------------------------------------------------------------------------


@dataclass
class MfServe:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    pin_base: int
    stdout: Path
    stderr: Path


def _require_toolchain() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node 20 (apt-get install nodejs) and run `make worker-deps`")
    if not (WORKER_DIR / "node_modules" / "miniflare").is_dir():
        pytest.fail("cloudflare-worker/node_modules is missing: run `make worker-deps` (npm ci)")
    return node


def _start(origin_url: str, tmp: Path) -> MfServe:
    node = _require_toolchain()
    port, pin_base = free_port(), free_port()
    out, err = tmp / "mf-serve.out", tmp / "mf-serve.err"
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "MF_PORT": str(port),
        "PIN_PORT_BASE": str(pin_base),
        "ORIGIN_URL": origin_url,
        "XDG_CONFIG_HOME": str(tmp),
    }
    with out.open("wb") as stdout, err.open("wb") as stderr:
        # Own session = own process group, so teardown can signal node *and* its workerd child.
        proc = subprocess.Popen(
            [node, "--require", "./test/pin-ports.cjs", "test/mf-serve.mjs"],
            cwd=WORKER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    def ready() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"mf-serve exited {proc.returncode}: {err.read_text()[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        return None

    try:
        url = wait_for(ready, timeout=30, what="mf-serve READY")
    except BaseException:
        _stop(proc)
        raise
    return MfServe(proc=proc, url=url.rstrip("/"), port=port, pin_base=pin_base, stdout=out, stderr=err)


def _group(pgid: int) -> list[psutil.Process]:
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, reap node, and make sure nothing in the group survives."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
    try:
        wait_for(lambda: not _group(pgid), timeout=10, what=f"process group {pgid} to exit")
    except AssertionError:
        for p in _group(pgid):
            p.kill()
        raise


@pytest.fixture(scope="module")
def worker(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfServe]:
    mf = _start(origin.url, tmp_path_factory.mktemp("mf-serve"))
    yield mf
    _stop(mf.proc)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20, trust_env=False) as c:
        yield c


# ---- tests -------------------------------------------------------------------------------------


def test_preflight_from_allowed_origin_is_answered_at_the_edge(
    worker: MfServe, origin: Origin, client: httpx.Client
) -> None:
    before = len(origin.hits)
    r = client.options(
        f"{worker.url}/v1/chat/completions",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-stainless-os, X-Trace-Id",
        },
    )
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-allow-credentials"] == "true"
    allow = [h.strip() for h in r.headers["access-control-allow-headers"].split(",")]
    assert allow[:3] == ["Authorization", "Content-Type", "Accept"]
    assert "X-Trace-Id" in allow
    assert [h.lower() for h in allow].count("x-stainless-os") == 1
    assert r.headers["access-control-max-age"] == "600"
    assert "Origin" in [v.strip() for v in r.headers["vary"].split(",")]
    assert origin.hits[before:] == []


def test_preflight_from_disallowed_origin_gets_no_allow_origin(
    worker: MfServe, origin: Origin, client: httpx.Client
) -> None:
    before = len(origin.hits)
    r = client.options(
        f"{worker.url}/v1/chat/completions",
        headers={"Origin": DENIED, "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 204
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    assert origin.hits[before:] == []


def test_get_is_proxied_with_status_body_and_cors(worker: MfServe, origin: Origin, client: httpx.Client) -> None:
    r = client.get(f"{worker.url}/v1/models", headers={"Origin": ALLOWED})
    assert r.status_code == 200
    assert r.json() == {"object": "list", "data": []}
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert origin.hits[-1] == ("GET", "/v1/models")


def test_sse_streams_through_unbuffered(worker: MfServe, origin: Origin, client: httpx.Client) -> None:
    origin.reset_sse()
    events: list[str] = []
    buffer = ""
    with client.stream("POST", f"{worker.url}/v1/sse", headers={"Origin": ALLOWED}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["access-control-allow-origin"] == ALLOWED
        for text in r.iter_text():
            buffer += text
            *complete, buffer = buffer.split("\n\n")
            for event in complete:
                events.append(event)
                if len(events) <= SSE_EVENTS:
                    origin.received[len(events) - 1].set()  # release the origin's next write
    assert events == [f'data: {{"n":{i}}}' for i in range(SSE_EVENTS)] + ["data: [DONE]"]


def test_listens_only_on_the_ports_it_was_given(worker: MfServe) -> None:
    leader = psutil.Process(worker.proc.pid)
    procs = [leader, *leader.children(recursive=True)]
    assert any(p.name() == "workerd" for p in procs), [p.name() for p in procs]
    listening = {c.laddr.port for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    # MF_PORT is workerd's entry socket; PIN_PORT_BASE is Miniflare's pinned internal loopback server.
    assert listening == {worker.port, worker.pin_base}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_stops_node_and_workerd(origin: Origin, tmp_path: Path) -> None:
    mf = _start(origin.url, tmp_path)
    children = psutil.Process(mf.proc.pid).children(recursive=True)
    assert "workerd" in [c.name() for c in children]
    _stop(mf.proc)
    assert [pid for pid in (mf.proc.pid, *(c.pid for c in children)) if _alive(pid)] == []
