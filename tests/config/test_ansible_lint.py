"""Static gates for ansible/ (style.md rule 34): yamllint, ansible-lint production profile, and
`ansible-playbook --syntax-check` against both inventories."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.config

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent
# The committed example vaults use the documented dev password (docs/deploy.md).
VAULT_PASS = ANSIBLE / "inventories/dev/vault-password.txt"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool
    if not exe.exists():
        pytest.fail(f"{tool} is missing: pip install -e '.[test]' (ansible-core, ansible-lint, yamllint)")
    env = {**os.environ, "ANSIBLE_VAULT_PASSWORD_FILE": str(VAULT_PASS), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(exe), *args], cwd=ANSIBLE, capture_output=True, text=True, env=env, check=False)


def test_yamllint_clean() -> None:
    r = _run("yamllint", "--strict", ".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_lint_production_profile() -> None:
    r = _run("ansible-lint", "--profile", "production")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "failure(s)" in r.stderr + r.stdout


@pytest.mark.parametrize("playbook", ["site.yml", "rollback.yml", "login.yml", "verify.yml"])
@pytest.mark.parametrize("inventory", ["dev", "prod"])
def test_playbook_syntax(inventory: str, playbook: str) -> None:
    r = _run("ansible-playbook", "-i", f"inventories/{inventory}/hosts.yml", "--syntax-check", playbook)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("inventory", ["dev", "prod"])
def test_vault_files_are_encrypted(inventory: str) -> None:
    """Rule 32: secrets only in vault.yml, and that file never in clear text."""
    text = (ANSIBLE / f"inventories/{inventory}/group_vars/all/vault.yml").read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.1;AES256\n")


def test_secrets_only_referenced_outside_vaults() -> None:
    """Every vault_* variable is defined in the vault and only referenced (as a template) elsewhere."""
    for inventory in ("dev", "prod"):
        for line in (ANSIBLE / f"inventories/{inventory}/group_vars/all/vars.yml").read_text().splitlines():
            if "vault_" in line and not line.lstrip().startswith("#"):
                assert "{{ vault_" in line, line


def test_traefik_env_names_match_the_reference_env_file() -> None:
    """The role renders exactly the names traefik/dynamic/*.yml read ({{ env "X" }}), per traefik/env/prod.env."""

    ref = Path(ANSIBLE.parent / "traefik/env/prod.env").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ref, re.M))
    defaults = yaml.safe_load((ANSIBLE / "roles/traefik/defaults/main.yml").read_text())
    assert set(defaults["traefik_env"]) == names
