"""The dev API key: random, made on the first `make run`, kept in the dev Codex home (0600), printed at start-up.

Why (issue 13): the built-in `codex-local-secret` was public, so any web page a developer opened could call their
local API (and spend their ChatGPT quota) through DNS rebinding or a permissive CORS answer. A key that exists
only on the developer's disk closes that; it is used only in `PROXY_ENV=dev` when no PROXY_API_KEY (or keys
file) is configured. Production never generates one: it refuses to start without a configured key.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

import msgspec

from app.settings import ConfigError, Settings

KEY_FILE = "dev-api-key"
_KEY_RE = re.compile(r"[\x21-\x7e]{20,200}")


def dev_key_path(settings: Settings) -> Path:
    return settings.codex_home_path / KEY_FILE


def ensure_dev_key(settings: Settings) -> Settings:
    """`settings` with the dev key filled in when dev mode has no key configured; unchanged otherwise."""
    if settings.env != "dev" or settings.api_key or settings.api_keys_file:
        return settings
    return msgspec.structs.replace(settings, api_key=_load_or_create(dev_key_path(settings)))


def _load_or_create(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = "dev-" + secrets.token_urlsafe(32)
    # Write a private temp file, then link it into place: atomic create-if-absent, so two processes starting at
    # once (the launcher and Granian's worker) end up with the same key and nobody reads a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # an older file (or a copy) readable by others: the key is a secret
    stored = path.read_text().strip()
    if not _KEY_RE.fullmatch(stored):
        raise ConfigError(f"{path} does not hold a usable dev key: delete it and restart to generate a new one")
    return stored
