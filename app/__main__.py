"""`python -m app` / `codex-api`: serve the API with Granian (ASGI, one worker: the pool lives in-process)."""

from __future__ import annotations

import logging
import sys

from granian import Granian
from granian.constants import Interfaces
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
    Granian(
        "app.main:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=1,
        log_access=False,  # the app writes its own access line (app.access), with request id and key name
        log_dictconfig=dict_config(settings),
        log_level=LogLevels(granian_level(settings)),
    ).serve()


if __name__ == "__main__":
    main()
