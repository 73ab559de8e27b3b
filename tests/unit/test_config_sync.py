"""Config sync into a Codex home: never auth.json, never a silent overwrite of a host edit (issue 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config_sync import MANIFEST, _sha, sync, templates
from tests.conftest import REPO

LOGIN = b'{"tokens": {"refresh_token": "host-state"}}\n'


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir(mode=0o700)
    (h / "auth.json").write_bytes(LOGIN)
    (h / "auth.json").chmod(0o600)
    return h


def _snapshot(path: Path) -> tuple[bytes, int, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns, st.st_mode


def test_a_fresh_home_gets_both_files_and_a_manifest(home: Path) -> None:
    outcomes, changed = sync(home)
    assert changed
    assert [(o.name, o.action) for o in outcomes] == [("config.toml", "installed"), ("AGENTS.md", "installed")]
    for name, data in templates().items():
        assert (home / name).read_bytes() == data
        assert (home / name).stat().st_mode & 0o777 == 0o600
    assert json.loads((home / MANIFEST).read_text()) == {n: _sha(d) for n, d in templates().items()}


def test_a_second_sync_changes_nothing(home: Path) -> None:
    sync(home)
    before = {p.name: _snapshot(p) for p in home.iterdir()}
    outcomes, changed = sync(home)
    assert not changed
    assert {o.action for o in outcomes} == {"unchanged"}
    assert {p.name: _snapshot(p) for p in home.iterdir()} == before


@pytest.mark.parametrize("policy", ["backup", "refuse"])
def test_auth_json_is_never_touched_or_copied(home: Path, policy: str) -> None:
    before = _snapshot(home / "auth.json")
    (home / "config.toml").write_text("# edited on the host\n")
    sync(home, policy)  # type: ignore[arg-type]
    assert _snapshot(home / "auth.json") == before
    assert not any("auth" in p.name for p in home.iterdir() if p.name != "auth.json")


def test_a_home_without_a_login_gets_none(tmp_path: Path) -> None:
    sync(tmp_path / "empty")
    assert not (tmp_path / "empty" / "auth.json").exists()


def test_a_repo_change_updates_a_file_the_host_left_alone(home: Path) -> None:
    sync(home)
    old = b"# the repo's previous version\n"
    (home / "AGENTS.md").write_bytes(old)
    manifest = json.loads((home / MANIFEST).read_text())
    manifest["AGENTS.md"] = _sha(old)  # what the previous sync would have recorded
    (home / MANIFEST).write_text(json.dumps(manifest))
    outcomes, changed = sync(home)
    assert changed
    assert ("AGENTS.md", "updated") in [(o.name, o.action) for o in outcomes]
    assert (home / "AGENTS.md").read_bytes() == templates()["AGENTS.md"]
    assert not list(home.glob("*.host-edit-*"))


def test_a_host_edit_is_backed_up_with_a_timestamp_before_the_repo_version_goes_in(home: Path) -> None:
    sync(home)
    (home / "config.toml").write_text('model = "my-host-choice"\n')
    outcomes, changed = sync(home, now=1_800_000_000)
    assert changed
    backup = home / "config.toml.host-edit-20270115T080000Z"
    assert next(o for o in outcomes if o.name == "config.toml").action == "backed-up"
    assert backup.read_text() == 'model = "my-host-choice"\n'
    assert backup.stat().st_mode & 0o777 == 0o600
    assert (home / "config.toml").read_bytes() == templates()["config.toml"]


def test_refuse_leaves_a_host_edit_in_place_and_says_so(home: Path) -> None:
    sync(home)
    (home / "config.toml").write_text('model = "my-host-choice"\n')
    outcomes, _ = sync(home, "refuse")
    refused = [o for o in outcomes if o.action == "refused"]
    assert [o.name for o in refused] == ["config.toml"]
    assert "changed on the host" in refused[0].note
    assert (home / "config.toml").read_text() == 'model = "my-host-choice"\n'
    # Still refused next time: a refusal is not recorded as synced.
    assert [o.action for o in sync(home, "refuse")[0] if o.name == "config.toml"] == ["refused"]


def test_a_differing_file_never_synced_counts_as_a_host_edit(home: Path) -> None:
    (home / "AGENTS.md").write_text("hand-written\n")
    outcomes, _ = sync(home)
    assert [o.action for o in outcomes if o.name == "AGENTS.md"] == ["backed-up"]


def test_the_command_line_reports_per_file_and_exits_1_on_refusal(home: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.config_sync", "--codex-home", str(home), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ},
        )

    first = run()
    assert (first.returncode, first.stdout.splitlines()[-1]) == (0, "changed")
    assert run().stdout.splitlines()[-1] == "unchanged"
    (home / "AGENTS.md").write_text("edited\n")
    refused = run("--on-host-edit", "refuse")
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[1].startswith("refused")
