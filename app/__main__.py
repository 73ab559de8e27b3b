"""`python -m app` / `codex-api`: serve the API with Granian (ASGI, one worker: the pool lives in-process)."""

from __future__ import annotations

import sys

from granian import Granian
from granian.constants import Interfaces

from app.settings import ConfigError, Settings


def main() -> None:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"serving the API on http://{settings.host}:{settings.port}/v1", file=sys.stderr)
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
