"""Settings: the only place environment variables are read.

`Settings.from_env()` is called once by the app factory (and by `python -m app`); tests build a `Settings`
directly with `Settings.for_tests(...)`/`msgspec.structs.replace`. Every variable is listed in the README's
configuration table, with the same default as here.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_API_KEY = "codex-local-secret"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    env: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = 11435
    log_level: str = "INFO"
    log_json: bool = False

    # Auth and edge trust.
    api_key: str = DEV_API_KEY
    api_keys_file: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    protect_models: bool = False

    # Codex.
    codex_bin: str = msgspec.field(default_factory=default_codex_bin)
    codex_home: str = ".codev"
    codex_workdir: str | None = None
    codex_model: str = "gpt-5.2"
    backend: Literal["auto", "codex", "offline"] = "auto"
    offline_model_url: str | None = None
    # How often the backend looks at CODEX_HOME/auth.json (a new login, a re-login after a rejection).
    login_poll_ms: int = 2000

    # Worker pool.
    worker_count: int = 2
    worker_max_concurrency: int = 8
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

    # Requests.
    enable_responses: bool = True
    ignore_client_system_prompt: bool = True
    max_body_bytes: int = 16 * 1024 * 1024
    request_timeout_ms: int = 300000
    stream_idle_timeout_ms: int = 300000
    idle_timeout_ms: int = 300000
    sse_keepalive_ms: int = 15000
    sse_max_concurrency: int = 64
    usage_grace_ms: int = 250

    # Operations.
    usage_log: str | None = None
    enable_metrics: bool = True
    metrics_token: str = ""

    # CORS in the app (Traefik and the Worker enforce the same allowlist at the edge).
    enable_cors: bool = True
    cors_allowed_origins: tuple[str, ...] = ("*",)

    @property
    def codex_home_path(self) -> Path:
        return Path(self.codex_home).expanduser().resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, check: bool = True) -> Settings:
        """Read every PROXY_*/CODEX_*/WORKER_* variable; raise ConfigError naming the bad one.

        `check=False` skips the serving-safety checks (the API key) for tools that only need paths, such as
        `python -m app.login`."""
        e = os.environ if environ is None else environ
        env = _choice(e, "PROXY_ENV", "dev", ("dev", "prod"))
        prod = env == "prod"
        settings = cls(
            env=env,  # type: ignore[arg-type]
            host=e.get("PROXY_HOST", "127.0.0.1"),
            port=_int(e, "PORT", 11435, lo=1, hi=65535),
            log_level=e.get("PROXY_LOG_LEVEL", "INFO").upper(),
            log_json=_bool(e, "PROXY_LOG_JSON", prod),
            api_key=e.get("PROXY_API_KEY", "" if prod else DEV_API_KEY),
            api_keys_file=e.get("PROXY_API_KEYS_FILE") or None,
            trusted_proxies=_list(e, "PROXY_TRUSTED_PROXIES", ("127.0.0.1/32", "::1/128")),
            protect_models=_bool(e, "PROXY_PROTECT_MODELS", False),
            codex_bin=e.get("CODEX_BIN") or default_codex_bin(),
            codex_home=e.get("CODEX_HOME") or (".codex-api" if prod else ".codev"),
            codex_workdir=e.get("PROXY_CODEX_WORKDIR") or None,
            codex_model=e.get("CODEX_MODEL", "gpt-5.2"),
            backend=_choice(e, "PROXY_BACKEND", "auto", ("auto", "codex", "offline")),  # type: ignore[arg-type]
            offline_model_url=e.get("PROXY_OFFLINE_MODEL_URL") or None,
            login_poll_ms=_int(e, "PROXY_LOGIN_POLL_MS", 2000, lo=50),
            worker_count=_int(e, "PROXY_WORKER_COUNT", 2, lo=1, hi=64),
            worker_max_concurrency=_int(e, "WORKER_MAX_CONCURRENCY", 8, lo=1),
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
            enable_responses=_bool(e, "PROXY_ENABLE_RESPONSES", True),
            ignore_client_system_prompt=_bool(e, "PROXY_IGNORE_CLIENT_SYSTEM_PROMPT", True),
            max_body_bytes=_int(e, "PROXY_MAX_BODY_BYTES", 16 * 1024 * 1024, lo=1024),
            request_timeout_ms=_int(e, "PROXY_TIMEOUT_MS", 300000, lo=1),
            stream_idle_timeout_ms=_int(e, "PROXY_STREAM_IDLE_TIMEOUT_MS", 300000, lo=1),
            idle_timeout_ms=_int(e, "PROXY_IDLE_TIMEOUT_MS", 300000, lo=1),
            sse_keepalive_ms=_int(e, "PROXY_SSE_KEEPALIVE_MS", 15000, lo=0),
            sse_max_concurrency=_int(e, "PROXY_SSE_MAX_CONCURRENCY", 64, lo=0),
            usage_grace_ms=_int(e, "PROXY_USAGE_GRACE_MS", 250, lo=0),
            usage_log=e.get("PROXY_USAGE_LOG") or None,
            enable_metrics=_bool(e, "PROXY_ENABLE_METRICS", True),
            metrics_token=e.get("PROXY_METRICS_TOKEN", ""),
            enable_cors=_bool(e, "PROXY_ENABLE_CORS", True),
            cors_allowed_origins=_list(e, "PROXY_CORS_ALLOWED_ORIGINS", ("*",)),
        )
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

    @property
    def usage_log_path(self) -> Path:
        """The usage NDJSON file: configured, or inside the private Codex home."""
        return Path(self.usage_log).expanduser().resolve() if self.usage_log else self.codex_home_path / "usage.ndjson"

    def workdir(self) -> Path:
        """The children's cwd: configured, or a private (0700) temp dir made once per process."""
        if self.codex_workdir:
            return Path(self.codex_workdir).expanduser().resolve()
        return Path(tempfile.mkdtemp(prefix="codex-workdir-"))


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


def _list(e: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = e.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())
