"""`python -m app` / `codex-api`: serve the API with Granian (ASGI, one worker: the pool lives in-process)."""

from __future__ import annotations

import logging
import resource
import sys
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
from granian.http import HTTP1Settings
from granian.log import LogLevels

from app.devkey import dev_key_path, ensure_dev_key
from app.logs import configure_logging, dict_config, granian_level
from app.settings import ConfigError, Settings

logger = logging.getLogger("app")


def main() -> None:
    try:
        configured = Settings.from_env()
        settings = ensure_dev_key(configured)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    if settings.api_key != configured.api_key:  # dev, no key configured: tell the developer the generated one
        logger.info(
            "serving the API on http://%s:%d/v1 — dev API key %s (stored in %s)",
            settings.host,
            settings.port,
            settings.api_key,
            dev_key_path(settings),
        )
    else:
        logger.info("serving the API on http://%s:%d/v1", settings.host, settings.port)
    raise_open_files_limit(settings.connection_cap)
    Granian(
        "app.main:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        workers=1,
        log_access=False,  # the app writes its own access line (app.access), with request id and key name
        log_dictconfig=dict_config(settings),
        log_level=LogLevels(granian_level(settings)),
        **granian_options(settings),
    ).serve()


def granian_options(settings: Settings) -> dict[str, Any]:
    """How Granian serves the app; bench/levers.py measures each choice against its alternatives (issue 15).

    `backpressure` is the number of connections the worker serves at once; past it Granian stops accepting and a
    client would wait in the listen backlog with no answer, so it is `PROXY_MAX_CONNECTIONS` (automatic: above
    every cap of the app's own, which refuse clearly) and the backlog is at least as deep."""
    cap = settings.connection_cap
    return {
        "interface": Interfaces.ASGI,
        # uvloop: 2 to 23 % less CPU per request than asyncio's loop in every relay cell measured (issue 15; Granian's
        # `auto` picked it only when it happened to be installed). The other options stay Granian's defaults: their
        # alternatives measured within the noise (bench/report.md, server-setting levers).
        "loop": Loops.uvloop,
        "task_impl": TaskImpl.asyncio,
        "http": HTTPModes.auto,
        "runtime_mode": RuntimeModes.auto,
        "runtime_threads": 1,
        "backpressure": cap,
        "backlog": min(65535, max(1024, cap)),
        "http1_settings": HTTP1Settings(),
    }


def raise_open_files_limit(connections: int) -> None:
    """Every connection is a file descriptor (and every codex child three more): raise the soft RLIMIT_NOFILE
    towards the hard limit (systemd's default soft limit is 1024, below the default connection cap)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + 1024
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)


if __name__ == "__main__":
    main()
