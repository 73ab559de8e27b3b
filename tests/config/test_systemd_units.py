"""Static gates for the units in systemd/: `systemd-analyze verify` (stderr must stay empty, because
typos and bad values only warn) and `systemd-analyze security --offline=true` per-unit exposure limits."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.config

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"

# Exposure ceilings (issue 3): authd and Traefik take the full hardening set; the app keeps what
# Codex's bubblewrap sandbox needs (user + mount namespaces), so its ceiling is higher.
THRESHOLDS = {
    "codex-api.service": 5.0,
    "codex-authd.service": 2.0,
    "traefik.service": 2.0,
    "codex-origin-firewall.service": 2.0,
}
# Executables each unit starts; verify fails when ExecStart= points at a missing file.
EXECUTABLES = (
    "opt/codex-api/current/venv/bin/python",
    "opt/codex-api/current/venv/bin/codex-authd",
    "opt/traefik/bin/traefik",
    "usr/sbin/nft",
)


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return exe


@pytest.fixture(scope="module")
def fakeroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the stock units (else `sysinit.target not found`) and stub executables."""
    root = tmp_path_factory.mktemp("fakeroot")
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
    for rel in EXECUTABLES:
        exe = root / rel
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def test_every_unit_has_a_threshold() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(THRESHOLDS)


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_unit_verifies_cleanly(fakeroot: Path, name: str) -> None:
    unit = fakeroot / "etc/systemd/system" / name
    shutil.copyfile(UNITS / name, unit)
    r = subprocess.run(
        [_analyze(), "verify", "--man=no", f"--root={fakeroot}", str(unit)], capture_output=True, text=True, check=False
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_unit_exposure_within_threshold(name: str) -> None:
    limit = THRESHOLDS[name]
    r = subprocess.run(
        [_analyze(), "security", "--offline=true", f"--threshold={int(limit * 10)}", str(UNITS / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    assert m, r.stdout[-500:] + r.stderr[-500:]
    assert float(m.group(1)) <= limit, r.stdout[-800:]
    assert r.returncode == 0, r.stdout[-800:]


def _directives(text: str) -> list[tuple[str, str]]:
    section, out = "", []
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and "=" in line:
            out.append((section, line.split("=", 1)[0]))
    return out


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_directives_alphabetical_within_sections(name: str) -> None:
    """style.md rule 26: alphabetical order makes a missing hardening line easy to spot in review."""
    pairs = _directives((UNITS / name).read_text())
    for section in {s for s, _ in pairs}:
        keys = [k for s, k in pairs if s == section]
        assert keys == sorted(keys), f"{name} {section}: {keys}"


def test_app_unit_keeps_what_bubblewrap_needs() -> None:
    """Rule 28: the unit that spawns codex must not block user/mount namespaces."""
    text = (UNITS / "codex-api.service").read_text()
    assert not re.search(r"^PrivateUsers=", text, re.M)
    assert not re.search(r"^RestrictNamespaces=", text, re.M)
    assert not re.search(r"^SystemCallFilter=~.*@mount", text, re.M)
    for omitted in ("PrivateUsers=", "RestrictNamespaces="):
        assert re.search(rf"^#.*{omitted}", text, re.M), f"omission of {omitted} must be explained"


def _value(text: str, key: str) -> str:
    m = re.search(rf"^{key}=(\S+)$", text, re.M)
    assert m, f"{key}= missing"
    return m.group(1)


def _bytes(value: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_app_unit_contains_a_runaway() -> None:
    """Issue 13: memory and task ceilings, no swap, and an OOM kill is one worker's failure, not the service's.
    The ceiling leaves room for the default workers at the app's own per-worker watchdog limit."""
    from app.settings import Settings

    text = (UNITS / "codex-api.service").read_text()
    high, top = _bytes(_value(text, "MemoryHigh")), _bytes(_value(text, "MemoryMax"))
    defaults = Settings()
    assert defaults.worker_count * defaults.worker_max_rss_mb * 2**20 < high < top
    assert _value(text, "MemorySwapMax") == "0"
    assert _value(text, "OOMPolicy") == "continue"
    assert 100 <= int(_value(text, "TasksMax")) <= 4096
