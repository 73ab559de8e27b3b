"""`python -m app` / `codex-api`: serve the API with Granian (ASGI, one worker: the pool lives in-process)."""

from __future__ import annotations

import sys

from granian import Granian
from granian.constants import Interfaces

from app.devkey import dev_key_path, ensure_dev_key
from app.settings import ConfigError, Settings


def main() -> None:
    try:
        configured = Settings.from_env()
        settings = ensure_dev_key(configured)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    line = f"serving the API on http://{settings.host}:{settings.port}/v1"
    if settings.api_key != configured.api_key:  # dev, no key configured: tell the developer the generated one
        line += f" — dev API key {settings.api_key} (stored in {dev_key_path(settings)})"
    print(line, file=sys.stderr)
    Granian(
        "app.main:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=1,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
