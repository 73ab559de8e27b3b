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


def test_client_compatibility_defaults():
    s = Settings.from_env({})
    assert (s.output_mode, s.responses_output_mode) == ("openai-json", "openai-json")
    assert (s.stop_after_tools, s.stop_after_tools_mode, s.stop_after_tools_grace_ms) == (False, "burst", 300)
    assert (s.suppress_tail_after_tools, s.tool_block_max, s.expose_reasoning) == (False, 0, True)
    assert (s.fetch_image_urls, s.image_max_bytes, s.image_fetch_test_allowlist) == (True, 5 * 1024 * 1024, ())


@pytest.mark.parametrize(
    ("raw", "mode"), [("obsidian", "obsidian-xml"), ("OBSIDIAN_XML", "obsidian-xml"), ("openai", "openai-json")]
)
def test_output_modes_take_the_older_spellings(raw, mode):
    s = Settings.from_env({"PROXY_OUTPUT_MODE": raw, "PROXY_RESPONSES_OUTPUT_MODE": raw})
    assert (s.output_mode, s.responses_output_mode) == (mode, mode)


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"PROXY_OUTPUT_MODE": "xml"}, "PROXY_OUTPUT_MODE"),
        ({"PROXY_STOP_AFTER_TOOLS_MODE": "all"}, "PROXY_STOP_AFTER_TOOLS_MODE"),
        ({"PROXY_TOOL_BLOCK_MAX": "-1"}, "PROXY_TOOL_BLOCK_MAX"),
        ({"PROXY_IMAGE_FETCH_TEST_ALLOWLIST": "localhost"}, "PROXY_IMAGE_FETCH_TEST_ALLOWLIST"),
        ({"PROXY_IMAGE_FETCH_TEST_ALLOWLIST": "example.com:80"}, "PROXY_IMAGE_FETCH_TEST_ALLOWLIST"),
    ],
)
def test_bad_compatibility_values_name_the_variable(env, var):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env(env)


def test_the_test_only_image_allowlist_is_refused_in_prod():
    env = {"PROXY_ENV": "prod", "PROXY_API_KEY": "k" * 40, "PROXY_IMAGE_FETCH_TEST_ALLOWLIST": "127.0.0.1:8080"}
    with pytest.raises(ConfigError, match="tests only"):
        Settings.from_env(env)
    assert Settings.from_env(
        {"PROXY_IMAGE_FETCH_TEST_ALLOWLIST": "127.0.0.1:8080, [::1]:9"}
    ).image_fetch_test_allowlist == (
        "127.0.0.1:8080",
        "[::1]:9",
    )
