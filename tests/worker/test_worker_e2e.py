"""The Cloudflare Worker end to end in real workerd: `cloudflare-worker/test/mf-serve.mjs` (Miniflare)
in front of a stdlib HTTP origin, driven over real loopback HTTP.

The Worker's own behaviour is covered in depth by `npm test` (node:test + Miniflare in-process);
this suite proves the pieces the chain tests (tests/chain/) build on through tests/worker/harness.py:
mf-serve starts from the shipped wrangler.jsonc, answers preflights without touching the origin, streams
SSE through unbuffered, listens only on the ports it was given, and leaves no node/workerd process behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from tests.worker.harness import MfServe, start_mf_serve

pytestmark = pytest.mark.worker

ALLOWED = "app://obsidian.md"
DENIED = "https://evil.example.test"
SSE_EVENTS = 5


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


@pytest.fixture(scope="module")
def worker(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfServe]:
    mf = start_mf_serve(tmp_path_factory.mktemp("mf-serve"), {"ORIGIN_URL": origin.url})
    yield mf
    mf.stop()


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
    mf = start_mf_serve(tmp_path, {"ORIGIN_URL": origin.url})
    children = psutil.Process(mf.proc.pid).children(recursive=True)
    assert "workerd" in [c.name() for c in children]
    mf.stop()
    assert [pid for pid in (mf.proc.pid, *(c.pid for c in children)) if _alive(pid)] == []
