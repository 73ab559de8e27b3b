"""API keys: bearer parsing and a hashed key store shared by authd and the app.

The app imports this module for its own defence-in-depth check, so authd and the app accept exactly
the same header forms and the same keys. Keys are only ever held as SHA-256 digests; neither a key
nor its digest is logged (issue 6).

Keys file (``PROXY_API_KEYS_FILE``), JSON, our own format so unknown fields are rejected::

    {"keys": [
      {"name": "alice", "sha256": "<64 hex chars of sha256(key)>"},
      {"name": "ci", "sha256": "...", "expires_at": "2027-01-01T00:00:00Z"},
      {"name": "old", "sha256": "...", "disabled": true},
      {"name": "ops", "sha256": "...", "scopes": ["usage:all"],
       "limits": {"requests_per_minute": 120, "max_concurrent": 4, "tokens_per_day": 2000000}}
    ]}

Create a digest with ``printf %s "$KEY" | sha256sum``. ``limits`` and ``scopes`` are read by the app only
(per-key limits, who may read every key's usage); authd accepts and ignores them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

logger = logging.getLogger(__name__)

DEFAULT_KEY_NAME = "default"
# The name travels in the X-Auth-User header and into logs, so it is restricted to header-safe characters.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
# A bearer token is visible ASCII (0x21-0x7e): no whitespace, no control characters (RFC 6750 b64token is stricter).
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")
_BEARER_RE = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]+)")
# Digest compared when the token cannot be a key at all, so that path costs the same as a real miss.
_NO_MATCH = hashlib.sha256(b"").digest()


class KeysFileError(ValueError):
    """The keys file is unreadable or malformed; the message never contains key material."""


# Scopes a key can be given. `usage:all`: read every key's usage records, not only its own.
USAGE_ALL = "usage:all"
KNOWN_SCOPES = frozenset({USAGE_ALL})


class KeyLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Per-key overrides of the app's limits; an unset field falls back to the PROXY_KEY_* default.

    `0` means unlimited for every field (the headers for that limit are then omitted)."""

    requests_per_minute: int | None = None
    max_concurrent: int | None = None
    tokens_per_day: int | None = None


class KeyPolicy(msgspec.Struct, frozen=True):
    """What the app needs to know about a key beyond its validity: its limits and scopes."""

    limits: KeyLimits = KeyLimits()
    scopes: frozenset[str] = frozenset()


NO_POLICY = KeyPolicy()


class _KeyEntry(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    sha256: str
    expires_at: datetime | None = None
    disabled: bool = False
    limits: KeyLimits | None = None
    scopes: list[str] = msgspec.field(default_factory=list)


class _KeysFile(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[_KeyEntry]


_decode_keys_file = msgspec.json.Decoder(_KeysFile).decode


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    digest: bytes
    expires_at: float | None  # epoch seconds
    disabled: bool
    policy: KeyPolicy = NO_POLICY

    def usable(self, now: float) -> bool:
        return not self.disabled and (self.expires_at is None or now < self.expires_at)


def parse_bearer(values: Sequence[str]) -> str | None:
    """Return the token of the only ``Authorization: Bearer <token>`` value, else None.

    Exactly one header value is accepted (two headers are ambiguous: a proxy and the app could pick
    different ones). The scheme is matched case-insensitively (RFC 7235 §2.1); surrounding optional
    whitespace is ignored; the token must be visible ASCII, so embedded CR/LF, tabs or spaces reject it.
    """
    if len(values) != 1:
        return None
    match = _BEARER_RE.fullmatch(values[0].strip(" \t"))
    return match.group(1) if match else None


def _parse_keys_file(data: bytes) -> tuple[_Key, ...]:
    try:
        parsed = _decode_keys_file(data)
    except msgspec.ValidationError as exc:
        raise KeysFileError(f"invalid keys file: {exc}") from None
    except msgspec.DecodeError:
        # The decoder's message can quote a fragment of the document, i.e. a digest: keep it out of logs.
        raise KeysFileError("keys file is not valid JSON") from None
    keys: list[_Key] = []
    seen: set[str] = set()
    for index, entry in enumerate(parsed.keys):
        if not _NAME_RE.fullmatch(entry.name):
            raise KeysFileError(f"keys[{index}]: name must match {_NAME_RE.pattern}")
        if entry.name in seen:
            raise KeysFileError(f"keys[{index}]: duplicate name {entry.name!r}")
        if not _HEX64_RE.fullmatch(entry.sha256):
            raise KeysFileError(f"keys[{index}] ({entry.name}): sha256 must be 64 lower-case hex characters")
        expires = entry.expires_at
        if expires is not None and expires.tzinfo is None:
            raise KeysFileError(f"keys[{index}] ({entry.name}): expires_at needs a time zone (e.g. Z)")
        unknown = sorted(set(entry.scopes) - KNOWN_SCOPES)
        if unknown:
            raise KeysFileError(
                f"keys[{index}] ({entry.name}): unknown scope(s) {unknown}; known: {sorted(KNOWN_SCOPES)}"
            )
        limits = entry.limits or KeyLimits()
        for field in msgspec.structs.fields(KeyLimits):
            value = getattr(limits, field.name)
            if value is not None and value < 0:
                raise KeysFileError(f"keys[{index}] ({entry.name}): limits.{field.name} must be >= 0 (0 = unlimited)")
        seen.add(entry.name)
        keys.append(
            _Key(
                name=entry.name,
                digest=bytes.fromhex(entry.sha256),
                expires_at=expires.timestamp() if expires is not None else None,
                disabled=entry.disabled,
                policy=KeyPolicy(limits=limits, scopes=frozenset(entry.scopes)),
            )
        )
    return tuple(keys)


def _stat_signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class KeyStore:
    """The accepted keys: ``PROXY_API_KEY`` (named "default") plus the entries of an optional keys file.

    The key tuple is swapped atomically on reload, so concurrent lookups see either the old or the new
    set, never a half-loaded one. A keys file that becomes malformed or disappears keeps the last good
    set serving (logged as an error) instead of locking everybody out mid-edit — and says so in `problem`
    until a good file is loaded, which the app's /readyz, its metrics and authd's /readyz report (issue 13:
    a revocation that broke the file used to keep the revoked key working with nothing visible).
    """

    def __init__(self, api_key: str | None, keys_file: Path | None) -> None:
        self._static: tuple[_Key, ...] = ()
        if api_key:
            if not _TOKEN_RE.fullmatch(api_key):
                raise ValueError("PROXY_API_KEY must be visible ASCII without whitespace")
            self._static = (_Key(DEFAULT_KEY_NAME, hashlib.sha256(api_key.encode()).digest(), None, False),)
        self._path = keys_file
        self._signature: tuple[int, int, int, int] | None = None
        self._from_file: tuple[_Key, ...] = ()
        self.problem: str | None = None  # why the file on disk is not the set being served; None when it is
        if keys_file is not None:
            signature = _stat_signature(keys_file)
            if signature is None:
                raise KeysFileError(f"keys file {keys_file} does not exist")
            self._from_file = _parse_keys_file(keys_file.read_bytes())
            self._signature = signature
        self._keys = self._merge()

    def _merge(self) -> tuple[_Key, ...]:
        names = {key.name for key in self._from_file}
        return tuple(k for k in self._static if k.name not in names) + self._from_file

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys_file(self) -> Path | None:
        return self._path

    def lookup(self, token: str) -> str | None:
        """Name of the key `token` is, or None.

        Every key's digest is compared with ``hmac.compare_digest`` and the loop never exits early,
        so the time taken does not depend on which key (if any) matched or how much of it was right.
        """
        digest = hashlib.sha256(token.encode()).digest() if token.isascii() else _NO_MATCH
        found: _Key | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None or not found.usable(time.time()):
            return None
        return found.name

    def policy(self, name: str) -> KeyPolicy:
        """Limits and scopes of the key called `name` (the defaults for a name the store does not hold).

        Without a keys file the single `PROXY_API_KEY` is the whole setup, so it is its own admin."""
        for key in self._keys:
            if key.name == name:
                if self._path is None and name == DEFAULT_KEY_NAME:
                    return KeyPolicy(limits=key.policy.limits, scopes=key.policy.scopes | {USAGE_ALL})
                return key.policy
        return NO_POLICY

    def usable_count(self) -> int:
        """How many keys can authenticate right now (not disabled, not expired): the fair-share divisor."""
        now = time.time()
        return sum(1 for key in self._keys if key.usable(now))

    def reload_if_changed(self) -> bool:
        """Re-read the keys file if its inode, size or times changed; True when a new set was loaded.

        One ``stat`` when nothing changed, so it is cheap enough for a short timer or per request.
        """
        if self._path is None:
            return False
        signature = _stat_signature(self._path)
        if signature == self._signature:
            return False
        if signature is None:
            logger.error("keys file %s disappeared; keeping the last loaded keys", self._path)
            self._signature = None
            self.problem = f"keys file {self._path} disappeared; serving the last loaded keys"
            return False
        try:
            loaded = _parse_keys_file(self._path.read_bytes())
        except (OSError, KeysFileError) as exc:
            logger.error("keys file %s not reloaded, keeping the last loaded keys: %s", self._path, exc)
            self._signature = signature  # retry only after the next change, not on every call
            self.problem = f"keys file {self._path} not loaded ({exc}); serving the last loaded keys"
            return False
        self._from_file = loaded
        self._signature = signature
        self._keys = self._merge()
        self.problem = None
        logger.info("keys file %s reloaded: %d keys", self._path, len(loaded))
        return True
