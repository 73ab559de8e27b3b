"""`python -m app.smoke --base-url URL --key KEY`: does this deployment answer like an OpenAI API right now?

Six checks, one line each, exit status 0 only when all pass (promotion and operators rely on that):
health (`/healthz` says ok), models, a chat completion, a streamed chat completion, a response (`/v1/responses`)
and a CORS preflight from `app://obsidian.md`. `--host-header` reaches an origin behind Cloudflare directly:
the connection goes to --base-url's address while Host and TLS SNI name the public host.

Standard library only: the module ships in the app's wheel and runs on hosts from the release's venv (the
promotion playbook does exactly that), where no test dependency is installed. The key never appears in
the report; `--key -` reads it from stdin so it stays out of process lists too.

exit status: 0 all checks passed · 1 a check failed · 2 usage error
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

CHECKS = ("health", "models", "chat", "chat-stream", "responses", "preflight")
PROMPT = "Reply with the single word: pong"


class Result(msgspec.Struct):
    name: str
    ok: bool
    status: int | None
    seconds: float
    detail: str


class CheckFailed(Exception):
    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Reply(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"not JSON: {self.body[:120]!r}", self.status) from None


class _SniHTTPSConnection(http.client.HTTPSConnection):
    """TCP to the URL's address, TLS with SNI (and certificate name) = the public host name."""

    def __init__(self, host: str, port: int, *, sni: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._sni = sni
        self._ctx = context

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(self.sock, server_hostname=self._sni)


class Client:
    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        host_header: str | None,
        ca_file: str | None,
        insecure: bool,
        timeout: float,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--base-url {base_url!r} must be http(s)://host[:port][/prefix]")
        self.scheme = url.scheme
        self.address = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.key = key
        self.host_header = host_header
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if self.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file)
            if ca_file:
                # The host's own (leaf) origin certificate is enough to pin: trust it even without its CA.
                self.context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            if insecure:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def _connection(self) -> http.client.HTTPConnection:
        if self.context is None:
            return http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)
        sni = self.host_header or self.address
        return _SniHTTPSConnection(self.address, self.port, sni=sni, context=self.context, timeout=self.timeout)

    def _headers(self, extra: dict[str, str], auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "codex-api-smoke/1", **extra}
        if self.host_header:
            headers["Host"] = self.host_header
        if auth:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def request(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None, auth: bool = True
    ) -> Reply:
        conn = self._connection()
        try:
            data = json.dumps(body).encode() if body is not None else None
            extra = {"Content-Type": "application/json"} if data is not None else {}
            all_headers = self._headers({**extra, **(headers or {})}, auth)
            conn.request(method, self.prefix + path, body=data, headers=all_headers)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def stream(self, path: str, body: Any) -> tuple[int, dict[str, str], Iterator[str]]:
        """POST and iterate the SSE `data:` payloads as they arrive (the connection closes with the iterator)."""
        conn = self._connection()
        data = json.dumps(body).encode()
        headers = self._headers({"Content-Type": "application/json", "Accept": "text/event-stream"}, True)
        conn.request("POST", self.prefix + path, body=data, headers=headers)
        resp = conn.getresponse()
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}

        def payloads() -> Iterator[str]:
            try:
                for raw in resp:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    if line.startswith("data:"):
                        yield line[5:].strip()
            finally:
                conn.close()

        if resp.status != 200:
            body_text = resp.read()
            conn.close()
            return resp.status, resp_headers, iter([body_text.decode(errors="replace")])
        return resp.status, resp_headers, payloads()


def _error_of(reply: Reply) -> str:
    try:
        err = json.loads(reply.body)["error"]
        return f"{err.get('code')}: {str(err.get('message'))[:160]}"
    except (ValueError, KeyError, TypeError):
        return reply.body[:160].decode(errors="replace")


def _expect(reply: Reply, status: int = 200) -> Reply:
    if reply.status != status:
        raise CheckFailed(f"HTTP {reply.status} — {_error_of(reply)}", reply.status)
    return reply


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return json.dumps(text[:60] + ("…" if len(text) > 60 else ""), ensure_ascii=False)


class Smoke:
    def __init__(self, client: Client, *, model: str | None, origin: str, expect_backend: str | None) -> None:
        self.client = client
        self.model = model
        self.origin = origin
        self.expect_backend = expect_backend

    def health(self) -> tuple[int, str]:
        body = _expect(self.client.request("GET", "/healthz", auth=False)).json()
        mode = body.get("backend_mode") or (body.get("backend") or {}).get("backend_mode")
        if body.get("ok") is not True:
            reason = (body.get("backend") or {}).get("reason") or "no ready worker"
            raise CheckFailed(f"not ok (backend {mode}): {str(reason)[:160]}", 200)
        if self.expect_backend and mode != self.expect_backend:
            raise CheckFailed(f"backend is {mode}, expected {self.expect_backend}", 200)
        return 200, f"ok, backend {mode}"

    def models(self) -> tuple[int, str]:
        body = _expect(self.client.request("GET", "/v1/models")).json()
        ids = [m.get("id") for m in body.get("data") or [] if isinstance(m, dict)]
        if body.get("object") != "list" or not ids:
            raise CheckFailed("no models listed", 200)
        if self.model is None:
            self.model = ids[0]
        elif self.model not in ids:
            raise CheckFailed(f"{self.model} is not listed ({len(ids)} models)", 200)
        return 200, f"{len(ids)} models, using {self.model}"

    def chat(self) -> tuple[int, str]:
        body = {"model": self.model, "messages": [{"role": "user", "content": PROMPT}]}
        out = _expect(self.client.request("POST", "/v1/chat/completions", body)).json()
        try:
            content = out["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise CheckFailed(f"no choices[0].message.content in {str(out)[:120]}", 200) from None
        if out.get("object") != "chat.completion" or not isinstance(content, str) or not content.strip():
            raise CheckFailed(f"empty or malformed completion: {str(out)[:120]}", 200)
        return 200, _snippet(content)

    def chat_stream(self) -> tuple[int, str]:
        body = {"model": self.model, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
        status, headers, payloads = self.client.stream("/v1/chat/completions", body)
        if status != 200:
            raise CheckFailed(f"HTTP {status} — {_error_of(Reply(status, headers, next(payloads).encode()))}", status)
        if not headers.get("content-type", "").startswith("text/event-stream"):
            raise CheckFailed(f"content-type {headers.get('content-type')!r}, not text/event-stream", status)
        parts, done = [], False
        for data in payloads:
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise CheckFailed(f"error event — {chunk['error'].get('code')}: {chunk['error'].get('message')}", 200)
            for choice in chunk.get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
        text = "".join(parts)
        if not done or not text.strip():
            raise CheckFailed("the stream ended without text and [DONE]" if not done else "no content deltas", 200)
        return 200, _snippet(text)

    def responses(self) -> tuple[int, str]:
        out = _expect(self.client.request("POST", "/v1/responses", {"model": self.model, "input": PROMPT})).json()
        texts = [
            part.get("text", "")
            for item in out.get("output") or []
            if item.get("type") == "message"
            for part in item.get("content") or []
            if part.get("type") == "output_text"
        ]
        if out.get("status") != "completed" or not "".join(texts).strip():
            raise CheckFailed(f"status {out.get('status')!r}, text {''.join(texts)[:60]!r}", 200)
        return 200, _snippet("".join(texts))

    def preflight(self) -> tuple[int, str]:
        headers = {
            "Origin": self.origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        reply = self.client.request("OPTIONS", "/v1/chat/completions", headers=headers, auth=False)
        allowed = reply.headers.get("access-control-allow-origin")
        methods = reply.headers.get("access-control-allow-methods", "")
        if not 200 <= reply.status < 300:
            raise CheckFailed(f"HTTP {reply.status}", reply.status)
        if allowed not in (self.origin, "*"):
            raise CheckFailed(f"Access-Control-Allow-Origin is {allowed!r}, not {self.origin}", reply.status)
        if "POST" not in methods.upper() and methods != "*":
            raise CheckFailed(f"Access-Control-Allow-Methods {methods!r} lacks POST", reply.status)
        return reply.status, f"{self.origin} allowed"

    def run(self, names: list[str]) -> list[Result]:
        table: dict[str, Callable[[], tuple[int, str]]] = {
            "health": self.health,
            "models": self.models,
            "chat": self.chat,
            "chat-stream": self.chat_stream,
            "responses": self.responses,
            "preflight": self.preflight,
        }
        results = []
        for name in names:
            t0 = time.monotonic()
            try:
                status, detail = table[name]()
                results.append(Result(name, True, status, time.monotonic() - t0, detail))
            except CheckFailed as exc:
                results.append(Result(name, False, exc.status, time.monotonic() - t0, exc.detail))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                results.append(Result(name, False, None, time.monotonic() - t0, f"{type(exc).__name__}: {exc}"))
            if name == "models" and self.model is None:
                self.model = "codex-5"  # the listing failed: keep testing generation with the prod default id
        return results


def report(base_url: str, host_header: str | None, results: list[Result]) -> str:
    head = f"smoke {base_url}" + (f" (Host: {host_header})" if host_header else "")
    lines = [head]
    for r in results:
        status = str(r.status) if r.status is not None else "---"
        lines.append(f"  {'ok  ' if r.ok else 'FAIL'}  {r.name:<12} {status:>3}  {r.seconds:6.2f}s  {r.detail}")
    passed = sum(r.ok for r in results)
    lines.append(f"smoke: {passed}/{len(results)} passed" + ("" if passed == len(results) else " — FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.smoke", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:11435 or https://api.example.com")
    parser.add_argument("--key", required=True, help="API key; `-` reads it from stdin")
    parser.add_argument("--host-header", help="public host name for Host and TLS SNI (origin behind Cloudflare)")
    parser.add_argument("--ca-file", help="CA bundle/certificate to verify TLS with (e.g. the origin certificate)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    parser.add_argument("--model", help="model id for the generation checks (default: the first listed)")
    parser.add_argument("--origin", default="app://obsidian.md", help="browser origin for the preflight check")
    parser.add_argument("--expect-backend", help="fail unless /healthz reports this backend_mode (e.g. codex)")
    parser.add_argument("--skip", action="append", default=[], choices=CHECKS, help="leave a check out")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args(argv)
    key = sys.stdin.readline().strip() if args.key == "-" else args.key
    if not key:
        print("smoke: empty key", file=sys.stderr)
        return 2
    try:
        client = Client(
            args.base_url,
            key,
            host_header=args.host_header,
            ca_file=args.ca_file,
            insecure=args.insecure,
            timeout=args.timeout,
        )
    except (ValueError, OSError) as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 2
    smoke = Smoke(client, model=args.model, origin=args.origin, expect_backend=args.expect_backend)
    results = smoke.run([c for c in CHECKS if c not in args.skip])
    print(report(args.base_url, args.host_header, results), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
