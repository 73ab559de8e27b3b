"""Remote image URLs, fetched server-side and turned into data URLs — behind an SSRF guard.

Codex app-server takes images only as data URLs, while clients send `https://…` images all the time. The server
fetches them for the client (PROXY_FETCH_IMAGE_URLS, default on), and because the fetch runs on the server's
network it must never become a way into that network (SSRF):

- **http and https only**; a URL's host is resolved **once** and the connection goes to the resolved address
  (TLS still verifies the host name), so a DNS answer cannot change between the check and the connect
  (rebinding). Every resolved address must be public: loopback, private (RFC 1918), link-local (169.254.0.0/16,
  fe80::/10 — cloud metadata lives there), unique-local (fc00::/7), CGNAT (100.64.0.0/10), multicast,
  unspecified and other non-global ranges are refused, also when embedded in IPv6 (mapped, 6to4, Teredo).
  The check sits in the connection layer itself (`GuardedBackend.connect_tcp`), so nothing can connect around it.
- **Redirects** are followed by hand, at most 3, each new URL checked the same way.
- **Bounded**: `PROXY_IMAGE_MAX_BYTES` (Content-Length and the bytes actually read), one total timeout per image
  (`PROXY_IMAGE_FETCH_TIMEOUT_MS`, redirects included), at most `PROXY_IMAGE_FETCH_CONCURRENCY` fetches at once
  across the server; no proxy from the environment, no cookies, no keep-alive.
- The **MIME type comes from the bytes** (PNG, JPEG, GIF, WebP), never from the server's Content-Type.

`PROXY_IMAGE_FETCH_TEST_ALLOWLIST` (ip:port pairs; refused in prod) exempts exact addresses from the address
check, so a test can serve an image from loopback.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOBackend  # the public alias is conditional, which type checkers lose

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CGNAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
HEADERS = [(b"Accept", b"image/png, image/jpeg, image/gif, image/webp"), (b"User-Agent", b"codex-openai-api")]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class ImageRefused(Exception):
    """The image was not fetched; `reason` says why in words a client can act on."""

    def __init__(self, reason: str, url: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url  # set by ImageFetcher.fetch: the URL the client sent


def forbidden(ip: IP) -> str | None:
    """Why a connection to `ip` is refused, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if embedded is not None and (reason := forbidden(embedded)):
                return f"{reason} (embedded in {ip})"
        if ip in UNIQUE_LOCAL:
            return "a unique-local address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


def sniff(data: bytes) -> str | None:
    """The image type from the first bytes (PNG, JPEG, GIF, WebP), or None."""
    for signature, mime in SIGNATURES:
        if data.startswith(signature):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]


def parse_allowlist(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    """`ip:port` / `[v6]:port` entries (validated by app.settings) as (normalised ip, port) pairs."""
    pairs: set[tuple[str, int]] = set()
    for entry in entries:
        host, _, port = entry.rpartition(":")
        pairs.add((str(ipaddress.ip_address(host.strip("[]"))), int(port)))
    return frozenset(pairs)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer with the address check: resolve once, check every address, connect to one."""

    def __init__(
        self,
        allow: frozenset[tuple[str, int]] = frozenset(),
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow = allow
        self.resolver = resolver
        self.inner: httpcore.AsyncNetworkBackend = inner or AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [ipaddress.ip_address(a) for a in await self.resolver(host, port)]
        except (OSError, ValueError):
            raise ImageRefused(f"the host {host!r} could not be resolved") from None
        if not addresses:
            raise ImageRefused(f"the host {host!r} could not be resolved")
        for ip in addresses:
            if (str(ip), port) in self.allow:
                continue
            if reason := forbidden(ip):
                raise ImageRefused(f"the host {host!r} resolves to {ip}, {reason}")
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise ImageRefused("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class ImageFetcher:
    """Fetches http(s) images into data URLs; one per app (its pool and its concurrency bound are shared)."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout_s: float,
        concurrency: int,
        backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,  # None: certifi's roots, host names verified (tests pass theirs)
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            network_backend=backend or GuardedBackend(),
            max_connections=concurrency,
            max_keepalive_connections=0,
            retries=0,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(self, url: str) -> str:
        """The image at `url` as a data URL; ImageRefused (never anything else) when it cannot be used."""
        try:
            return await self._fetch(url)
        except ImageRefused as exc:
            raise ImageRefused(exc.reason, url) from None

    async def _fetch(self, url: str) -> str:
        async with self._slots:
            try:
                with anyio.fail_after(self.timeout_s):
                    return await self._follow(url)
            except TimeoutError:
                raise ImageRefused(f"fetching it took longer than {self.timeout_s:g} s") from None
            except httpcore.TimeoutException:
                raise ImageRefused(f"fetching it took longer than {self.timeout_s:g} s") from None
            except httpcore.UnsupportedProtocol:
                raise ImageRefused("only http and https image URLs are fetched") from None
            except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError, OSError) as exc:
                raise ImageRefused(f"the image server could not be reached ({type(exc).__name__})") from None

    async def fetch_all(self, urls: Sequence[str]) -> dict[str, str]:
        """Every URL (concurrently, within the shared bound); the first failure in `urls` order cancels the rest."""
        tasks = [asyncio.ensure_future(self.fetch(u)) for u in urls]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                    raise error
            return {u: t.result() for u, t in zip(urls, tasks, strict=True)}
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, url: str) -> str:
        current = _url(url)
        for _ in range(MAX_REDIRECTS + 1):
            target = httpcore.URL(
                scheme=current.raw_scheme, host=current.raw_host, port=current.port, target=current.raw_path
            )
            async with self._pool.stream("GET", target, headers=HEADERS) as response:
                if response.status in REDIRECTS:
                    location = _header(response.headers, b"location")
                    if not location:
                        raise ImageRefused(f"the image server answered HTTP {response.status} without a Location")
                    current = _url(str(current.join(location)))
                    continue
                if not 200 <= response.status < 300:
                    raise ImageRefused(f"the image server answered HTTP {response.status}")
                return await self._read(response)
        raise ImageRefused(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: httpcore.Response) -> str:
        declared = _header(response.headers, b"content-length")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ImageRefused(f"the image is {int(declared)} bytes, more than PROXY_IMAGE_MAX_BYTES={self.max_bytes}")
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > self.max_bytes:
                raise ImageRefused(f"the image is larger than PROXY_IMAGE_MAX_BYTES={self.max_bytes}")
        mime = sniff(bytes(body[:16]))
        if mime is None:
            raise ImageRefused("the URL did not return a PNG, JPEG, GIF or WebP image")
        return f"data:{mime};base64,{base64.b64encode(body).decode()}"


def _url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        raise ImageRefused("the image URL is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ImageRefused("only http and https image URLs are fetched")
    return url


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""
