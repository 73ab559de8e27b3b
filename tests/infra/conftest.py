"""Infra fixtures: one nspawn host per run, provisioned twice by site.yml; or, with --hosts, a real host.

Without --hosts the tests boot a private systemd container (harness.md §4), apply the playbook, and
point testinfra's `host` at it. With `pytest tests/infra --hosts=ssh://user@host --sudo` nothing is
booted: the same read-only checks run against that host and the mutating tests skip.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator

import pytest
import testinfra

from tests.infra.nspawn import NspawnHost


def live_container_mode(config: pytest.Config) -> bool:
    return not config.option.hosts


def _require_prerequisites() -> None:
    missing = [t for t in ("systemd-nspawn", "mmdebstrap", "nsenter", "ssh", "zstd") if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        pytest.fail(
            f"infra tests need root and {missing or 'these tools'}: apt-get install systemd-container mmdebstrap "
            "zstd openssh-client util-linux (`make apt`); deselect with -m 'not infra'"
        )


@pytest.fixture(scope="session")
def nspawn_host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    if not live_container_mode(request.config):
        pytest.skip("--hosts given: testing an existing host, nothing to boot or mutate")
    _require_prerequisites()
    h = NspawnHost(tmp_path_factory.mktemp("nspawn"))
    try:
        t0 = time.monotonic()
        h.build_artifacts()
        h.start()
        t1 = time.monotonic()
        h.first_changed, h.first_out = h.playbook()
        t2 = time.monotonic()
        h.second_changed, h.second_out = h.playbook()
        h.timings = {"boot": t1 - t0, "first_run": t2 - t1, "second_run": time.monotonic() - t2}
        print(f"\n{h.name}: " + ", ".join(f"{k} {v:.1f}s" for k, v in h.timings.items()), file=sys.stderr)
        yield h
    finally:
        if os.environ.get("INFRA_KEEP") == "1":
            print(f"kept: nsenter -t {h.leader} -a bash ; kill {h.proc.pid if h.proc else '?'}", file=sys.stderr)
            if h.proc is not None:
                h.proc.returncode = 0  # left running on purpose: silences Popen's "still running" warning
        else:
            h.stop()


@pytest.fixture(scope="module")
def host(request: pytest.FixtureRequest, _testinfra_host: testinfra.host.Host) -> testinfra.host.Host:
    """Same name as testinfra's own fixture: the real host with --hosts, else the provisioned container.

    `_testinfra_host` is requested so testinfra parametrises it from --hosts; without --hosts it is
    its idle "local" backend, which is never used (never run testinfra on the controller itself).
    """
    if not live_container_mode(request.config):
        return _testinfra_host
    nh: NspawnHost = request.getfixturevalue("nspawn_host")
    return testinfra.get_host(f"ssh://{nh.name}", ssh_config=str(nh.ssh_config), sudo=True)
