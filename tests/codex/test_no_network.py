"""The app and the real codex binary reach nothing but loopback when serving the offline model.

One real turn runs inside a fresh network namespace (only `lo`) under strace; any connect() or sendto() to
an IP address other than loopback would be an attempt to reach the internet (telemetry, update checks, model
catalogues, DNS) and fails the test (harness.md §6).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.codex

INET = re.compile(r"sin6?_addr")
LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|"::ffff:127\.')


def test_a_turn_on_the_offline_model_makes_no_outbound_connection(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("needs root and util-linux `unshare` to create a network namespace")
    if shutil.which("strace") is None:
        pytest.fail("strace missing: apt-get install strace (listed in apt-packages.txt)")
    trace = tmp_path / "connect.trace"
    driver = REPO / "tests" / "codex" / "netcheck_driver.py"
    script = (
        f"ip link set lo up && strace -f -qq -e trace=connect -o {trace} {sys.executable} {driver} {tmp_path / 'home'}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REPLY:echo: no network please" in done.stdout
    addressed = [line for line in trace.read_text().splitlines() if INET.search(line)]
    assert any("connect(" in line and LOOPBACK.search(line) for line in addressed), "no loopback connect traced"
    outbound = [line for line in addressed if not LOOPBACK.search(line)]
    assert outbound == [], outbound[:5]
