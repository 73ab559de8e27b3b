"""Remote image URLs: fetched server-side into data URLs, behind the SSRF guard (app/image_fetch.py).

The real app runs in process on scripted turns; images come from a local server (tests/image_server.py) that the
documented test-only PROXY_IMAGE_FETCH_TEST_ALLOWLIST opens. Refusals are proven to make **no connection**: the
fetcher's network layer is wrapped in a recorder that sees every connect, and loopback targets are real listening
sockets whose backlog stays empty. The real-codex counterpart (the image reaching the offline model) is in
tests/api/test_compat_codex.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator

import httpcore
import pytest
from httpcore._backends.anyio import AnyIOBackend

from app.codex.turn import HistoryToolResult, ImageRef
from app.image_fetch import GuardedBackend, ImageFetcher, ImageRefused, forbidden, parse_allowlist, system_resolver
from tests.image_server import RED_DATA_URL, ImageServer, Tripwire
from tests.seam import Seam, seam, text

RESOLVED = {
    "metadata.example": ["169.254.169.254"],
    "private.example": ["10.0.0.1"],
    "mixed.example": ["93.184.216.34", "10.0.0.1"],
    "public.example": ["93.184.216.34"],
}


class Recorder(httpcore.AsyncNetworkBackend):
    """The real network layer, recording every connect the guard lets through."""

    def __init__(self) -> None:
        self.inner = AnyIOBackend()
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, timeout=None, local_address=None, socket_options=None):
        self.connects.append((host, port))
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout=None, socket_options=None):
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def resolver(host: str, port: int) -> list[str]:
    """Names the tests made up, literal addresses as they are, anything else (localhost) the system's way."""
    if host == "gone.example":
        raise OSError("no such host")
    if host in RESOLVED:
        return RESOLVED[host]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return await system_resolver(host, port)


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer().start()
    yield server
    server.stop()


class Rig:
    def __init__(self, s: Seam, recorder: Recorder, server: ImageServer) -> None:
        self.s, self.recorder, self.server = s, recorder, server

    async def chat(self, url: str, *, detail: str | None = None, stream: bool = False):
        image = {"url": url, **({"detail": detail} if detail else {})}
        content = [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": image}]
        body = {"model": "codev-5", "messages": [{"role": "user", "content": content}], "stream": stream}
        return await self.s.http.post("/v1/chat/completions", json=body)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CLOSED = closed_port()


async def rig_for(tmp_path, server: ImageServer, **settings: object) -> AsyncIterator[Rig]:
    allow = (f"127.0.0.1:{server.port}", f"127.0.0.1:{CLOSED}")  # the second: allowed, but nobody listens
    async with seam(tmp_path, image_fetch_test_allowlist=allow, **settings) as s:
        recorder = Recorder()
        ctx = s.app.state.api
        await ctx.images.aclose()
        ctx.images = ImageFetcher(
            max_bytes=ctx.settings.image_max_bytes,
            timeout_s=ctx.settings.image_fetch_timeout_ms / 1000,
            concurrency=ctx.settings.image_fetch_concurrency,
            backend=GuardedBackend(parse_allowlist(allow), resolver=resolver, inner=recorder),
        )
        yield Rig(s, recorder, server)


@pytest.fixture
async def rig(tmp_path, images: ImageServer) -> AsyncIterator[Rig]:
    async for r in rig_for(tmp_path, images):
        yield r


def refused(r, reason: str, param: str = "messages[0].content[1]") -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_image_url")
    assert param in error["message"] and reason in error["message"], error["message"]


# ---- fetched and inlined --------------------------------------------------------------------------------------


async def test_a_remote_image_is_inlined_as_a_data_url_with_its_detail(rig: Rig) -> None:
    rig.s.turns.script(text("red"))
    r = await rig.chat(rig.server.url("/red.png"), detail="high")
    assert r.status_code == 200, r.text
    assert rig.s.turns.last.input_images == (ImageRef(RED_DATA_URL, "high"),)


async def test_responses_images_are_fetched_too(rig: Rig) -> None:
    rig.s.turns.script(text("red"))
    part = {"type": "input_image", "image_url": rig.server.url("/red.png?r"), "detail": "original"}
    items = [{"role": "user", "content": [{"type": "input_text", "text": "what?"}, part]}]
    r = await rig.s.http.post("/v1/responses", json={"model": "codev-5", "input": items})
    assert r.status_code == 200, r.text
    assert rig.s.turns.last.input_images == (ImageRef(RED_DATA_URL, "original"),)


async def test_images_in_tool_results_and_repeated_urls_are_fetched_once(rig: Rig) -> None:
    rig.s.turns.script(text("ok"))
    url = rig.server.url("/red.png?once")
    image = {"type": "image_url", "image_url": {"url": url}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "look"}, image]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "shot"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "screenshot"}, image]},
    ]
    tools = [{"type": "function", "function": {"name": "shot"}}]
    before = rig.server.hits["/red.png"]
    r = await rig.s.http.post("/v1/chat/completions", json={"model": "codev-5", "messages": messages, "tools": tools})
    assert r.status_code == 200, r.text
    assert rig.server.hits["/red.png"] - before == 1
    assert rig.s.turns.last.history[-1] == HistoryToolResult("c1", "screenshot", (ImageRef(RED_DATA_URL),))


# ---- the SSRF guard: refused, and never connected to -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/x.png", "10.0.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://metadata.example/x.png", "169.254.169.254, a link-local address"),
        ("https://private.example/x.png", "10.0.0.1, a private address"),
        ("https://mixed.example/x.png", "10.0.0.1, a private address"),
        ("http://100.64.0.1/x.png", "a shared (CGNAT) address"),
        ("http://[fd00::1]/x.png", "a unique-local address"),
        ("http://[fe80::1]/x.png", "a link-local address"),
        ("http://[::ffff:10.0.0.1]/x.png", "a private address (embedded in ::ffff:a00:1)"),
        ("http://224.0.0.1/x.png", "a multicast address"),
        ("http://0.0.0.0/x.png", "an unspecified address"),
        ("http://gone.example/x.png", "could not be resolved"),
    ],
)
async def test_private_and_special_addresses_are_refused_without_a_connection(rig: Rig, url: str, reason: str) -> None:
    r = await rig.chat(url)
    refused(r, reason)
    assert rig.recorder.connects == []
    assert rig.s.turns.requests == []  # nothing reached codex


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
async def test_loopback_is_refused_and_its_listener_sees_no_connection(rig: Rig, host: str) -> None:
    wire = Tripwire("::1" if host == "::1" else "127.0.0.1")
    try:
        url = wire.url() if host != "localhost" else f"http://localhost:{wire.port}/x.png"
        refused(await rig.chat(url), "a loopback address")
        assert not wire.connected()
        assert rig.recorder.connects == []
    finally:
        wire.close()


async def test_a_redirect_to_the_metadata_address_is_refused_after_only_the_first_hop(rig: Rig) -> None:
    r = await rig.chat(rig.server.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))
    refused(r, "169.254.169.254, a link-local address")
    assert rig.recorder.connects == [("127.0.0.1", rig.server.port)]


async def test_a_redirect_to_loopback_is_refused_and_never_connects(rig: Rig) -> None:
    wire = Tripwire("127.0.0.1")
    try:
        refused(await rig.chat(rig.server.url(f"/redirect?to={wire.url()}")), "a loopback address")
        assert not wire.connected()
        assert rig.recorder.connects == [("127.0.0.1", rig.server.port)]
    finally:
        wire.close()


async def test_more_than_three_redirects_are_refused(rig: Rig) -> None:
    before = rig.server.hits["/loop"]
    refused(await rig.chat(rig.server.url("/loop")), "more than 3 redirects")
    assert rig.server.hits["/loop"] - before == 4  # the first request and three redirects


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/big", "more than PROXY_IMAGE_MAX_BYTES=1024"),
        ("/big-unsized", "larger than PROXY_IMAGE_MAX_BYTES=1024"),
        ("/html", "did not return a PNG, JPEG, GIF or WebP image"),
        ("/missing", "answered HTTP 404"),
    ],
)
async def test_oversized_non_image_and_failed_answers_are_400s(tmp_path, images: ImageServer, path, reason) -> None:
    async for rig in rig_for(tmp_path, images, image_max_bytes=1024):
        refused(await rig.chat(images.url(path)), reason)


async def test_an_unreachable_image_is_a_400(rig: Rig) -> None:
    refused(await rig.chat(f"http://127.0.0.1:{CLOSED}/x.png"), "could not be reached")


async def test_a_slow_image_times_out_as_a_400(tmp_path, images: ImageServer) -> None:
    async for rig in rig_for(tmp_path, images, image_fetch_timeout_ms=300):
        refused(await rig.chat(images.url("/hang")), "took longer than 0.3 s")


async def test_a_streamed_request_is_refused_before_the_stream_starts(rig: Rig) -> None:
    r = await rig.chat("http://10.0.0.1/x.png", stream=True)
    refused(r, "a private address")
    assert r.headers["content-type"].startswith("application/json")


async def test_the_second_image_is_named_when_it_fails(rig: Rig) -> None:
    good = {"type": "image_url", "image_url": {"url": rig.server.url("/red.png")}}
    bad = {"type": "image_url", "image_url": {"url": "http://10.0.0.1/x.png"}}
    messages = [{"role": "user", "content": [good, {"type": "text", "text": "and"}, bad]}]
    r = await rig.s.http.post("/v1/chat/completions", json={"model": "codev-5", "messages": messages})
    refused(r, "a private address", "messages[0].content[2]")


@pytest.mark.parametrize(
    ("url", "param", "words"),
    [
        ("ftp://example.com/x.png", "messages[0].content[1]", "http(s) URLs or data URLs"),
        ("http://example.com/" + "a" * 9000, "messages[0].content[1]", "at most 8192 characters"),
    ],
)
async def test_urls_that_are_not_fetched_at_all(rig: Rig, url: str, param: str, words: str) -> None:
    r = await rig.chat(url)
    assert (r.status_code, r.json()["error"]["param"]) == (400, param)
    assert words in r.json()["error"]["message"]
    assert rig.recorder.connects == []


async def test_a_bad_detail_is_a_400(rig: Rig) -> None:
    r = await rig.chat(rig.server.url("/red.png"), detail="ultra")
    assert (r.status_code, r.json()["error"]["param"]) == (400, "messages[0].content[1].image_url.detail")


async def test_too_many_distinct_urls_are_refused(rig: Rig) -> None:
    parts = [{"type": "image_url", "image_url": {"url": rig.server.url(f"/red.png?{i}")}} for i in range(17)]
    r = await rig.s.http.post(
        "/v1/chat/completions", json={"model": "codev-5", "messages": [{"role": "user", "content": parts}]}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "too_many_image_urls")
    assert rig.recorder.connects == []


async def test_fetching_can_be_switched_off(tmp_path, images: ImageServer) -> None:
    async for rig in rig_for(tmp_path, images, fetch_image_urls=False):
        r = await rig.chat(images.url("/red.png"))
        assert r.status_code == 400 and "PROXY_FETCH_IMAGE_URLS=false" in r.json()["error"]["message"]
        assert rig.recorder.connects == []


# ---- TLS: the connection goes to the resolved address, the certificate is checked against the name -----------


@pytest.fixture(scope="module")
def tls_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ImageServer, str]]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=images.test"]
    argv += ["-addext", "subjectAltName=DNS:images.test", "-keyout", key, "-out", cert]
    subprocess.run(argv, check=True, capture_output=True)
    server = ImageServer(tls=(cert, key)).start()
    yield server, cert
    server.stop()


async def tls_fetch(
    server: ImageServer, context: ssl.SSLContext | None, host: str = "images.test"
) -> tuple[str, Recorder]:
    recorder = Recorder()

    async def names(name: str, port: int) -> list[str]:
        return ["127.0.0.1"] if name == "images.test" else await resolver(name, port)

    allow = parse_allowlist([f"127.0.0.1:{server.port}"])
    backend = GuardedBackend(allow, resolver=names, inner=recorder)
    fetcher = ImageFetcher(max_bytes=1 << 20, timeout_s=10, concurrency=1, backend=backend, ssl_context=context)
    try:
        return await fetcher.fetch(f"https://{host}:{server.port}/red.png"), recorder
    finally:
        await fetcher.aclose()


async def test_https_connects_to_the_resolved_address_and_verifies_the_name(tls_images) -> None:
    server, cert = tls_images
    data_url, recorder = await tls_fetch(server, ssl.create_default_context(cafile=cert))
    assert data_url == RED_DATA_URL
    assert recorder.connects == [("127.0.0.1", server.port)]  # TCP to the address the guard checked


async def test_https_with_a_certificate_for_another_name_is_refused(tls_images) -> None:
    server, cert = tls_images
    with pytest.raises(ImageRefused, match="could not be reached"):
        await tls_fetch(server, ssl.create_default_context(cafile=cert), host="127.0.0.1")


async def test_https_with_an_untrusted_certificate_is_refused(tls_images) -> None:
    server, _ = tls_images
    with pytest.raises(ImageRefused, match="could not be reached"):
        await tls_fetch(server, None)  # the default roots do not know the test certificate


# ---- the pieces --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.2", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("2002:a00:1::", False),  # 6to4 around 10.0.0.1
        ("198.18.0.1", False),  # benchmarking: not global
        ("240.0.0.1", False),
    ],
)
def test_forbidden_addresses(ip: str, public: bool) -> None:
    assert (forbidden(ipaddress.ip_address(ip)) is None) is public


class Gate(httpcore.AsyncNetworkBackend):
    """Connects wait at a gate: shows how many fetches are inside the network layer at once."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.active = 0
        self.peak = 0

    async def connect_tcp(self, host: str, port: int, timeout=None, local_address=None, socket_options=None):
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.open.wait()
        finally:
            self.active -= 1
        raise OSError("closed gate")

    async def connect_unix_socket(self, path: str, timeout=None, socket_options=None):
        raise AssertionError

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def until(predicate, rounds: Iterable[int] = range(1000)) -> None:
    for _ in rounds:
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def test_concurrent_fetches_are_bounded() -> None:
    gate = Gate()
    backend = GuardedBackend(resolver=resolver, inner=gate)  # literal addresses: resolved without a thread
    fetcher = ImageFetcher(max_bytes=1024, timeout_s=30, concurrency=2, backend=backend)
    urls = [f"http://93.184.216.34/{i}.png" for i in range(5)]
    tasks = [asyncio.ensure_future(fetcher.fetch(u)) for u in urls]
    await until(lambda: gate.active == 2)
    for _ in range(50):
        await asyncio.sleep(0)  # give a third fetch every chance to get in
    assert gate.peak == 2
    gate.open.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["ImageRefused"] * 5, results
    assert gate.peak == 2
    await fetcher.aclose()
