"""authd/keys.py: the bearer parser and key store shared by authd and the app (pure, no processes)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authd.keys import KeysFileError, KeyStore, parse_bearer

TOKEN = "sk-test-0123456789abcdef"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"keys": entries}))
    return path


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([f"Bearer {TOKEN}"], TOKEN),
        ([f"bearer {TOKEN}"], TOKEN),
        ([f"BEARER {TOKEN}"], TOKEN),
        ([f"Bearer  {TOKEN}"], TOKEN),
        ([f"  Bearer {TOKEN}\t"], TOKEN),
        ([], None),
        ([""], None),
        (["Bearer"], None),
        (["Bearer "], None),
        ([TOKEN], None),
        ([f"Basic {TOKEN}"], None),
        ([f"Bearer{TOKEN}"], None),
        ([f"Bearer {TOKEN} extra"], None),
        ([f"Bearer {TOKEN[:4]}\n{TOKEN[4:]}"], None),
        ([f"Bearer {TOKEN[:4]}\r\n {TOKEN[4:]}"], None),
        ([f"Bearer {TOKEN}\x00"], None),
        ([f"Bearer {TOKEN}\x7f"], None),
        ([f"Bearer {TOKEN}é"], None),
        ([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], None),
        ([f"Bearer {TOKEN}", "Bearer other"], None),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_parse_bearer(values: list[str], expected: str | None) -> None:
    assert parse_bearer(values) == expected


@given(st.text(alphabet=string.printable + "\x00\x7f\u00e9\u2028", max_size=60))
def test_parse_bearer_only_returns_visible_ascii_tokens(value: str) -> None:
    token = parse_bearer([value])
    if token is not None:
        assert token and all(0x21 <= ord(c) <= 0x7E for c in token)
        assert value.strip(" \t").lower().startswith("bearer ")


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80))
def test_parse_bearer_round_trips_any_valid_token(token: str) -> None:
    assert parse_bearer([f"Bearer {token}"]) == token


def test_single_key_is_named_default() -> None:
    store = KeyStore(TOKEN, None)
    assert store.lookup(TOKEN) == "default"
    assert store.lookup(TOKEN[:-1]) is None
    assert store.lookup(TOKEN + "x") is None
    assert store.lookup("") is None
    assert store.lookup("é") is None


def test_keys_file_names_disabled_and_expiry(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.json",
        [
            {"name": "alice", "sha256": digest("a-key")},
            {"name": "bob", "sha256": digest("b-key"), "expires_at": "2999-01-01T00:00:00Z"},
            {"name": "old", "sha256": digest("o-key"), "expires_at": "2001-01-01T00:00:00+00:00"},
            {"name": "off", "sha256": digest("x-key"), "disabled": True},
        ],
    )
    store = KeyStore(TOKEN, path)
    assert [store.lookup(k) for k in ("a-key", "b-key", "o-key", "x-key", TOKEN)] == [
        "alice",
        "bob",
        None,
        None,
        "default",
    ]


def test_keys_file_entry_named_default_replaces_the_env_key(tmp_path: Path) -> None:
    """Lets an operator revoke PROXY_API_KEY from the keys file alone."""
    path = write(tmp_path / "keys.json", [{"name": "default", "sha256": digest(TOKEN), "disabled": True}])
    assert KeyStore(TOKEN, path).lookup(TOKEN) is None


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"keys": [{"name": "a", "sha256": "abc"}]}',
        '{"keys": [{"name": "bad name", "sha256": "' + "0" * 64 + '"}]}',
        '{"keys": [{"name": "a", "sha256": "' + "A" * 64 + '"}]}',
        '{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "expires_at": "2030-01-01T00:00:00"}]}',
        '{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "typo": 1}]}',
        '{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '"}, {"name": "a", "sha256": "' + "1" * 64 + '"}]}',
    ],
    ids=["not-json", "short-digest", "bad-name", "upper-hex", "naive-expiry", "unknown-field", "duplicate-name"],
)
def test_malformed_keys_file_is_rejected_without_quoting_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(KeysFileError) as info:
        KeyStore(None, path)
    assert "0" * 16 not in str(info.value) and "1" * 16 not in str(info.value)


def test_missing_keys_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError):
        KeyStore(None, tmp_path / "absent.json")


def test_env_key_must_be_a_valid_token() -> None:
    with pytest.raises(ValueError, match="visible ASCII"):
        KeyStore("has space", None)


def test_reload_picks_up_changes_and_keeps_last_good_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "keys.json", [{"name": "alice", "sha256": digest("a-key")}])
    store = KeyStore(None, path)
    assert store.reload_if_changed() is False  # unchanged: one stat, no reload

    write(path, [{"name": "bob", "sha256": digest("b-key")}])
    os.utime(path, ns=(1, 1))  # a different mtime even within one clock tick
    assert store.reload_if_changed() is True
    assert (store.lookup("a-key"), store.lookup("b-key")) == (None, "bob")

    with caplog.at_level(logging.ERROR, logger="authd.keys"):
        path.write_text('{"keys": [')  # a half-written file
        assert store.reload_if_changed() is False
        assert store.lookup("b-key") == "bob"
        path.unlink()
        assert store.reload_if_changed() is False
        assert store.lookup("b-key") == "bob"
    assert digest("b-key") not in caplog.text


def test_lookup_compares_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time w.r.t. the key set: the loop never stops at the first match."""
    path = write(tmp_path / "keys.json", [{"name": f"k{i}", "sha256": digest(f"key-{i}")} for i in range(5)])
    store = KeyStore(None, path)
    calls = []
    import authd.keys as keys_module

    real = keys_module.hmac.compare_digest
    monkeypatch.setattr(keys_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for token in ("key-0", "key-4", "nope"):
        calls.clear()
        store.lookup(token)
        assert len(calls) == 5


def test_a_broken_reload_is_reported_until_a_good_file_arrives(tmp_path: Path) -> None:
    """Issue 13: the last good set keeps serving, but `problem` says the file on disk is not in force."""
    path = write(tmp_path / "keys.json", [{"name": "alice", "sha256": digest("a-key")}])
    store = KeyStore(None, path)
    assert store.problem is None
    path.write_text('{"keys": [{"name": "alice"')  # a revocation edit that broke the JSON
    os.utime(path, ns=(2, 2))
    store.reload_if_changed()
    assert store.problem is not None and "not loaded" in store.problem and str(path) in store.problem
    assert store.lookup("a-key") == "alice"  # still the last good set
    path.unlink()
    store.reload_if_changed()
    assert store.problem is not None and "disappeared" in store.problem
    write(path, [{"name": "bob", "sha256": digest("b-key")}])
    store.reload_if_changed()
    assert store.problem is None
    assert (store.lookup("a-key"), store.lookup("b-key")) == (None, "bob")
