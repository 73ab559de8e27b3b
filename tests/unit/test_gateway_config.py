"""Gateway configuration: request ids, aliases, the new settings and the keys file's limits and scopes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.api.edge import request_id_from
from app.model_ids import resolve
from app.settings import ConfigError, Settings
from authd.keys import USAGE_ALL, KeyLimits, KeysFileError, KeyStore


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (b"req-abc-123", True),
        (b"x" * 128, True),
        (b"a:b/c.d_e~!", True),
        (b"x" * 129, False),
        (b"has space", False),
        (b"tab\t", False),
        (b"caf\xc3\xa9", False),
        (b"", False),
        (None, False),
    ],
    ids=["plain", "128", "punctuation", "129", "space", "tab", "utf8", "empty", "absent"],
)
def test_request_id_from_the_client(header: bytes | None, kept: bool) -> None:
    rid = request_id_from(header)
    assert (rid == (header or b"").decode("latin-1")) is kept
    if not kept:
        assert rid.startswith("req_") and len(rid) == 28


def test_aliases_resolve_to_their_target_and_keep_the_clients_name() -> None:
    aliases = {"gpt-4o": "codex-5", "gpt-4.1": "codex-5-high"}
    got = resolve("GPT-4.1", default_model="gpt-5.2", aliases=aliases)
    assert got is not None and (got.requested, got.model, got.effort) == ("GPT-4.1", "gpt-5.2", "high")
    assert resolve("gpt-4o", default_model="gpt-5.2") is None  # not without the alias


def test_gateway_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "PROXY_MODEL_ALIASES": "gpt-4o=codex-5, gpt-4.1=codex-5-high",
            "PROXY_KEY_REQUESTS_PER_MINUTE": "60",
            "PROXY_KEY_MAX_CONCURRENT": "3",
            "PROXY_KEY_TOKENS_PER_DAY": "1000000",
            "PROXY_USAGE_LOG_MAX_BYTES": "1048576",
            "PROXY_USAGE_LOG_MAX_FILES": "4",
            "PROXY_LOG_LEVEL": "warn",
        }
    )
    assert s.model_aliases == (("gpt-4o", "codex-5"), ("gpt-4.1", "codex-5-high"))
    assert (s.key_requests_per_minute, s.key_max_concurrent, s.key_tokens_per_day) == (60, 3, 1_000_000)
    assert (s.usage_log_max_bytes, s.usage_log_max_files, s.log_level) == (1_048_576, 4, "WARNING")
    d = Settings.from_env({})
    assert (d.key_requests_per_minute, d.key_max_concurrent, d.key_tokens_per_day, d.model_aliases) == (600, 0, 0, ())


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PROXY_MODEL_ALIASES": "gpt-4o"}, "client-name=model-id"),
        ({"PROXY_MODEL_ALIASES": "gpt-4o=gpt-4o-mini"}, "not a model id"),
        ({"PROXY_MODEL_ALIASES": "codex-5=codex-5-high"}, "already a model id"),
        ({"PROXY_MODEL_ALIASES": "a=codex-5,A=codex-5"}, "listed twice"),
        ({"PROXY_KEY_REQUESTS_PER_MINUTE": "-1"}, "PROXY_KEY_REQUESTS_PER_MINUTE"),
        ({"PROXY_USAGE_LOG_MAX_FILES": "0"}, "PROXY_USAGE_LOG_MAX_FILES"),
        ({"PROXY_LOG_LEVEL": "loud"}, "PROXY_LOG_LEVEL"),
    ],
    ids=["no-equals", "unknown-target", "shadows-an-id", "duplicate", "negative-rpm", "zero-files", "bad-level"],
)
def test_bad_gateway_settings_are_refused(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def _store(tmp_path: Path, entries: list[dict]) -> KeyStore:
    for e in entries:
        e.setdefault("sha256", hashlib.sha256(e["name"].encode()).hexdigest())
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": entries}))
    return KeyStore(None, path)


def test_keys_file_limits_and_scopes(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        [
            {"name": "ops", "scopes": ["usage:all"], "limits": {"requests_per_minute": 5, "tokens_per_day": 0}},
            {"name": "ci"},
            {"name": "gone", "disabled": True},
            {"name": "past", "expires_at": "2020-01-01T00:00:00Z"},
        ],
    )
    assert store.policy("ops").scopes == {USAGE_ALL}
    assert store.policy("ops").limits == KeyLimits(requests_per_minute=5, tokens_per_day=0)
    assert store.policy("ci").scopes == frozenset() and store.policy("nobody").scopes == frozenset()
    assert store.usable_count() == 2
    assert store.lookup("ops") == "ops"  # the token is the name in this test


def test_the_single_key_setup_is_its_own_admin(tmp_path: Path) -> None:
    assert USAGE_ALL in KeyStore("only-key", None).policy("default").scopes
    with_file = KeyStore("env-key", _store(tmp_path, [{"name": "ci"}]).keys_file)
    assert USAGE_ALL not in with_file.policy("default").scopes  # with a keys file, scopes are explicit


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"name": "a", "scopes": ["admin"]}, "unknown scope"),
        ({"name": "a", "limits": {"requests_per_minute": -2}}, "must be >= 0"),
        ({"name": "a", "limits": {"rpm": 3}}, "unknown field"),
    ],
    ids=["unknown-scope", "negative-limit", "unknown-limit"],
)
def test_bad_limits_or_scopes_are_refused(tmp_path: Path, entry: dict, needle: str) -> None:
    with pytest.raises(KeysFileError, match=needle):
        _store(tmp_path, [entry])
