"""Settings: the only place environment variables are read.

`Settings.from_env()` is called once by the app factory (and by `python -m app`); tests build a `Settings`
directly with `Settings.for_tests(...)`/`msgspec.structs.replace`. Every variable is listed in the README's
configuration table, with the same default as here.

The readers read through `_Env`, which records every name they look up: that record *is* the set of variables
this app knows, so the older implementation's variables (app.legacy_env) and unknown `PROXY_*`/`WORKER_*`/
`CODEX_*` names are told apart without a hand-kept list. Read each variable unconditionally (no `if` around a
lookup), so a set variable is never reported unknown just because another one is off.
"""

from __future__ import annotations

import ipaddress
import os
import platform
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import msgspec

from app import legacy_env, model_ids

REPO_ROOT = Path(__file__).resolve().parent.parent
# The old public dev key: refused in prod; dev now generates a private one (app.devkey) when none is set.
OutputModeName = Literal["openai-json", "obsidian-xml"]
# The spellings the older implementation accepted (parity.md §4.2), for the env vars and `x-proxy-output-mode`.
OUTPUT_MODE_SPELLINGS: dict[str, OutputModeName] = {
    "openai-json": "openai-json",
    "openai_json": "openai-json",
    "openai": "openai-json",
    "obsidian-xml": "obsidian-xml",
    "obsidian_xml": "obsidian-xml",
    "obsidian": "obsidian-xml",
}
DEV_API_KEY = "codex-local-secret"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
# codex 0.169.0 has no `on-failure` any more (AskForApproval in app/codex/schema); the old value is refused by name.
APPROVAL_POLICIES = ("never", "on-request", "untrusted")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the message names the variable and the fix."""


def default_codex_bin() -> str:
    """The static binary inside the pinned npm package (no Node at run time)."""
    arch = platform.machine().lower()
    if arch in {"aarch64", "arm64"}:
        pkg, triple = "codex-linux-arm64", "aarch64-unknown-linux-musl"
    else:
        pkg, triple = "codex-linux-x64", "x86_64-unknown-linux-musl"
    return str(REPO_ROOT / "codex-cli" / "node_modules" / "@openai" / pkg / "vendor" / triple / "bin" / "codex")


def repo_cors_origins() -> tuple[str, ...]:
    """The one allowlist, cors-origins.txt at the repo root (empty where the file is not shipped: deployments set
    PROXY_CORS_ALLOWED_ORIGINS from it explicitly)."""
    path = REPO_ROOT / "cors-origins.txt"
    if not path.is_file():
        return ()
    lines = (line.strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 11435
    log_level: str = "INFO"
    log_json: bool = False

    # Auth and edge trust. An empty key in dev means: use the generated dev key (app.devkey).
    api_key: str = ""
    api_keys_file: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    protect_models: bool = False
    allowed_hosts: tuple[str, ...] = ()

    # Codex.
    codex_bin: str = msgspec.field(default_factory=default_codex_bin)
    codex_home: str = ".codev"
    codex_workdir: str | None = None
    codex_state_dir: str | None = None
    codex_model: str = "gpt-5.2"
    backend: Literal["auto", "codex", "offline"] = "auto"
    offline_model_url: str | None = None
    # How often the backend looks at CODEX_HOME/auth.json (a new login, a re-login after a rejection).
    login_poll_ms: int = 2000

    # Worker pool.
    worker_count: int = 2
    worker_max_concurrency: int = 32  # from bench/report.md section 4: a worker holds 512 waiting turns
    worker_queue_timeout_ms: int = 2000
    worker_startup_timeout_ms: int = 30000
    worker_request_timeout_ms: int = 20000
    worker_backoff_initial_ms: int = 500
    worker_backoff_max_ms: int = 10000
    worker_healthy_reset_ms: int = 30000
    worker_crash_loop_failures: int = 5
    worker_shutdown_grace_ms: int = 3000
    worker_overload_retries: int = 3
    worker_max_turns: int = 1000
    worker_max_rss_mb: int = 1024

    # Requests.
    enable_responses: bool = True
    ignore_client_system_prompt: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    max_json_depth: int = 64
    max_input_items: int = 4096
    max_content_parts: int = 16384
    max_text_bytes: int = 4 * 1024 * 1024
    max_tools: int = 128
    request_timeout_ms: int = 300000
    stream_idle_timeout_ms: int = 300000
    idle_timeout_ms: int = 300000
    sse_keepalive_ms: int = 15000
    sse_max_concurrency: int = 64
    max_connections: int = 0  # 0: automatic (see `connection_cap`)
    usage_grace_ms: int = 250
    # Client model names (lower-case) → the advertised id they run as; accepted, never advertised.
    model_aliases: tuple[tuple[str, str], ...] = ()

    # Per-key limits (defaults; the keys file can set each per key). 0 = unlimited / automatic.
    key_requests_per_minute: int = 600
    key_max_concurrent: int = 0  # 0: the pool's capacity with one key, a fair share of it with several
    key_tokens_per_day: int = 0

    # Client compatibility (docs/chat.md): output modes, stop-after-tools, reasoning, remote images.
    output_mode: OutputModeName = "openai-json"
    responses_output_mode: OutputModeName = "openai-json"
    stop_after_tools: bool = False
    stop_after_tools_mode: Literal["burst", "first"] = "burst"
    stop_after_tools_grace_ms: int = 300
    suppress_tail_after_tools: bool = False
    tool_block_max: int = 0
    expose_reasoning: bool = True
    fetch_image_urls: bool = True
    image_max_bytes: int = 5 * 1024 * 1024
    image_fetch_timeout_ms: int = 10000
    image_fetch_concurrency: int = 4
    image_fetch_test_allowlist: tuple[str, ...] = ()  # "ip:port" pairs exempt from the address guard (tests only)

    # Operations.
    usage_log: str | None = None
    usage_log_max_bytes: int = 64 * 1024 * 1024
    usage_log_max_files: int = 8
    enable_metrics: bool = True
    metrics_token: str = ""

    # CORS in the app (Traefik and the Worker enforce the same allowlist at the edge).
    enable_cors: bool = True
    cors_allowed_origins: tuple[str, ...] = msgspec.field(default_factory=repo_cors_origins)

    # Brought over from the older implementation (issue 12; README migration table).
    sandbox_mode: str = "read-only"
    allow_danger_full_access: bool = False
    approval_policy: str = "never"
    force_provider: str | None = None
    default_stream: bool = False
    worker_handshake_timeout_ms: int = 0  # 0: the startup timeout bounds `initialize`
    worker_restart_max: int = 0  # consecutive failures before a worker is given up; 0 = never
    kill_on_disconnect: bool = True
    usage_allow_unauth: bool = False
    metrics_allow_loopback: bool = True
    maintenance_mode: bool = False
    maintenance_file: str | None = None
    maintenance_retry_after_s: int = 60
    otel_enabled: bool = False
    otel_endpoint: str | None = None  # the full traces URL
    otel_service_name: str = "codex-openai-api"
    # What from_env noticed about the older implementation's variables; create_app logs each once.
    startup_warnings: tuple[str, ...] = ()

    @property
    def codex_home_path(self) -> Path:
        return Path(self.codex_home).expanduser().resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, check: bool = True) -> Settings:
        """Read every PROXY_*/CODEX_*/WORKER_* variable; raise ConfigError naming the bad one.

        `check=False` skips the serving-safety checks (the API key) for tools that only need paths, such as
        `python -m app.login`."""
        raw = os.environ if environ is None else environ
        aliased, refusals = legacy_env.with_aliases(raw)
        e = _Env(aliased)
        node_prod = e.get("NODE_ENV", "").strip().lower() == "production"  # the old prod-like rule, PROXY_ENV unset
        env = _choice(e, "PROXY_ENV", "prod" if node_prod else "dev", ("dev", "prod"))
        prod = env == "prod"
        settings = cls(
            env=env,  # type: ignore[arg-type]
            host=e.get("PROXY_HOST", "127.0.0.1"),
            port=_int(e, "PORT", 11435, lo=1, hi=65535),
            log_level=_log_level(e, "PROXY_LOG_LEVEL"),
            log_json=_bool(e, "PROXY_LOG_JSON", prod),
            api_key=e.get("PROXY_API_KEY", ""),
            api_keys_file=e.get("PROXY_API_KEYS_FILE") or None,
            trusted_proxies=_list(e, "PROXY_TRUSTED_PROXIES", ("127.0.0.1/32", "::1/128")),
            protect_models=_bool(e, "PROXY_PROTECT_MODELS", False),
            allowed_hosts=_list(e, "PROXY_ALLOWED_HOSTS", ()),
            codex_bin=e.get("CODEX_BIN") or default_codex_bin(),
            codex_home=e.get("CODEX_HOME") or (".codex-api" if prod else ".codev"),
            codex_workdir=e.get("PROXY_CODEX_WORKDIR") or None,
            codex_state_dir=e.get("PROXY_CODEX_STATE_DIR") or None,
            codex_model=e.get("CODEX_MODEL", "gpt-5.2"),
            backend=_choice(e, "PROXY_BACKEND", "auto", ("auto", "codex", "offline")),  # type: ignore[arg-type]
            offline_model_url=e.get("PROXY_OFFLINE_MODEL_URL") or None,
            login_poll_ms=_int(e, "PROXY_LOGIN_POLL_MS", 2000, lo=50),
            worker_count=_int(e, "PROXY_WORKER_COUNT", 2, lo=1, hi=64),
            worker_max_concurrency=_int(e, "WORKER_MAX_CONCURRENCY", 32, lo=1),
            worker_queue_timeout_ms=_int(e, "WORKER_QUEUE_TIMEOUT_MS", 2000, lo=0),
            worker_startup_timeout_ms=_int(e, "WORKER_STARTUP_TIMEOUT_MS", 30000, lo=100),
            worker_request_timeout_ms=_int(e, "WORKER_REQUEST_TIMEOUT_MS", 20000, lo=100),
            worker_backoff_initial_ms=_int(e, "WORKER_BACKOFF_INITIAL_MS", 500, lo=1),
            worker_backoff_max_ms=_int(e, "WORKER_BACKOFF_MAX_MS", 10000, lo=1),
            worker_healthy_reset_ms=_int(e, "WORKER_HEALTHY_RESET_MS", 30000, lo=0),
            worker_crash_loop_failures=_int(e, "WORKER_CRASH_LOOP_FAILURES", 5, lo=1),
            worker_shutdown_grace_ms=_int(e, "WORKER_SHUTDOWN_GRACE_MS", 3000, lo=0),
            worker_overload_retries=_int(e, "WORKER_OVERLOAD_RETRIES", 3, lo=0),
            worker_max_turns=_int(e, "WORKER_MAX_TURNS", 1000, lo=0),
            worker_max_rss_mb=_int(e, "WORKER_MAX_RSS_MB", 1024, lo=0),
            enable_responses=_bool(e, "PROXY_ENABLE_RESPONSES", True),
            ignore_client_system_prompt=_bool(e, "PROXY_IGNORE_CLIENT_SYSTEM_PROMPT", False),
            max_body_bytes=_int(e, "PROXY_MAX_BODY_BYTES", 16 * 1024 * 1024, lo=1024),
            max_json_depth=_int(e, "PROXY_MAX_JSON_DEPTH", 64, lo=4, hi=512),
            max_input_items=_int(e, "PROXY_MAX_INPUT_ITEMS", 4096, lo=1),
            max_content_parts=_int(e, "PROXY_MAX_CONTENT_PARTS", 16384, lo=1),
            max_text_bytes=_int(e, "PROXY_MAX_TEXT_BYTES", 4 * 1024 * 1024, lo=1024),
            max_tools=_int(e, "PROXY_MAX_TOOLS", 128, lo=0),
            request_timeout_ms=_int(e, "PROXY_TIMEOUT_MS", 300000, lo=1),
            stream_idle_timeout_ms=_int(e, "PROXY_STREAM_IDLE_TIMEOUT_MS", 300000, lo=1),
            idle_timeout_ms=_int(e, "PROXY_IDLE_TIMEOUT_MS", 300000, lo=1),
            sse_keepalive_ms=_int(e, "PROXY_SSE_KEEPALIVE_MS", 15000, lo=0),
            sse_max_concurrency=_int(e, "PROXY_SSE_MAX_CONCURRENCY", 64, lo=0),
            max_connections=_int(e, "PROXY_MAX_CONNECTIONS", 0, lo=0, hi=1_000_000),
            usage_grace_ms=_int(e, "PROXY_USAGE_GRACE_MS", 250, lo=0),
            model_aliases=_aliases(e, "PROXY_MODEL_ALIASES"),
            key_requests_per_minute=_int(e, "PROXY_KEY_REQUESTS_PER_MINUTE", 600, lo=0),
            key_max_concurrent=_int(e, "PROXY_KEY_MAX_CONCURRENT", 0, lo=0),
            key_tokens_per_day=_int(e, "PROXY_KEY_TOKENS_PER_DAY", 0, lo=0),
            output_mode=_output_mode(e, "PROXY_OUTPUT_MODE"),
            responses_output_mode=_output_mode(e, "PROXY_RESPONSES_OUTPUT_MODE"),
            stop_after_tools=_bool(e, "PROXY_STOP_AFTER_TOOLS", False),
            stop_after_tools_mode=_choice(e, "PROXY_STOP_AFTER_TOOLS_MODE", "burst", ("burst", "first")),  # type: ignore[arg-type]
            stop_after_tools_grace_ms=_int(e, "PROXY_STOP_AFTER_TOOLS_GRACE_MS", 300, lo=0),
            suppress_tail_after_tools=_bool(e, "PROXY_SUPPRESS_TAIL_AFTER_TOOLS", False),
            tool_block_max=_int(e, "PROXY_TOOL_BLOCK_MAX", 0, lo=0),
            expose_reasoning=_bool(e, "PROXY_EXPOSE_REASONING", True),
            fetch_image_urls=_bool(e, "PROXY_FETCH_IMAGE_URLS", True),
            image_max_bytes=_int(e, "PROXY_IMAGE_MAX_BYTES", 5 * 1024 * 1024, lo=1),
            image_fetch_timeout_ms=_int(e, "PROXY_IMAGE_FETCH_TIMEOUT_MS", 10000, lo=1),
            image_fetch_concurrency=_int(e, "PROXY_IMAGE_FETCH_CONCURRENCY", 4, lo=1, hi=64),
            image_fetch_test_allowlist=_list(e, "PROXY_IMAGE_FETCH_TEST_ALLOWLIST", ()),
            usage_log=e.get("PROXY_USAGE_LOG") or None,
            usage_log_max_bytes=_int(e, "PROXY_USAGE_LOG_MAX_BYTES", 64 * 1024 * 1024, lo=4096),
            usage_log_max_files=_int(e, "PROXY_USAGE_LOG_MAX_FILES", 8, lo=1, hi=1000),
            enable_metrics=_bool(e, "PROXY_ENABLE_METRICS", True),
            metrics_token=e.get("PROXY_METRICS_TOKEN", ""),
            enable_cors=_bool(e, "PROXY_ENABLE_CORS", True),
            cors_allowed_origins=_list(e, "PROXY_CORS_ALLOWED_ORIGINS", repo_cors_origins()),
            sandbox_mode=_choice(e, "PROXY_SANDBOX_MODE", "read-only", SANDBOX_MODES),
            allow_danger_full_access=_bool(e, "PROXY_ALLOW_DANGER_FULL_ACCESS", False),
            approval_policy=_approval(e),
            force_provider=_provider(e),
            default_stream=_bool(e, "PROXY_DEFAULT_STREAM", False),
            worker_handshake_timeout_ms=_int(e, "WORKER_HANDSHAKE_TIMEOUT_MS", 0, lo=0),
            worker_restart_max=_int(e, "WORKER_RESTART_MAX", 0, lo=0),
            kill_on_disconnect=_bool(e, "PROXY_KILL_ON_DISCONNECT", True),
            usage_allow_unauth=_bool(e, "PROXY_USAGE_ALLOW_UNAUTH", False),
            metrics_allow_loopback=_bool(e, "PROXY_METRICS_ALLOW_LOOPBACK", True),
            maintenance_mode=_bool(e, "PROXY_MAINTENANCE_MODE", False),
            maintenance_file=e.get("PROXY_MAINTENANCE_FILE") or None,
            maintenance_retry_after_s=_int(e, "PROXY_MAINTENANCE_RETRY_AFTER", 60, lo=1, hi=86400),
            otel_enabled=_bool(e, "PROXY_ENABLE_OTEL", _bool(e, "OTEL_ENABLED", False)),
            otel_endpoint=_otel_endpoint(e),
            otel_service_name=e.get("PROXY_OTEL_SERVICE_NAME") or "codex-openai-api",
        )
        found = legacy_env.review(raw, read=e.seen)
        refusals += found.refusals
        if refusals and check:
            raise ConfigError("; ".join(refusals))
        settings = msgspec.structs.replace(settings, startup_warnings=tuple(found.warnings))
        if check:
            settings.check()
        return settings

    def check(self) -> None:
        """Refuse configurations that are unsafe in production (the dev key, an empty key)."""
        if self.env == "prod" and not self.api_keys_file and self.api_key in ("", DEV_API_KEY):
            raise ConfigError(
                "PROXY_ENV=prod refuses to start with an empty or built-in dev PROXY_API_KEY: "
                "set PROXY_API_KEY to a long random secret (or PROXY_API_KEYS_FILE)"
            )
        if self.env == "prod" and self.api_key == DEV_API_KEY:
            raise ConfigError("PROXY_ENV=prod refuses the built-in dev PROXY_API_KEY; set a real secret")
        for alias, target in self.model_aliases:
            if model_ids.resolve(alias, default_model=self.codex_model) is not None:
                raise ConfigError(f"PROXY_MODEL_ALIASES: {alias!r} is already a model id; an alias cannot replace it")
            if model_ids.resolve(target, default_model=self.codex_model) is None:
                raise ConfigError(
                    f"PROXY_MODEL_ALIASES: {alias}={target}: {target!r} is not a model id this API accepts "
                    "(use an advertised id such as codex-5 or codex-5-high)"
                )
        if self.env == "prod" and self.usage_allow_unauth:
            raise ConfigError(
                "PROXY_USAGE_ALLOW_UNAUTH=true is refused with PROXY_ENV=prod: usage would be readable by anyone; "
                "it is for dev only"
            )
        if self.sandbox_mode == "danger-full-access" and not self.allow_danger_full_access:
            raise ConfigError(
                "PROXY_SANDBOX_MODE=danger-full-access lets the model act on the host without a sandbox; it needs the "
                "second opt-in PROXY_ALLOW_DANGER_FULL_ACCESS=true (or use read-only, the default)"
            )
        if self.force_provider and self.backend == "offline":
            raise ConfigError("CODEX_FORCE_PROVIDER cannot be used with PROXY_BACKEND=offline: choose one")
        if self.otel_enabled and not self.otel_endpoint:
            raise ConfigError(
                "PROXY_ENABLE_OTEL=true needs a collector: set PROXY_OTEL_EXPORTER_URL (the traces URL, e.g. "
                "http://127.0.0.1:4318/v1/traces) or OTEL_EXPORTER_OTLP_ENDPOINT"
            )

        if self.env == "prod" and self.image_fetch_test_allowlist:
            raise ConfigError(
                "PROXY_IMAGE_FETCH_TEST_ALLOWLIST opens the image fetcher to private addresses and is for tests only; "
                "PROXY_ENV=prod refuses it"
            )
        for entry in self.image_fetch_test_allowlist:
            host, sep, port = entry.rpartition(":")
            try:
                ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                host = ""
            if not sep or not port.isdigit() or not host:
                raise ConfigError(
                    f"PROXY_IMAGE_FETCH_TEST_ALLOWLIST entry {entry!r} must be ip:port (127.0.0.1:8080, [::1]:8080)"
                )

    @property
    def pool_capacity(self) -> int:
        """Concurrent turns the whole pool can run: the divisor of the per-key fair share."""
        return self.worker_count * self.worker_max_concurrency

    @property
    def connection_cap(self) -> int:
        """Connections the app process serves at once (Granian's backpressure; past it a connection would wait
        unanswered in the listen backlog). Automatic: twice the streams and turns the app may hold, at least 1024,
        so the app's own clear refusals (429 at PROXY_SSE_MAX_CONCURRENCY, `worker_busy`, 503 past
        `overload_limit`) always come first (issue 15: Granian's default silently capped streams at 1,024)."""
        if self.max_connections:
            return self.max_connections
        return max(1024, 2 * (self.sse_max_concurrency + self.pool_capacity))

    @property
    def overload_limit(self) -> int:
        """Requests in flight past which the app answers 503 `server_overloaded` at once; the rest of
        `connection_cap` is kept for health probes, metrics and idle keep-alive connections (Traefik pools up to
        200 by default)."""
        cap = self.connection_cap
        return cap - min(256, cap // 4)

    @property
    def usage_log_path(self) -> Path:
        """The usage NDJSON file: configured, or inside the private Codex home."""
        return Path(self.usage_log).expanduser().resolve() if self.usage_log else self.codex_home_path / "usage.ndjson"

    @property
    def maintenance_path(self) -> Path:
        """The maintenance switch file: configured, or `maintenance` in the Codex home (read on every check)."""
        if self.maintenance_file:
            return Path(self.maintenance_file).expanduser().resolve()
        return self.codex_home_path / "maintenance"

    def workdir(self) -> Path:
        """The children's cwd: configured, or a private (0700) temp dir made once per process."""
        if self.codex_workdir:
            return Path(self.codex_workdir).expanduser().resolve()
        return Path(tempfile.mkdtemp(prefix="codex-workdir-"))

    def state_dir(self) -> Path:
        """Root of the workers' private state dirs (wiped per worker life): configured, or a private temp dir."""
        if self.codex_state_dir:
            return Path(self.codex_state_dir).expanduser().resolve()
        return Path(tempfile.mkdtemp(prefix="codex-state-"))


class _Env(Mapping[str, str]):
    """The environment as the readers see it; `seen` records every name they looked up (the known variables)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.seen: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.seen.add(name)
        return self._environ[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Every variable under `prefix` (for readers of families like PROXY_RATE_LIMIT_<KEY>), recorded as read."""
        found = {k: v for k, v in self._environ.items() if k.startswith(prefix)}
        self.seen.update(found)
        return found


def _approval(e: Mapping[str, str]) -> str:
    value = e.get("PROXY_APPROVAL_POLICY", "").strip().lower() or "never"
    if value == "on-failure":
        raise ConfigError(
            "PROXY_APPROVAL_POLICY=on-failure is not supported by codex 0.169.0: use never (the default), on-request "
            "or untrusted"
        )
    if value not in APPROVAL_POLICIES:
        raise ConfigError(f"PROXY_APPROVAL_POLICY={value!r} must be one of {', '.join(APPROVAL_POLICIES)}")
    return value


def _provider(e: Mapping[str, str]) -> str | None:
    value = e.get("CODEX_FORCE_PROVIDER", "").strip()
    if value and not _PROVIDER_ID.fullmatch(value):
        raise ConfigError(f"CODEX_FORCE_PROVIDER={value!r} is not a provider id (letters, digits, `_`, `-`, `.`)")
    return value or None


def _otel_endpoint(e: Mapping[str, str]) -> str | None:
    """PROXY_OTEL_EXPORTER_URL is the traces URL itself; OTEL_EXPORTER_OTLP_ENDPOINT is a base URL (OTel spec)."""
    url = e.get("PROXY_OTEL_EXPORTER_URL", "").strip()
    base = e.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not url and base:
        url = base.rstrip("/") + "/v1/traces"
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"PROXY_OTEL_EXPORTER_URL={url!r} must be an http(s) URL (OTLP/HTTP)")
    return url or None


def _bool(e: Mapping[str, str], name: str, default: bool) -> bool:
    raw = e.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(e: Mapping[str, str], name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = e.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi if hi is not None else '∞'}]")
    return value


def _choice(e: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = e.get(name, default).strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def _log_level(e: Mapping[str, str], name: str) -> str:
    value = e.get(name, "INFO").strip().upper() or "INFO"
    value = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(value, value)
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{name}={value!r} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return value


def _aliases(e: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`alias=target,alias2=target2` → ((alias, target), ...); aliases compared case-insensitively."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in _list(e, name, ()):
        alias, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not alias or not target or any(c.isspace() for c in alias + target):
            raise ConfigError(f"{name}: {item!r} is not `client-name=model-id`")
        if alias.lower() in seen:
            raise ConfigError(f"{name}: {alias!r} is listed twice")
        seen.add(alias.lower())
        pairs.append((alias.lower(), target))
    return tuple(pairs)


def _output_mode(e: Mapping[str, str], name: str) -> OutputModeName:
    raw = e.get(name, "").strip().lower()
    if not raw:
        return "openai-json"
    mode = OUTPUT_MODE_SPELLINGS.get(raw)
    if mode is None:
        raise ConfigError(f"{name}={raw!r} must be openai-json or obsidian-xml")
    return mode


def _list(e: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = e.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())
