"""The dev key (app.devkey): random per dev home, 0600, stable across restarts, never in prod (issue 13)."""

from __future__ import annotations

import stat

import pytest

from app.devkey import KEY_FILE, ensure_dev_key
from app.settings import DEV_API_KEY, ConfigError, Settings


def dev(tmp_path, name: str = "codev", **extra: str) -> Settings:
    return Settings.from_env({"CODEX_HOME": str(tmp_path / name), **extra})


def test_first_start_makes_a_random_private_key(tmp_path):
    s = ensure_dev_key(dev(tmp_path))
    path = tmp_path / "codev" / KEY_FILE
    assert path.read_text().strip() == s.api_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert s.api_key != DEV_API_KEY and len(s.api_key) >= 40
    assert ensure_dev_key(dev(tmp_path, "other")).api_key != s.api_key


def test_the_key_survives_a_restart(tmp_path):
    assert ensure_dev_key(dev(tmp_path)).api_key == ensure_dev_key(dev(tmp_path)).api_key


def test_a_loosened_key_file_is_made_private_again(tmp_path):
    key = ensure_dev_key(dev(tmp_path)).api_key
    path = tmp_path / "codev" / KEY_FILE
    path.chmod(0o644)
    assert ensure_dev_key(dev(tmp_path)).api_key == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_configured_key_wins_and_nothing_is_written(tmp_path):
    s = ensure_dev_key(dev(tmp_path, PROXY_API_KEY="k" * 32))
    assert s.api_key == "k" * 32
    assert not (tmp_path / "codev" / KEY_FILE).exists()


def test_prod_never_generates_a_key(tmp_path):
    s = Settings(env="prod", api_keys_file=str(tmp_path / "keys.json"), codex_home=str(tmp_path / "home"))
    assert ensure_dev_key(s).api_key == ""
    assert not (tmp_path / "home").exists()


def test_a_garbled_key_file_is_refused_with_the_fix(tmp_path):
    (tmp_path / "codev").mkdir()
    (tmp_path / "codev" / KEY_FILE).write_text("short\n")
    with pytest.raises(ConfigError, match="delete it"):
        ensure_dev_key(dev(tmp_path))
