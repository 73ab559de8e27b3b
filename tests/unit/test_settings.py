"""Settings are read in one place; bad values and unsafe production set-ups are refused with the fix named."""

from __future__ import annotations

import pytest

from app.settings import DEV_API_KEY, ConfigError, Settings
from tests.conftest import REPO


def test_defaults_are_dev_on_loopback():
    s = Settings.from_env({})
    # No key configured: the app generates a private dev key at start (app.devkey), never a built-in one.
    assert (s.env, s.host, s.port, s.api_key, s.codex_home, s.worker_count) == (
        "dev",
        "127.0.0.1",
        11435,
        "",
        ".codev",
        2,
    )


def test_cors_defaults_to_the_repo_allowlist_not_a_wildcard():
    origins = Settings.from_env({}).cors_allowed_origins
    listed = [line for line in (REPO / "cors-origins.txt").read_text().splitlines() if line and line[0] != "#"]
    assert origins == tuple(listed)
    assert "*" not in origins


def test_prod_uses_the_prod_codex_home():
    s = Settings.from_env({"PROXY_ENV": "prod", "PROXY_API_KEY": "k" * 40})
    assert s.codex_home == ".codex-api"
    assert s.log_json is True


@pytest.mark.parametrize("key", ["", DEV_API_KEY], ids=["empty", "dev-key"])
def test_prod_refuses_the_dev_or_an_empty_key(key):
    with pytest.raises(ConfigError, match="PROXY_API_KEY"):
        Settings.from_env({"PROXY_ENV": "prod", "PROXY_API_KEY": key})


def test_prod_refuses_a_missing_key():
    with pytest.raises(ConfigError, match="PROXY_API_KEY"):
        Settings.from_env({"PROXY_ENV": "prod"})


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PROXY_WORKER_COUNT": "0"}, "PROXY_WORKER_COUNT"),
        ({"PROXY_ENABLE_CORS": "maybe"}, "PROXY_ENABLE_CORS"),
        ({"PROXY_ENV": "staging"}, "PROXY_ENV"),
        ({"PROXY_BACKEND": "gpu"}, "PROXY_BACKEND"),
    ],
)
def test_bad_values_name_the_variable(env, var):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env(env)


def test_lists_and_booleans_parse():
    s = Settings.from_env(
        {"PROXY_CORS_ALLOWED_ORIGINS": "app://obsidian.md, http://localhost", "PROXY_PROTECT_MODELS": "yes"}
    )
    assert s.cors_allowed_origins == ("app://obsidian.md", "http://localhost")
    assert s.protect_models is True
