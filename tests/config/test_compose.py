"""compose/ files: schema-checked (no Docker engine here) and consistent with the systemd layout.

The official compose-spec JSON schema is not vendored; SCHEMA below is our own strict subset
written from the Compose specification's service reference: every key we use, with
`additionalProperties: false`, so a typo or an unsupported key fails here instead of on a host.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
ROLES = REPO / "ansible/roles"

_STR_LIST = {"type": "array", "items": {"type": "string"}}
_ENV = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}}
_HEALTH = {
    "type": "object",
    "properties": {
        "test": {"oneOf": [{"type": "string"}, _STR_LIST]},
        **{k: {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"} for k in ("interval", "timeout", "start_period")},
        "retries": {"type": "integer", "minimum": 1},
    },
    "required": ["test"],
    "additionalProperties": False,
}
_SERVICE = {
    "type": "object",
    "properties": {
        "image": {"type": "string"},
        "build": {
            "type": "object",
            "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}},
            "additionalProperties": False,
        },
        "command": {"oneOf": [{"type": "string"}, _STR_LIST]},
        "env_file": _STR_LIST,
        "environment": _ENV,
        "ports": {"type": "array", "items": {"type": "string", "pattern": r"^[\d.]+:\d+:\d+(/tcp|/udp)?$"}},
        "volumes": {"type": "array", "items": {"type": "string", "pattern": r"^[^:]+:/[^:]*(:(ro|rw))?$"}},
        "secrets": _STR_LIST,
        "healthcheck": _HEALTH,
        "read_only": {"type": "boolean"},
        "tmpfs": _STR_LIST,
        "cap_drop": _STR_LIST,
        "security_opt": _STR_LIST,
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "user": {"type": "string"},
        "stop_grace_period": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
    },
    "required": ["image", "command"],
    "additionalProperties": False,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {"type": "object", "additionalProperties": _SERVICE, "minProperties": 1},
        "secrets": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"file": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "volumes": {"type": "object", "additionalProperties": {"type": "object", "maxProperties": 0}},
    },
    "patternProperties": {"^x-": {}},
    "required": ["name", "services"],
    "additionalProperties": False,
}
FILES = ["compose.yaml", "compose.dev.yaml"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / name).read_text())


def _env_names(template: Path) -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", template.read_text(), re.M))


def _default(role: str, key: str) -> Any:
    return yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())[key]


@pytest.mark.parametrize("name", FILES)
def test_matches_schema(name: str) -> None:
    jsonschema.validate(_load(name), SCHEMA)


def test_schema_rejects_a_typo() -> None:
    """The gate can fail: a misspelt service key is refused."""
    doc = _load("compose.yaml")
    doc["services"]["app"]["helthcheck"] = doc["services"]["app"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize("name", FILES)
def test_ports_are_loopback_and_match_the_units(name: str) -> None:
    services = _load(name)["services"]
    assert services["app"]["ports"] == [f"127.0.0.1:{_default('app', 'app_port')}:{_default('app', 'app_port')}"]
    authd = _default("authd", "authd_port")
    assert services["authd"]["ports"] == [f"127.0.0.1:{authd}:{authd}"]
    assert services["app"]["environment"]["PORT"] == str(_default("app", "app_port"))
    assert services["authd"]["environment"]["AUTHD_PORT"] == str(authd)


def test_env_names_match_the_systemd_env_files() -> None:
    services = _load("compose.yaml")["services"]
    app_names = _env_names(ROLES / "app/templates/etc/codex-api/app.env.j2")
    authd_names = _env_names(ROLES / "authd/templates/etc/codex-api/authd.env.j2") | {"PROXY_API_KEYS_FILE"}
    assert set(services["app"]["environment"]) <= app_names
    assert set(services["authd"]["environment"]) <= authd_names


@pytest.mark.parametrize("name", FILES)
def test_paths_match_the_host_layout(name: str) -> None:
    env = _load(name)["services"]["app"]["environment"]
    state = "/var/lib/codex-api"
    assert env["CODEX_HOME"] == f"{state}/.codex-api"
    version = _default("codex_cli", "codex_cli_version")
    assert env["CODEX_BIN"] == f"/opt/codex-cli/{version}/bin/codex"


def test_dev_codex_home_is_writable_and_health_checked() -> None:
    app = _load("compose.dev.yaml")["services"]["app"]
    home = [v for v in app["volumes"] if v.split(":")[1] == "/var/lib/codex-api/.codex-api"]
    assert home
    assert not home[0].endswith(":ro")
    assert "/readyz" in " ".join(app["healthcheck"]["test"])


def test_dev_stack_has_no_built_in_key() -> None:
    """Issue 13: the old public `codex-local-secret` is gone; the key comes from the developer's environment."""
    for svc in _load("compose.dev.yaml")["services"].values():
        key = svc.get("environment", {}).get("PROXY_API_KEY")
        if key is not None:
            assert key.startswith("${PROXY_API_KEY:?"), key


def test_prod_stack_takes_no_secret_inline() -> None:
    for svc in _load("compose.yaml")["services"].values():
        assert not {"PROXY_API_KEY"} & set(svc.get("environment", {}))


def test_yamllint_clean() -> None:

    conf = "{extends: default, rules: {line-length: {max: 160}, document-start: disable}}"
    r = subprocess.run(
        [str(Path(sys.executable).parent / "yamllint"), "--strict", "-d", conf, *(str(COMPOSE / f) for f in FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
