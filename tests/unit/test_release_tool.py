"""The host's release tool (ansible/roles/app/files/codex_api_release.py): activate, previous, prune (issue 10).

Run as the hosts run it (`python3 codex-api-release --root …`) on a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TOOL = REPO / "ansible/roles/app/files/codex_api_release.py"


def tool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), "--root", str(root), *args], capture_output=True, text=True, check=False
    )


def install(root: Path, name: str, complete: bool = True) -> None:
    d = root / "releases" / name
    (d / "venv").mkdir(parents=True)
    if complete:
        (d / ".installed").touch()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("0.1.0-aaa", "0.1.0-bbb", "0.1.0-ccc"):
        install(tmp_path, name)
    return tmp_path


def test_nothing_is_current_before_the_first_activation(root: Path) -> None:
    r = tool(root, "current")
    assert (r.returncode, r.stdout.strip()) == (1, "none")


def test_activate_switches_the_link_and_says_whether_it_changed(root: Path) -> None:
    first = tool(root, "activate", "0.1.0-aaa")
    assert (first.returncode, first.stdout.strip()) == (0, "changed none -> 0.1.0-aaa")
    assert os.readlink(root / "current") == "releases/0.1.0-aaa"
    assert tool(root, "activate", "0.1.0-aaa").stdout.strip() == "unchanged"
    assert tool(root, "activate", "0.1.0-bbb").stdout.strip() == "changed 0.1.0-aaa -> 0.1.0-bbb"
    assert tool(root, "current").stdout.strip() == "0.1.0-bbb"


def test_a_release_that_is_not_fully_installed_cannot_go_live(root: Path) -> None:
    install(root, "0.1.0-half", complete=False)
    r = tool(root, "activate", "0.1.0-half")
    assert r.returncode == 1
    assert "not installed" in r.stderr
    assert not (root / "current").exists()


def test_previous_is_the_release_activated_before_the_current_one(root: Path) -> None:
    for name in ("0.1.0-aaa", "0.1.0-ccc", "0.1.0-bbb"):
        tool(root, "activate", name)
    assert tool(root, "previous").stdout.strip() == "0.1.0-ccc"
    tool(root, "activate", "0.1.0-ccc")  # the rollback itself
    assert tool(root, "previous").stdout.strip() == "0.1.0-bbb", "rolling back twice returns to where it was"


def test_no_previous_release_is_an_error_that_says_so(root: Path) -> None:
    tool(root, "activate", "0.1.0-aaa")
    r = tool(root, "previous")
    assert r.returncode == 1
    assert "no previous release" in r.stderr


def test_prune_keeps_the_live_release_and_the_newest_others(root: Path) -> None:
    install(root, "0.1.0-half", complete=False)
    for name in ("0.1.0-aaa", "0.1.0-bbb", "0.1.0-ccc"):
        tool(root, "activate", name)
    r = tool(root, "prune", "2")
    assert r.stdout.split() == ["removed", "0.1.0-aaa", "removed", "0.1.0-half", "changed"]
    assert sorted(p.name for p in (root / "releases").iterdir()) == ["0.1.0-bbb", "0.1.0-ccc"]
    assert tool(root, "prune", "2").stdout.strip() == "unchanged"


def test_prune_never_leaves_nothing_to_roll_back_to(root: Path) -> None:
    r = tool(root, "prune", "1")
    assert r.returncode == 2
    assert len(list((root / "releases").iterdir())) == 3
