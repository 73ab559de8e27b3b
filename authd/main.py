"""authd entry point: validate the configuration, then serve the verifier on Granian.

Config errors (no key, malformed keys file) exit before any worker starts, so systemd sees a failed
start instead of a crash-looping worker. SIGHUP makes Granian start fresh workers (which read the keys
anew) before stopping the old ones, so a forced reload drops no request; a changed keys file is also
picked up by each worker within AUTHD_RELOAD_INTERVAL seconds without any signal.
"""

from __future__ import annotations

import logging

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.server.common import AbstractServer

from authd.keys import KeysFileError
from authd.server import load_store
from authd.settings import Settings

logger = logging.getLogger("authd")


def build_server(settings: Settings) -> AbstractServer:
    interface = Interfaces.RSGI if settings.interface == "rsgi" else Interfaces.ASGINL
    target = "authd.server:create_rsgi" if settings.interface == "rsgi" else "authd.server:create_asgi"
    return Granian(
        target,
        address=settings.host,
        port=settings.port,
        interface=interface,
        factory=True,
        workers=settings.workers,
        http=HTTPModes.http1,  # Traefik's forwardAuth client speaks HTTP/1.1 to authd
        websockets=False,
        log_access=settings.access_log,  # method, path, status only: Granian never logs headers
        respawn_failed_workers=True,
        respawn_interval=1.0,  # SIGHUP: new worker gets 1 s to bind before the old one drains
        workers_kill_timeout=5,
    )


def run() -> None:
    """Console script `codex-authd`."""
    settings = Settings.from_env()
    try:
        store = load_store(settings)
    except (KeysFileError, ValueError) as exc:
        raise SystemExit(f"authd: {exc}") from None
    logging.basicConfig(level=logging.INFO)
    logger.info(
        "authd on %s:%d, %d keys, interface %s, %d workers",
        settings.host,
        settings.port,
        len(store),
        settings.interface,
        settings.workers,
    )
    build_server(settings).serve()
