"""Infra fixtures: nspawn hosts provisioned by site.yml, or, with --hosts, a real host.

Without --hosts the tests boot private systemd containers (harness.md §4): `nspawn_host` is a dev host,
provisioned twice by site.yml (with a token "refresh" on the host in between); `prod_host` is a second,
unprovisioned container that the promotion test deploys to. `host` points testinfra at the dev host. With
`pytest tests/infra --hosts=ssh://user@host --sudo` nothing is booted: the same read-only checks run against
that host and the mutating tests skip.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
import yaml

from tests.infra.nspawn import ANSIBLE, NspawnHost

CODEX_HOME = "/var/lib/codex-api/.codex-api"
# A stand-in for the vault's vault_codex_auth_json (never a real token): seeded once, then host state.
SEED_LOGIN = '{"OPENAI_API_KEY": null, "seeded_by": "the vault"}'
# What codex leaves after refreshing its tokens on the host; the next playbook run must not touch it.
REFRESHED_LOGIN = '{"OPENAI_API_KEY": null, "refreshed_by": "codex on the host"}'
# CI hosts have no Codex login that works (and no internet): they choose the offline model explicitly.
CI_HOST_VARS = {"app_backend": "offline"}


def live_container_mode(config: pytest.Config) -> bool:
    return not config.option.hosts


def _require_prerequisites() -> None:
    missing = [t for t in ("systemd-nspawn", "mmdebstrap", "nsenter", "ssh", "zstd", "openssl") if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        pytest.fail(
            f"infra tests need root and {missing or 'these tools'}: apt-get install systemd-container mmdebstrap "
            "zstd openssh-client util-linux openssl (`make apt`); deselect with -m 'not infra'"
        )


def _keep_or_stop(h: NspawnHost) -> None:
    if os.environ.get("INFRA_KEEP") == "1":
        print(f"kept: nsenter -t {h.leader} -a bash ; kill {h.proc.pid if h.proc else '?'}", file=sys.stderr)
        if h.proc is not None:
            h.proc.returncode = 0  # left running on purpose: silences Popen's "still running" warning
    else:
        h.stop()


def main_pid(h: NspawnHost, unit: str = "codex-api.service") -> str:
    return h.exec(f"systemctl show -p MainPID --value {unit}").stdout.strip()


@pytest.fixture(scope="session")
def nspawn_host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    if not live_container_mode(request.config):
        pytest.skip("--hosts given: testing an existing host, nothing to boot or mutate")
    _require_prerequisites()
    h = NspawnHost(tmp_path_factory.mktemp("nspawn"), "dev", {**CI_HOST_VARS, "codex_home_auth_json": SEED_LOGIN})
    try:
        t0 = time.monotonic()
        h.build_artifacts()
        h.start()
        t1 = time.monotonic()
        h.first_changed, h.first_out = h.playbook()
        t2 = time.monotonic()
        # As a token refresh would: codex rewrites auth.json on the host (same file, same owner and mode).
        refresh = f"printf '%s\\n' {shlex.quote(REFRESHED_LOGIN)} > {CODEX_HOME}/auth.json"
        h.exec(f"runuser -u codex -- sh -c {shlex.quote(refresh)}")
        h.login_before_second = h.digests([f"{CODEX_HOME}/auth.json"])
        h.pid_before_second = main_pid(h)
        h.second_changed, h.second_out = h.playbook()
        h.login_after_second = h.digests([f"{CODEX_HOME}/auth.json"])
        h.pid_after_second = main_pid(h)
        h.timings = {"boot": t1 - t0, "first_run": t2 - t1, "second_run": time.monotonic() - t2}
        print(f"\n{h.name}: " + ", ".join(f"{k} {v:.1f}s" for k, v in h.timings.items()), file=sys.stderr)
        yield h
    finally:
        _keep_or_stop(h)


def _origin_cert(directory: Path, name: str) -> tuple[str, str]:
    """A throwaway self-signed certificate for `name` (prod's traefik_api_host; sniStrict needs a match)."""
    cert, key = directory / "origin.crt", directory / "origin.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert.read_text(), key.read_text()


@pytest.fixture(scope="session")
def prod_host(nspawn_host: NspawnHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    """A second container with the prod inventory, booted but not provisioned: promotion is its first deploy.

    Test-only host variables on top of prod's group_vars: the offline model (no login here), one worker, and a
    certificate for prod's public name (the committed prod vault is an example without one)."""
    workdir = tmp_path_factory.mktemp("nspawn-prod")
    prod_vars = yaml.safe_load((ANSIBLE / "inventories/prod/group_vars/all/vars.yml").read_text())
    cert, key = _origin_cert(workdir, prod_vars["traefik_api_host"])
    host_vars = {**CI_HOST_VARS, "app_worker_count": 1, "traefik_tls_cert": cert, "traefik_tls_key": key}
    h = NspawnHost(workdir, "prod", host_vars)
    h.artifacts = nspawn_host.artifacts
    try:
        h.start()
        yield h
    finally:
        _keep_or_stop(h)


@pytest.fixture(scope="module")
def host(request: pytest.FixtureRequest, _testinfra_host: testinfra.host.Host) -> testinfra.host.Host:
    """Same name as testinfra's own fixture: the real host with --hosts, else the provisioned dev container.

    `_testinfra_host` is requested so testinfra parametrises it from --hosts; without --hosts it is
    its idle "local" backend, which is never used (never run testinfra on the controller itself).
    """
    if not live_container_mode(request.config):
        return _testinfra_host
    nh: NspawnHost = request.getfixturevalue("nspawn_host")
    return testinfra.get_host(f"ssh://{nh.name}", ssh_config=str(nh.ssh_config), sudo=True)
