"""Releases on one host (issue 10): a second release deployed after the first, promotion refusing a dev that
runs another release than the checkout, and `rollback.yml` returning to the first — with the Codex home and
its login, the usage ledger and the keys byte-identical before and after."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.conftest import CODEX_HOME, main_pid
from tests.infra.nspawn import ANSIBLE, REPO, NspawnHost
from tests.infra.test_promote import promote

pytestmark = [pytest.mark.infra, pytest.mark.slow]

# State a rollback must never touch: the whole Codex home (login, config, usage ledger, codex's sessions and
# skills), the env and key files, the TLS key.
STATE = [CODEX_HOME, "/etc/codex-api", "/etc/traefik/tls"]
# Except what each codex process keeps for itself and which a restart renews by design: its sqlite databases
# (measured: they differ after a plain restart with no request in between) and its per-process scratch
# directory tmp/arg0-linux/codex-arg0<random>/.
CODEX_RUNTIME = re.compile(rf"\.sqlite(-shm|-wal)?$|^{re.escape(CODEX_HOME)}/tmp/")


def _chat(nh: NspawnHost, text: str) -> tuple[int, str]:
    """One chat completion on the host, straight to the app (the key from the host's own env file)."""
    body = json.dumps({"model": "codev-5", "messages": [{"role": "user", "content": text}]})
    r = nh.exec(
        "PROXY_API_KEY=$(sed -n 's/^PROXY_API_KEY=//p' /etc/codex-api/app.env); "
        "curl -s --max-time 60 http://127.0.0.1:11435/v1/chat/completions "
        f"-H \"Authorization: Bearer $PROXY_API_KEY\" -H 'Content-Type: application/json' -d {shlex.quote(body)} "
        "-w '\\n%{http_code}'",
        check=False,
    )
    text_out, _, status = r.stdout.rpartition("\n")
    content = json.loads(text_out)["choices"][0]["message"]["content"] if status == "200" else text_out
    return int(status or 0), content


def _second_release_artifacts(nh: NspawnHost, workdir: Path) -> Path:
    """Artifacts of a release that differs from the checkout by one comment line (a real, distinct build)."""
    src = workdir / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    for top in ("app", "authd", "traefik"):
        shutil.copytree(REPO / top, src / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    with (src / "app" / "__init__.py").open("a") as f:
        f.write("# release B (tests/infra/test_releases.py)\n")
    out = workdir / "artifacts-b"
    out.mkdir()
    shutil.copytree(nh.artifacts / "wheelhouse", out / "wheelhouse")  # same dependencies: no download
    subprocess.run([sys.executable, str(ANSIBLE / "build_artifacts.py"), str(out), "--source", str(src)], check=True)
    return out


def _state(nh: NspawnHost) -> dict[str, str]:
    return {path: digest for path, digest in nh.digests(STATE).items() if not CODEX_RUNTIME.search(path)}


@dataclass
class Cycle:
    first: str
    second: str
    deploy_changed: int
    on_second: str
    served_on_second: tuple[int, str]
    refused: subprocess.CompletedProcess[str]
    releases_kept: list[str]
    state_before: dict[str, str]
    rollback: subprocess.CompletedProcess[str]
    state_after: dict[str, str]
    after: str
    pid_before_rollback: str
    pid_after_rollback: str
    served_after: tuple[int, str]


@pytest.fixture(scope="module")
def cycle(nspawn_host: NspawnHost, prod_host: NspawnHost, tmp_path_factory: pytest.TempPathFactory) -> Cycle:
    nh = nspawn_host
    first = nh.current_release()
    assert _chat(nh, "before the second release")[0] == 200  # the usage ledger has a record to compare
    artifacts_b = _second_release_artifacts(nh, tmp_path_factory.mktemp("release-b"))
    second = (artifacts_b / "RELEASE").read_text().strip()
    deploy_changed, _ = nh.playbook(artifacts=artifacts_b)
    on_second = nh.current_release()
    served_on_second = _chat(nh, "on the second release")
    refused = promote(nh, prod_host)  # the checkout's artifacts are the first release; dev runs the second
    kept = sorted(nh.exec("ls /opt/codex-api/releases").stdout.split())
    state_before = _state(nh)
    pid_before = main_pid(nh)
    rollback = nh.run_playbook("rollback.yml")
    state_after = _state(nh)
    return Cycle(
        first=first,
        second=second,
        deploy_changed=deploy_changed,
        on_second=on_second,
        served_on_second=served_on_second,
        refused=refused,
        releases_kept=kept,
        state_before=state_before,
        rollback=rollback,
        state_after=state_after,
        after=nh.current_release(),
        pid_before_rollback=pid_before,
        pid_after_rollback=main_pid(nh),
        served_after=_chat(nh, "after the rollback"),
    )


def test_a_second_release_lands_next_to_the_first_and_serves(cycle: Cycle) -> None:
    assert cycle.second != cycle.first
    assert cycle.deploy_changed > 0
    assert cycle.on_second == cycle.second
    assert cycle.releases_kept == sorted([cycle.first, cycle.second])
    assert cycle.served_on_second == (200, "echo: on the second release")


def test_promotion_refuses_a_dev_that_runs_another_release(cycle: Cycle) -> None:
    out = cycle.refused.stdout + cycle.refused.stderr
    assert cycle.refused.returncode == 1, out[-3000:]
    assert f"runs release {cycle.second}, not {cycle.first}" in out
    assert "prod was not touched" in out


def test_rollback_returns_to_the_first_release_and_serves(cycle: Cycle) -> None:
    out = cycle.rollback.stdout + cycle.rollback.stderr
    assert cycle.rollback.returncode == 0, out[-3000:]
    assert f"changed {cycle.second} -> {cycle.first}" in out
    assert cycle.after == cycle.first
    assert cycle.pid_after_rollback != cycle.pid_before_rollback, "the app was restarted on the first release"
    assert cycle.served_after == (200, "echo: after the rollback")


def test_rollback_leaves_login_ledger_config_and_keys_byte_identical(cycle: Cycle) -> None:
    for path in ("auth.json", "usage.ndjson", "config.toml", "AGENTS.md", ".repo-managed.json", "installation_id"):
        assert f"{CODEX_HOME}/{path}" in cycle.state_before, path
    for path in ("/etc/codex-api/api-keys.json", "/etc/codex-api/app.env", "/etc/traefik/tls/origin.key"):
        assert path in cycle.state_before, path
    assert cycle.state_after == cycle.state_before
