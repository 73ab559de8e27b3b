"""Dev and prod differ only in the values of their inventory variables, never in which variables exist
(issue 10): a key set on one side and forgotten on the other is how a promoted release behaves differently
in prod than it did on dev. Compared: group_vars/all/vars.yml, the vault's keys (decrypted with the
committed example password; values are never compared or printed), and hosts.yml's groups and host keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.config

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
INVENTORIES = ANSIBLE / "inventories"
VAULT_PASS = INVENTORIES / "dev/vault-password.txt"


def key_diff(dev: dict[str, Any], prod: dict[str, Any]) -> list[str]:
    """Human-readable differences between two key sets, empty when they match."""
    return [f"only in dev: {k}" for k in sorted(dev.keys() - prod.keys())] + [
        f"only in prod: {k}" for k in sorted(prod.keys() - dev.keys())
    ]


def _vars(inventory: str) -> dict[str, Any]:
    return yaml.safe_load((INVENTORIES / inventory / "group_vars/all/vars.yml").read_text()) or {}


def _vault(inventory: str) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "ansible-vault"
    r = subprocess.run(
        [
            str(exe),
            "view",
            "--vault-password-file",
            str(VAULT_PASS),
            f"inventories/{inventory}/group_vars/all/vault.yml",
        ],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout) or {}


def _host_shape(inventory: str) -> dict[str, Any]:
    """group name → the union of the variable names its hosts set (names only)."""
    tree = yaml.safe_load((INVENTORIES / inventory / "hosts.yml").read_text())
    shape: dict[str, Any] = {}
    for group, body in tree.items():
        hosts = (body or {}).get("hosts") or {}
        shape[group] = sorted({k for host_vars in hosts.values() for k in (host_vars or {})})
    return shape


def test_key_diff_reports_a_key_missing_on_either_side() -> None:
    assert key_diff({"a": 1, "b": 2}, {"a": 3, "c": 4}) == ["only in dev: b", "only in prod: c"]
    assert key_diff({"a": 1}, {"a": 2}) == []


def test_group_vars_have_the_same_keys() -> None:
    assert key_diff(_vars("dev"), _vars("prod")) == []


def test_vaults_have_the_same_keys() -> None:
    assert key_diff(_vault("dev"), _vault("prod")) == []


def test_hosts_files_have_the_same_groups_and_host_keys() -> None:
    dev, prod = _host_shape("dev"), _host_shape("prod")
    assert key_diff(dev, prod) == []
    assert dev == prod, "each group's hosts set the same variables in both inventories"


def test_the_environments_do_differ_in_values() -> None:
    """The comparison is about keys: the values that make an environment what it is do differ."""
    dev, prod = _vars("dev"), _vars("prod")
    assert (dev["app_env"], prod["app_env"]) == ("dev", "prod")
    assert dev["traefik_api_host"] != prod["traefik_api_host"]
