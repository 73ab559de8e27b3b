"""An operator's older environment file is never ignored silently (issue 12).

Every variable the older implementation read (tests/data/legacy-env-vars.txt, from parity.md §12) has exactly one
fate in app/legacy_env.py and in the README's migration table; each renamed or obsolete one, when set, yields
exactly one startup warning naming it (in the app's log); each refused value stops startup with its message;
unknown PROXY_*/WORKER_*/CODEX_* variables are listed in one warning.
"""

from __future__ import annotations

import logging
import re

import pytest

from app import legacy_env
from app import settings as settings_module
from app.legacy_env import TABLE, entry
from app.main import create_app
from app.settings import ConfigError, Settings
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "data" / "legacy-env-vars.txt"
OLD_VARS = [line.strip() for line in FIXTURE.read_text().splitlines() if line.strip() and not line.startswith("#")]
PROD = {"PROXY_ENV": "prod", "PROXY_API_KEY": "p" * 40}

# A value each variable may carry in an old env file without being refused (refused ones: their harmless value).
SAMPLE = {
    "PROXY_TRUST_PROXY": "loopback",
    "CODEX_APPROVAL_POLICY": "on-request",
    "TOKEN_LOG_PATH": "/tmp/old-usage.ndjson",
    "PROXY_USE_APP_SERVER": "true",
}


def _concrete(name: str) -> str:
    return "SMOKE_BASE_URL" if name == "SMOKE_*" else name


def _sample(name: str) -> str:
    item = entry(name)
    assert item is not None
    if item.fate == "refused":
        return item.harmless[0]
    return SAMPLE.get(name, "1")


def _warnings_naming(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    word = re.compile(rf"(?<![A-Z_]){re.escape(name)}(?![A-Z_])")
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and word.search(r.getMessage())]


def _read_by_settings(environ: dict[str, str]) -> set[str]:
    """What the settings readers look up: the same recording `Settings.from_env` uses to tell known from unknown."""
    seen: set[str] = set()

    class Recording(settings_module._Env):
        def __getitem__(self, name: str) -> str:
            seen.add(name)
            return super().__getitem__(name)

    real = settings_module._Env
    settings_module._Env = Recording  # type: ignore[misc]
    try:
        Settings.from_env(environ)
    finally:
        settings_module._Env = real  # type: ignore[misc]
    return seen


def test_every_old_variable_has_exactly_one_fate():
    names = [item.name for item in TABLE]
    assert len(names) == len(set(names)), "a variable appears twice in the table"
    missing = [name for name in OLD_VARS if entry(_concrete(name)) is None]
    assert missing == []
    assert sorted(names) == sorted(OLD_VARS), "the table and the fixture list different variables"


def test_fates_agree_with_what_the_readers_read():
    """`honoured` means the settings readers read it; anything else must not be read. A branch that starts reading an
    obsolete variable (issue 14's output modes) fails here until its entry says honoured."""
    read = _read_by_settings({}) | _read_by_settings(PROD)
    honoured = {item.name for item in TABLE if item.fate == "honoured"}
    assert sorted(honoured - read) == [], "honoured in the table but not read by app/settings.py"
    stale = sorted(item.name for item in TABLE if item.fate != "honoured" and item.name in read)
    assert stale == [], f"read by app/settings.py now: flip these to honoured in app/legacy_env.py: {stale}"


RENAMED_OR_OBSOLETE = [name for name in OLD_VARS if entry(_concrete(name)).fate in ("renamed", "obsolete")]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", RENAMED_OR_OBSOLETE)
def test_a_renamed_or_obsolete_variable_gets_exactly_one_startup_warning(name, caplog):
    var = _concrete(name)
    settings = Settings.from_env({var: _sample(name)})
    with caplog.at_level(logging.WARNING):
        create_app(settings)
    warnings = _warnings_naming(caplog, var)
    assert len(warnings) == 1, warnings
    item = entry(var)
    assert item is not None
    if item.fate == "renamed":
        assert item.new is not None
        assert item.new in warnings[0]


REFUSED = [item for item in TABLE if item.fate == "refused"]


@pytest.mark.parametrize("item", REFUSED, ids=[i.name for i in REFUSED])
def test_a_refused_value_stops_startup_with_its_message(item):
    value = "false" if item.harmless == ("1", "true", "yes", "on") else "true"
    with pytest.raises(ConfigError, match=re.escape(f"{item.name}={value} cannot be honoured")):
        Settings.from_env({item.name: value})


@pytest.mark.parametrize("item", REFUSED, ids=[i.name for i in REFUSED])
def test_a_refused_variable_at_its_harmless_value_is_one_warning(item, caplog):
    with caplog.at_level(logging.WARNING):
        create_app(Settings.from_env({item.name: item.harmless[0]}))
    assert len(_warnings_naming(caplog, item.name)) == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROXY_SANDBOX_MODE": "danger-full-access"}, "PROXY_ALLOW_DANGER_FULL_ACCESS=true"),
        ({**PROD, "PROXY_USAGE_ALLOW_UNAUTH": "true"}, "PROXY_USAGE_ALLOW_UNAUTH=true is refused with PROXY_ENV=prod"),
        ({"PROXY_APPROVAL_POLICY": "on-failure"}, "on-failure is not supported by codex 0.169.0"),
        ({"CODEX_APPROVAL_POLICY": "on-failure"}, "on-failure is not supported by codex 0.169.0"),
        ({"PROXY_TRUST_PROXY": "true"}, "PROXY_TRUST_PROXY='true' cannot be honoured"),
        ({"PROXY_TRUST_PROXY": "2"}, "PROXY_TRUST_PROXY='2' cannot be honoured"),
        ({"PROXY_ENV": "production"}, "PROXY_ENV='production' must be one of dev, prod"),
        ({"CODEX_FORCE_PROVIDER": "mine", "PROXY_BACKEND": "offline"}, "CODEX_FORCE_PROVIDER cannot be used"),
        ({"CODEX_FORCE_PROVIDER": 'x" -c y="z'}, "CODEX_FORCE_PROVIDER=.* is not a provider id"),
        ({"PROXY_ENABLE_OTEL": "true"}, "PROXY_ENABLE_OTEL=true needs a collector"),
        ({"OTEL_ENABLED": "true"}, "PROXY_ENABLE_OTEL=true needs a collector"),
        ({"PROXY_SANDBOX_MODE": "yolo"}, "PROXY_SANDBOX_MODE='yolo' must be one of"),
    ],
    ids=[
        "danger-without-opt-in",
        "usage-unauth-in-prod",
        "approval-on-failure",
        "old-approval-on-failure",
        "trust-proxy-true",
        "trust-proxy-hops",
        "env-production",
        "provider-with-offline",
        "provider-injection",
        "otel-without-collector",
        "otel-enabled-alias-without-collector",
        "unknown-sandbox",
    ],
)
def test_unsafe_or_impossible_values_of_honoured_variables_stop_startup(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_danger_full_access_with_the_second_opt_in_is_accepted():
    s = Settings.from_env({"PROXY_SANDBOX_MODE": "danger-full-access", "PROXY_ALLOW_DANGER_FULL_ACCESS": "true"})
    assert s.sandbox_mode == "danger-full-access"


def test_read_only_and_never_stay_the_defaults():
    s = Settings.from_env({})
    assert (s.sandbox_mode, s.approval_policy, s.kill_on_disconnect, s.default_stream) == (
        "read-only",
        "never",
        True,
        False,
    )


def test_unknown_prefixed_variables_are_listed_in_one_warning(caplog):
    env = {"PROXY_TIMEOUT_MSS": "1", "WORKER_MAX_CONCURENCY": "3", "CODEX_MODLE": "x", "UNRELATED_THING": "1"}
    with caplog.at_level(logging.WARNING):
        create_app(Settings.from_env(env))
    unknown = [r.getMessage() for r in caplog.records if "unknown variables" in r.getMessage()]
    assert len(unknown) == 1
    assert unknown[0].endswith("CODEX_MODLE, PROXY_TIMEOUT_MSS, WORKER_MAX_CONCURENCY")
    assert "UNRELATED_THING" not in unknown[0]


def test_every_variable_the_readers_read_is_known():
    """Set every variable the readers read (with its own default): no warning at all, so a variable another branch
    adds to app/settings.py can never be reported unknown."""
    read = _read_by_settings({})
    defaults = {name: value for name, value in _defaults().items() if name in read}
    assert Settings.from_env(defaults).startup_warnings == ()


def _defaults() -> dict[str, str]:
    """A harmless value for each variable the readers read."""
    values = {name: "" for name in _read_by_settings({})}
    values.update({"PORT": "11435", "PROXY_ENV": "dev", "PROXY_WORKER_COUNT": "2", "PROXY_API_KEY": "k" * 32})
    return values


def test_codex_passthrough_and_empty_values_warn_nothing():
    env = {"CODEX_CA_CERTIFICATE": "/etc/ssl/ca.pem", "PROXY_OUTPUT_MODE": "", "TOKEN_LOG_PATH": "  "}
    assert Settings.from_env(env).startup_warnings == ()


def test_a_renamed_variable_is_used_under_its_new_name_and_ours_wins():
    assert Settings.from_env({"TOKEN_LOG_PATH": "/tmp/a.ndjson"}).usage_log == "/tmp/a.ndjson"
    both = Settings.from_env({"TOKEN_LOG_PATH": "/tmp/a.ndjson", "PROXY_USAGE_LOG": "/tmp/b.ndjson"})
    assert both.usage_log == "/tmp/b.ndjson"
    assert any("PROXY_USAGE_LOG is set too and wins" in w for w in both.startup_warnings)
    assert Settings.from_env({"CODEX_APPROVAL_POLICY": "untrusted"}).approval_policy == "untrusted"


def test_express_trust_proxy_values_become_cidrs():
    s = Settings.from_env({"PROXY_TRUST_PROXY": "loopback, 10.1.2.3"})
    assert s.trusted_proxies == ("127.0.0.1/8", "::1/128", "10.1.2.3/32")
    assert Settings.from_env({"PROXY_TRUST_PROXY": "false"}).trusted_proxies == ()


def test_node_env_production_means_prod_when_proxy_env_is_unset():
    with pytest.raises(ConfigError, match="PROXY_API_KEY"):
        Settings.from_env({"NODE_ENV": "production"})
    assert Settings.from_env({"NODE_ENV": "production", "PROXY_ENV": "dev"}).env == "dev"


def test_otel_endpoints():
    base = Settings.from_env({"OTEL_ENABLED": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert base.otel_endpoint == "http://collector:4318/v1/traces"
    assert base.otel_enabled
    url = Settings.from_env({"PROXY_ENABLE_OTEL": "1", "PROXY_OTEL_EXPORTER_URL": "http://c:4318/custom"})
    assert url.otel_endpoint == "http://c:4318/custom"


def test_pending_entries_are_obsolete_until_their_issue_lands():
    pending = {item.name: item.until for item in TABLE if item.until}
    assert all(entry(name).fate == "obsolete" for name in pending)  # type: ignore[union-attr]
    # issue 14 landed: its variables are honoured now
    assert {entry(n).fate for n in ("PROXY_OUTPUT_MODE", "PROXY_STOP_AFTER_TOOLS", "PROXY_TOOL_BLOCK_MAX")} == {  # type: ignore[union-attr]
        "honoured"
    }


def _readme_migration_rows() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Migrating from the older implementation", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\| `([A-Z0-9_*]+)` \| (honoured|renamed|obsolete|refused)\b", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_readme_migration_table_matches_the_code():
    assert _readme_migration_rows() == {item.name: item.fate for item in TABLE}


def test_review_is_pure_and_reports_refusals_without_raising():
    found = legacy_env.review({"PROXY_TEST_ENDPOINTS": "true", "PROXY_DEBUG_WIRE": "1"}, read=set())
    assert len(found.refusals) == 1
    assert len(found.warnings) == 1
