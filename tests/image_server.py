"""A local image server for the remote-image tests, and a listener that proves nothing connected to it.

`ImageServer` serves fixed routes on 127.0.0.1 from a thread (the in-process app and the Granian app both reach
it): `/red.png`, `/redirect?to=<url>`, `/loop`, `/big` (a Content-Length over any limit), `/big-unsized` (too many
bytes, no length), `/html` (HTML that claims to be image/png), `/hang` (never answers), `/missing` (404).
It counts requests per path.

`Tripwire` is a bound, listening socket nobody accepts on: the kernel completes any TCP handshake into its backlog,
so a non-blocking `accept()` afterwards tells whether anything connected — without a thread or a timing window.
"""

from __future__ import annotations

import base64
import socket
import ssl
import struct
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


RED = png()
RED_DATA_URL = "data:image/png;base64," + base64.b64encode(RED).decode()
BIG = 1 << 30


class ImageServer:
    """`tls=(cert, key)` serves https instead (for the certificate checks)."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.hits: Counter[str] = Counter()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close-delimited bodies, so /big-unsized needs no length

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                server.hits[url.path] += 1
                route = getattr(server, "route_" + url.path.strip("/").replace("-", "_").replace(".", "_"), None)
                if route is None:
                    self.send_error(404)
                    return
                route(self, parse_qs(url.query))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="image-server", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ImageServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    # ---- routes ----

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str, length: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)

    def route_red_png(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        self._send(h, 200, RED, "application/octet-stream")  # the type comes from the bytes, not this header

    def route_redirect(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        h.send_response(302)
        h.send_header("Location", q["to"][0])
        h.send_header("Content-Length", "0")
        h.end_headers()

    def route_loop(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        h.send_response(302)
        h.send_header("Location", "/loop")
        h.send_header("Content-Length", "0")
        h.end_headers()

    def route_big(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        self._send(h, 200, RED, "image/png", length=BIG)

    def route_big_unsized(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.end_headers()
        h.wfile.write(RED + b"\x00" * (64 * 1024))

    def route_html(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        self._send(h, 200, b"<html><body>not an image</body></html>", "image/png")

    def route_hang(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        self.stopping.wait(60)

    def route_missing(self, h: BaseHTTPRequestHandler, q: dict[str, list[str]]) -> None:
        self._send(h, 404, b"no", "text/plain")


class Tripwire:
    """A listening socket on `host` that nobody accepts on; `connected()` says whether anything connected."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.host = host
        self.port = self.sock.getsockname()[1]

    def url(self, path: str = "/x.png") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def connected(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()
