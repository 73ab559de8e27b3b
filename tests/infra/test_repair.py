"""Mutating checks, container only (they skip with --hosts): idempotency, and that drift on the host
is both caught by the read-only checks in test_host.py and repaired by the next playbook run."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import pytest

from tests.infra.conftest import REFRESHED_LOGIN
from tests.infra.nspawn import REPO, NspawnHost

pytestmark = [pytest.mark.infra, pytest.mark.slow]

HOST_CHECKS = REPO / "tests/infra/test_host.py"


def _host_checks(nh: NspawnHost, tag: str) -> subprocess.CompletedProcess[str]:
    """Run test_host.py exactly as an operator would against a real host (--hosts=ssh://...)."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", str(HOST_CHECKS), "-q", "-p", "no:cacheprovider"),
            *(f"--hosts=ssh://{nh.name}", f"--ssh-config={nh.ssh_config}", "--sudo"),
            f"--basetemp={nh.workdir / f'inner-{tag}'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_first_run_provisions(nspawn_host: NspawnHost) -> None:
    assert nspawn_host.first_changed > 0


def test_second_run_changes_nothing(nspawn_host: NspawnHost) -> None:
    assert nspawn_host.second_changed == 0, nspawn_host.second_out[-4000:]


def test_second_run_restarts_nothing(nspawn_host: NspawnHost) -> None:
    """Services restart only when something changed (the app's main pid survives an unchanged run)."""
    assert nspawn_host.pid_before_second == nspawn_host.pid_after_second != "0"


def test_a_login_refreshed_on_the_host_survives_the_next_run(nspawn_host: NspawnHost) -> None:
    """The vault seeded auth.json on the first run; codex then rewrote it (a token refresh, simulated between
    the runs). The second run left it byte for byte as the host had it, and reported changed=0 (above)."""
    assert "seeded" not in nspawn_host.first_out  # no_log: the content never shows in the output
    assert nspawn_host.login_before_second == nspawn_host.login_after_second
    refreshed = hashlib.sha256((REFRESHED_LOGIN + "\n").encode()).hexdigest()
    assert list(nspawn_host.login_after_second.values()) == [refreshed]


def test_drift_is_detected_then_repaired(nspawn_host: NspawnHost) -> None:
    nspawn_host.exec("chmod 0755 /var/lib/codex-api/.codex-api && systemctl stop codex-authd.service")

    broken = _host_checks(nspawn_host, "broken")
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert re.search(r"FAILED \S+::test_codex_home_is_private_to_the_service_user\b", broken.stdout), broken.stdout
    assert re.search(r"FAILED \S+::test_unit_enabled_and_active\[\S*codex-authd", broken.stdout), broken.stdout

    changed, out = nspawn_host.playbook()
    assert changed >= 2, out[-3000:]

    repaired = _host_checks(nspawn_host, "repaired")
    assert repaired.returncode == 0, repaired.stdout[-3000:]


def test_codex_sandbox_works_under_the_app_units_hardening(nspawn_host: NspawnHost) -> None:
    """Rule 28 measured, not assumed: a oneshot copy of codex-api.service (same hardening, same user and
    env) runs a command through `codex sandbox` (bubblewrap + codex's own seccomp/Landlock)."""
    unit = (REPO / "systemd/codex-api.service").read_text()
    unit = unit.split("[Install]")[0].replace("Type=exec", "Type=oneshot")
    unit = re.sub(r"^Restart.*\n", "", unit, flags=re.M)
    unit = re.sub(
        r"^ExecStart=.*$",
        "ExecStart=/opt/codex-cli/0.169.0/bin/codex sandbox -- /bin/echo sandboxed-ok",
        unit,
        flags=re.M,
    )
    probe = "/etc/systemd/system/infra-sandbox-probe.service"
    (nspawn_host.root / probe.lstrip("/")).write_text(unit)
    try:
        r = nspawn_host.exec(
            "systemctl daemon-reload && systemctl start infra-sandbox-probe.service; rc=$?; "
            "journalctl -u infra-sandbox-probe.service -o cat --no-pager; exit $rc",
            check=False,
        )
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-1000:]
        assert "sandboxed-ok" in r.stdout
    finally:
        nspawn_host.exec(f"rm -f {probe} && systemctl daemon-reload", check=False)
