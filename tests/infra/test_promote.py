"""Promotion dev → prod (ansible/promote.py) on two containers (issue 10): refused while dev is red, and
prod untouched; then, with dev green, prod (a fresh host: this is its first deploy) ends on exactly the
release dev runs, and passes the same smoke and testinfra checks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.infra.nspawn import ANSIBLE, NspawnHost

pytestmark = [pytest.mark.infra, pytest.mark.slow]


def promote(dev: NspawnHost, prod: NspawnHost, *extra: str) -> subprocess.CompletedProcess[str]:
    """`make promote` with the test's inventories: dev-args/prod-args point at the two containers."""
    cmd = [
        sys.executable,
        str(ANSIBLE / "promote.py"),
        "--no-build",
        *("--dev-args", dev.ansible_args()),
        *("--prod-args", prod.ansible_args()),
        *extra,
    ]
    r = subprocess.run(cmd, cwd=ANSIBLE.parent, env=dev.ansible_env(), capture_output=True, text=True, check=False)
    n = len(list(dev.workdir.glob("promote-*.log")))
    (dev.workdir / f"promote-{n + 1}.log").write_text(r.stdout + r.stderr)
    return r


@dataclass
class Promotion:
    release: str
    refused: subprocess.CompletedProcess[str]
    prod_after_refusal: str
    promoted: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def promotion(nspawn_host: NspawnHost, prod_host: NspawnHost) -> Promotion:
    release = (nspawn_host.artifacts / "RELEASE").read_text().strip()
    assert nspawn_host.current_release() == release
    # The injected failure: authd down on dev, so every request through Traefik fails its forwardAuth.
    nspawn_host.exec("systemctl stop codex-authd.service")
    try:
        refused = promote(nspawn_host, prod_host)
    finally:
        nspawn_host.exec("systemctl start codex-authd.service")
    prod_after = prod_host.exec("test -e /opt/codex-api && echo provisioned || echo untouched").stdout.strip()
    return Promotion(release, refused, prod_after, promote(nspawn_host, prod_host))


def test_promotion_refuses_while_dev_is_red(promotion: Promotion) -> None:
    out = promotion.refused.stdout + promotion.refused.stderr
    assert promotion.refused.returncode == 1, out[-3000:]
    assert "is red: the smoke checks failed" in out
    assert f"REFUSED: dev is red or does not run {promotion.release}" in out


def test_a_refused_promotion_leaves_prod_untouched(promotion: Promotion) -> None:
    assert promotion.prod_after_refusal == "untouched"


def test_promotion_puts_exactly_the_dev_release_on_prod(
    promotion: Promotion, nspawn_host: NspawnHost, prod_host: NspawnHost
) -> None:
    out = promotion.promoted.stdout + promotion.promoted.stderr
    assert promotion.promoted.returncode == 0, out[-5000:]
    assert f"promoted {promotion.release}" in out
    assert prod_host.current_release() == nspawn_host.current_release() == promotion.release


def test_promoted_prod_passed_smoke_and_testinfra(promotion: Promotion, prod_host: NspawnHost) -> None:
    out = promotion.promoted.stdout
    assert out.count("smoke: 6/6 passed") == 4, "dev and prod, each direct and through Traefik"
    assert "passed" in out.split("Run the testinfra host checks")[-1]
    env = prod_host.exec("cat /etc/codex-api/app.env").stdout
    assert "PROXY_ENV=prod" in env and "PROXY_BACKEND=offline" in env
