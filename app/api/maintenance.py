"""Maintenance mode: generation routes answer 503 `maintenance` (+ Retry-After) and /readyz 503, so Traefik drains
the host, while health, metrics, models and usage keep working and streams already running finish.

On with `PROXY_MAINTENANCE_MODE=true`, and flipped without a restart through a file (`PROXY_MAINTENANCE_FILE`,
default `$CODEX_HOME/maintenance`) that is read on every check: present and empty or `on`/`true` → on, `off`/
`false` → off (whatever the variable said), absent → the variable decides. A file rather than SIGHUP because
Granian's main process takes SIGHUP as "respawn the workers", which would cut every open stream; a file also needs
no listener, no credential and no new route (`touch` / `rm` from Ansible or a shell).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.errors import ApiError

logger = logging.getLogger(__name__)

_OFF = {"0", "false", "no", "off"}


class Maintenance:
    def __init__(self, enabled: bool, path: Path, retry_after_s: int) -> None:
        self.enabled = enabled
        self.path = path
        self.retry_after_s = retry_after_s
        self._unreadable_logged = False

    @property
    def on(self) -> bool:
        try:
            with self.path.open("rb") as f:
                word = f.read(32).decode("utf-8", "replace").strip().lower()
        except FileNotFoundError:
            return self.enabled
        except OSError as exc:  # it exists but cannot be read: the operator meant something; stay safe, drain
            if not self._unreadable_logged:
                logger.error("maintenance file %s is unreadable (%s): treating it as on", self.path, exc)
                self._unreadable_logged = True
            return True
        return word not in _OFF

    def reason(self) -> str:
        return f"maintenance mode (PROXY_MAINTENANCE_MODE or {self.path})"

    def check(self) -> None:
        """Raise the 503 for a new generation request while maintenance is on."""
        if self.on:
            raise ApiError(
                503,
                "The service is in maintenance; retry later.",
                type="server_error",
                code="maintenance",
                headers={"Retry-After": str(self.retry_after_s)},
            )
