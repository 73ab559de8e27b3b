"""authd settings, read once from the environment (the only place authd reads env vars)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_REALM_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True, slots=True)
class Settings:
    api_key: str | None
    keys_file: Path | None
    host: str = "127.0.0.1"
    port: int = 18080
    realm: str = "api"
    workers: int = 1
    interface: str = "rsgi"
    access_log: bool = False
    reload_interval: float = 1.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        keys_file = env.get("PROXY_API_KEYS_FILE") or None
        interface = env.get("AUTHD_INTERFACE", "rsgi")
        if interface not in ("rsgi", "asgi"):
            raise ValueError("AUTHD_INTERFACE must be rsgi or asgi")
        return cls(
            api_key=env.get("PROXY_API_KEY") or None,
            keys_file=Path(keys_file) if keys_file else None,
            host=env.get("AUTHD_HOST", "127.0.0.1"),
            port=int(env.get("AUTHD_PORT", "18080")),
            realm=env.get("AUTH_REALM", "api"),
            workers=int(env.get("AUTHD_WORKERS", "1")),
            interface=interface,
            access_log=env.get("AUTHD_ACCESS_LOG", "false").lower() in ("1", "true", "yes"),
            reload_interval=float(env.get("AUTHD_RELOAD_INTERVAL", "1.0")),
        )

    @property
    def www_authenticate(self) -> str:
        """`Bearer realm=api`: the realm as a bare token when it is one, else a quoted string."""
        if _REALM_TOKEN.fullmatch(self.realm):
            return f"Bearer realm={self.realm}"
        escaped = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        return f'Bearer realm="{escaped}"'
