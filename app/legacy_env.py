"""The older Node implementation's environment variables (parity.md §12), each with exactly one fate here.

Operators move over by pointing their existing environment file at this app, so nothing they set may be
ignored silently (issue 12):

- `honoured`: read by `Settings.from_env` with the same meaning under the same name;
- `renamed`: the old name is accepted as an alias of ours (ours wins when both are set), with one startup warning;
- `obsolete`: not applicable here (the reason says why), one startup warning when it is set; `until` names the
  issue that will implement it, so the entry flips to `honoured` when that lands;
- `refused`: setting it to anything but one of its `harmless` values stops startup with the message; a harmless
  value (it asks for this app's only behaviour) gets one warning instead.

Which variables this app reads is *not* listed here: `Settings.from_env` reads through a recording mapping and
whatever its readers looked up counts as known. A variable another branch adds to the readers is known
without touching this file; `tests/unit/test_legacy_env.py` fails when an entry below is not `honoured` but
the readers read it (flip it), or is `honoured` and they don't. An entry with `until` names the issue that is
implementing it (none pending now). Unknown `PROXY_*` / `WORKER_*` / `CODEX_*`
variables get one warning that lists them all (typos). An empty value counts as unset, as in the readers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping
from typing import Literal

import msgspec

Fate = Literal["honoured", "renamed", "obsolete", "refused"]
PREFIXES = ("PROXY_", "WORKER_", "CODEX_")
_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


class Legacy(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # a trailing `*` matches every variable with that prefix
    fate: Fate
    why: str  # one line: the meaning (honoured), or why it is obsolete / refused
    new: str | None = None  # renamed: our variable
    harmless: tuple[str, ...] = ()  # refused: values that ask for nothing this app does not do already
    until: str | None = None  # obsolete for now: the issue that implements it (flip to honoured then)


def _h(name: str, why: str) -> Legacy:
    return Legacy(name=name, fate="honoured", why=why)


def _r(name: str, new: str, why: str = "") -> Legacy:
    return Legacy(name=name, fate="renamed", new=new, why=why or f"same meaning as {new}")


def _o(name: str, why: str, until: str | None = None) -> Legacy:
    return Legacy(name=name, fate="obsolete", why=why, until=until)


def _x(name: str, why: str, harmless: tuple[str, ...] = _OFF) -> Legacy:
    return Legacy(name=name, fate="refused", why=why, harmless=harmless)


_TRACE = "Node dev trace of the v1 protocol; here: PROXY_LOG_LEVEL=DEBUG and OTLP tracing (PROXY_ENABLE_OTEL)"
_TRANSCRIPT = "prompts and completions are never written to disk"
_PER_KEY = "the fixed-window limiter is replaced by per-key limits: PROXY_KEY_REQUESTS_PER_MINUTE (docs/gateway.md)"
_COMPOSE = "compose/script variable of the old deployment; hosts are provisioned by Ansible here (docs/deploy.md)"

TABLE: tuple[Legacy, ...] = (
    # -- server, auth, environment
    _h("PORT", "listen port"),
    _h("PROXY_HOST", "bind address (default 127.0.0.1 here, was 0.0.0.0)"),
    _r(
        "PROXY_TRUST_PROXY",
        "PROXY_TRUSTED_PROXIES",
        "Express `trust proxy`: `loopback`/`linklocal`/`uniquelocal`/addresses become CIDRs; `true` or a hop count "
        "is refused (any client could then set X-Auth-User)",
    ),
    _h("PROXY_API_KEY", "bearer key for /v1/*"),
    _h("PROXY_ENV", "dev or prod (other values are refused)"),
    _h("NODE_ENV", "`production` with PROXY_ENV unset means prod, as before"),
    _h("PROXY_PROTECT_MODELS", "bearer on /v1/models"),
    _h("PROXY_ENABLE_RESPONSES", "serve /v1/responses"),
    _h("PROXY_ENABLE_CORS", "in-app CORS headers"),
    _h("PROXY_CORS_ALLOWED_ORIGINS", "CORS allowlist"),
    _o("PROXY_LOG_CORS_ORIGIN", "the access log lists every request the app sees; preflights end at the edge"),
    # -- codex and the worker
    _h("CODEX_MODEL", "model behind codex-5 / codev-5"),
    _h("CODEX_BIN", "the codex executable"),
    _h("CODEX_HOME", "the Codex home"),
    _h("PROXY_CODEX_WORKDIR", "the children's working directory"),
    _h("PROXY_SANDBOX_MODE", "codex sandbox; danger-full-access needs PROXY_ALLOW_DANGER_FULL_ACCESS=true"),
    _h("PROXY_APPROVAL_POLICY", "codex approval policy (never, on-request, untrusted); every approval is declined"),
    _r("CODEX_APPROVAL_POLICY", "PROXY_APPROVAL_POLICY", "the old fallback name of PROXY_APPROVAL_POLICY"),
    _h("CODEX_FORCE_PROVIDER", "worker `-c model_provider=`; a provider from CODEX_HOME/config.toml"),
    _x(
        "PROXY_USE_APP_SERVER",
        "this app always serves through codex app-server; to take a host out of service use PROXY_MAINTENANCE_MODE",
        harmless=_ON,
    ),
    _o("PROXY_ENABLE_PARALLEL_TOOL_CALLS", "parallel tool calls follow each request's `parallel_tool_calls`"),
    _o("PROXY_TITLE_SUMMARY_EXEC_MODEL", "no title/summary intercept: such requests are ordinary turns"),
    _o("PROXY_TITLE_SUMMARY_EXEC_REASONING_EFFORT", "no title/summary intercept: such requests are ordinary turns"),
    _o("PROXY_TITLE_GEN_INTERCEPT", "no title/summary intercept: such requests are ordinary turns"),
    _o("PROXY_INGRESS_GUARDRAIL", "history is injected as typed items; no proxy-written system message is added"),
    _h("PROXY_IGNORE_CLIENT_SYSTEM_PROMPT", "drop client system prompts (default false here, was true)"),
    # -- streaming, output modes, tools
    _h("PROXY_DEFAULT_STREAM", "chat completions stream when the request does not say"),
    _h("PROXY_SSE_KEEPALIVE_MS", "keepalive comment interval"),
    _h("PROXY_SSE_MAX_CONCURRENCY", "open SSE streams before 429"),
    _h("PROXY_OUTPUT_MODE", "chat output mode: openai-json (default here) or obsidian-xml"),
    _h("PROXY_RESPONSES_OUTPUT_MODE", "responses output mode"),
    _o(
        "PROXY_COPILOT_AUTO_DETECT",
        "no client sniffing; the output mode is chosen per request (x-proxy-output-mode) or per route",
    ),
    _h("PROXY_STOP_AFTER_TOOLS", "enforce stop-after-tools on structured calls"),
    _h("PROXY_STOP_AFTER_TOOLS_MODE", "first or burst"),
    _h("PROXY_STOP_AFTER_TOOLS_GRACE_MS", "burst grace window"),
    _h("PROXY_SUPPRESS_TAIL_AFTER_TOOLS", "drop text written after the first call"),
    _h("PROXY_TOOL_BLOCK_MAX", "cap on calls per response"),
    _o("PROXY_TOOL_BLOCK_DEDUP", "calls are structured items with unique ids; there are no text blocks to deduplicate"),
    _o("PROXY_TOOL_BLOCK_DELIMITER", "obsidian-xml blocks are separated by a blank line, fixed"),
    _o("PROXY_RESPONSES_DEFAULT_MAX_TOKENS", "codex has no per-turn output cap to apply it to (README Known limits)"),
    _o("PROXY_SANITIZE_METADATA", "the v1-protocol metadata lines it stripped do not occur with app-server v2"),
    _o("PROXY_MAX_CHAT_CHOICES", "one codex turn per request: n>1 is refused with a 400"),
    _o(
        "PROXY_MAX_PROMPT_TOKENS",
        "prompt tokens are counted by codex, not estimated; bound bodies: PROXY_MAX_BODY_BYTES",
    ),
    _o(
        "PROXY_NONSTREAM_TRUNCATE_AFTER_MS",
        "a truncated 200 would be a wrong success; non-stream requests run to PROXY_TIMEOUT_MS (stream behind CDNs)",
    ),
    _x("PROXY_AUTH_LOGIN_URL", "the server's login flow is never handed to API clients (docs/deploy.md)"),
    _o("PROXY_AUTH_LOGIN_URL_MODE", "login URLs are never attached to errors"),
    # -- timeouts and the supervisor
    _h("PROXY_TIMEOUT_MS", "overall request time"),
    _h("PROXY_IDLE_TIMEOUT_MS", "non-stream idle time (default 300000 here, was 15000)"),
    _h("PROXY_STREAM_IDLE_TIMEOUT_MS", "stream idle time"),
    _h("PROXY_KILL_ON_DISCONNECT", "default true here: a disconnect interrupts the turn; false lets it finish"),
    _h("WORKER_BACKOFF_INITIAL_MS", "restart backoff start"),
    _h("WORKER_BACKOFF_MAX_MS", "restart backoff cap"),
    _h("WORKER_RESTART_MAX", "consecutive failures before a worker is given up (was a lifetime cap); /readyz says so"),
    _h("WORKER_STARTUP_TIMEOUT_MS", "spawn-to-ready deadline"),
    _h("WORKER_HANDSHAKE_TIMEOUT_MS", "`initialize` deadline"),
    _h("WORKER_SHUTDOWN_GRACE_MS", "stop-stage wait"),
    _h("WORKER_MAX_CONCURRENCY", "turns per worker before 429 worker_busy"),
    _h("WORKER_REQUEST_TIMEOUT_MS", "per-RPC deadline"),
    # -- limits, metrics, usage, operations
    _o("PROXY_RATE_LIMIT_ENABLED", _PER_KEY),
    _o("PROXY_RATE_LIMIT_WINDOW_MS", _PER_KEY),
    _o("PROXY_RATE_LIMIT_MAX", _PER_KEY),
    _h("PROXY_ENABLE_METRICS", "serve /metrics (default true here, was false)"),
    _h("PROXY_METRICS_TOKEN", "bearer that opens /metrics beyond loopback"),
    _h("PROXY_METRICS_ALLOW_LOOPBACK", "loopback clients read /metrics without the token"),
    _x("PROXY_METRICS_ALLOW_UNAUTH", "metrics are never open to everyone: use PROXY_METRICS_TOKEN"),
    _h("PROXY_MAINTENANCE_MODE", "maintenance: generation routes 503 and /readyz 503 (was only a gauge)"),
    _x("PROXY_TEST_ENDPOINTS", "there are no /__test endpoints in this app"),
    _x("PROXY_TEST_ALLOW_REMOTE", "there are no /__test endpoints in this app"),
    _h("PROXY_USAGE_ALLOW_UNAUTH", "open /v1/usage without the bearer; dev only (refused in prod)"),
    _r("TOKEN_LOG_PATH", "PROXY_USAGE_LOG", "the usage NDJSON file; records in this app's format, README /v1/usage"),
    _x("PROXY_CAPTURE_CHAT_TRANSCRIPTS", _TRANSCRIPT),
    _x("PROXY_CAPTURE_RESPONSES_TRANSCRIPTS", _TRANSCRIPT),
    _x("PROXY_CAPTURE_CHAT_RAW_TRANSCRIPTS", _TRANSCRIPT),
    _x("PROXY_CAPTURE_RESPONSES_RAW_TRANSCRIPTS", _TRANSCRIPT),
    _o("PROXY_CAPTURE_CHAT_TRANSCRIPTS_DIR", _TRANSCRIPT),
    _o("PROXY_CAPTURE_RESPONSES_TRANSCRIPTS_DIR", _TRANSCRIPT),
    _o("PROXY_CAPTURE_CHAT_RAW_TRANSCRIPTS_DIR", _TRANSCRIPT),
    _o("PROXY_CAPTURE_RESPONSES_RAW_TRANSCRIPTS_DIR", _TRANSCRIPT),
    _o("PROTO_LOG_PATH", _TRACE),
    _o("PROXY_LOG_PROTO", _TRACE),
    _o("PROXY_TRACE_REQUIRED", _TRACE),
    _o("PROXY_TRACE_BODY_LIMIT", _TRACE),
    _o("PROXY_DEBUG_WIRE", _TRACE),
    _o("SANITIZER_LOG_PATH", "no metadata sanitizer (PROXY_SANITIZE_METADATA is obsolete)"),
    _o("SANITIZER_LOG_BASE_DIR", "no metadata sanitizer (PROXY_SANITIZE_METADATA is obsolete)"),
    _o("PROXY_LOG_REDACT", "keys, cookies and login URLs are always redacted"),
    _o("PROXY_TRACE_REDACT", "keys, cookies and login URLs are always redacted"),
    _h("PROXY_ENABLE_OTEL", "OTLP/HTTP tracing on"),
    _h("OTEL_ENABLED", "OTLP/HTTP tracing on (when PROXY_ENABLE_OTEL is unset)"),
    _h("PROXY_OTEL_EXPORTER_URL", "the collector's traces URL"),
    _h("OTEL_EXPORTER_OTLP_ENDPOINT", "the collector's base URL (`/v1/traces` is appended), when the above is unset"),
    _h("PROXY_OTEL_SERVICE_NAME", "service.name of the spans (default codex-openai-api, was codex-app-server-proxy)"),
    _o("STREAM_RELEASE_FILE", "test-harness file of the old implementation"),
    _o("STREAM_READY_FILE", "test-harness file of the old implementation"),
    # -- compose/script-only variables of the old deployment
    *(
        _o(name, _COMPOSE)
        for name in (
            "DOMAIN",
            "DEV_DOMAIN",
            "RESPONSES_DOMAIN",
            "RESPONSES_PORT",
            "RESPONSES_HOST_PORT",
            "RESPONSES_CORS_ALLOWED_ORIGINS",
            "DEV_PORT",
            "IMAGE",
            "KEY",
            "SMOKE_*",
            "METRICS_ENDPOINT",
            "METRICS_TOKEN",
            "CONFIRM_DEPLOY",
            "BACKUP_DIR",
        )
    ),
    *(
        _o(name, "Traefik's rate limit is set in traefik.env here (RATE_LIMIT_AVERAGE / RATE_LIMIT_BURST)")
        for name in ("RATE_LIMIT_AVG", "RATE_LIMIT_BURST", "DEV_RATE_LIMIT_AVG", "DEV_RATE_LIMIT_BURST")
    ),
    _o("AUTH_REALM", "read by authd (authd.env), not by the app"),
)

# CODEX_* variables the codex binary itself reads: they reach the children (only the proxy's secrets are scrubbed).
CODEX_PASSTHROUGH = frozenset({"CODEX_CA_CERTIFICATE", "CODEX_SQLITE_HOME", "CODEX_API_KEY", "CODEX_ACCESS_TOKEN"})
# Read by this repository's own tooling (tests/infra, bench), not by the app.
TOOLING = frozenset({"CODEX_API_ARTIFACTS"})


def entry(name: str) -> Legacy | None:
    """The table entry for `name` (exact, or a `PREFIX*` entry)."""
    for item in TABLE:
        if item.name == name or (item.name.endswith("*") and name.startswith(item.name[:-1])):
            return item
    return None


def _trusted_proxies(value: str) -> str:
    """Express `trust proxy` → our CIDR list; raises ValueError for values that would trust any client."""
    keywords = {
        "loopback": ("127.0.0.1/8", "::1/128"),
        "linklocal": ("169.254.0.0/16", "fe80::/10"),
        "uniquelocal": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    }
    if value.strip().lower() in _OFF:
        return ""
    nets: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part.lower() in keywords:
            nets += keywords[part.lower()]
            continue
        try:
            nets.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(
                f"PROXY_TRUST_PROXY={value!r} cannot be honoured: only loopback/linklocal/uniquelocal and addresses "
                "are (`true` or a hop count would let any client set X-Auth-User); set PROXY_TRUSTED_PROXIES"
            ) from None
    return ",".join(nets)


_TRANSLATE: dict[str, Callable[[str], str]] = {"PROXY_TRUST_PROXY": _trusted_proxies}


class Review(msgspec.Struct):
    warnings: list[str]
    refusals: list[str]


def with_aliases(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """A copy of the environment where each set renamed variable fills in its new name (ours wins when both are
    set); plus the refusals of alias values that cannot be translated."""
    env = dict(environ)
    refusals: list[str] = []
    for item in TABLE:
        value = environ.get(item.name, "")
        if item.fate != "renamed" or item.new is None or not value or environ.get(item.new):
            continue
        try:
            env[item.new] = _TRANSLATE[item.name](value) if item.name in _TRANSLATE else value
        except ValueError as exc:
            refusals.append(str(exc))
    return env, refusals


def review(environ: Mapping[str, str], read: Collection[str]) -> Review:
    """One warning per set renamed/obsolete variable (and harmless refused value), one refusal per refused value,
    one warning listing unknown PROXY_*/WORKER_*/CODEX_* variables. `read` is what the settings readers read:
    those are honoured whatever the table says."""
    warnings: list[str] = []
    refusals: list[str] = []
    unknown: list[str] = []
    for name in sorted(environ):
        value = environ[name]
        if not value.strip() or name in read:
            continue
        item = entry(name)
        if item is None:
            if name.startswith(PREFIXES) and name not in CODEX_PASSTHROUGH | TOOLING:
                unknown.append(name)
        elif item.fate == "renamed":
            both = f"; {item.new} is set too and wins" if environ.get(item.new or "") else ""
            warnings.append(f"{name} is the older name of {item.new}, used as such ({item.why}); rename it{both}")
        elif item.fate == "obsolete":
            if item.until:
                warnings.append(f"{name} is not applied by this app yet ({item.until}): {item.why}")
            else:
                warnings.append(f"{name} is not used by this app: {item.why}; remove it")
        elif item.fate == "refused":
            if value.strip().lower() in item.harmless:
                warnings.append(f"{name}={value} is this app's only behaviour ({item.why}); remove it")
            else:
                refusals.append(f"{name}={value} cannot be honoured: {item.why}; remove it")
    if unknown:
        warnings.append(
            "unknown variables, not read by this app (a typo? see the README's configuration and migration tables): "
            + ", ".join(unknown)
        )
    return Review(warnings=warnings, refusals=refusals)
