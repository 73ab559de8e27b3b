"""The checked-in app-server JSON Schema must be exactly what the pinned binary exports (`make schema`)."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

from app.settings import default_codex_bin
from tests.conftest import REPO

SCHEMA = REPO / "app" / "codex" / "schema"
PINNED = "0.169.0"


@pytest.fixture(scope="module")
def codex_bin() -> str:
    path = Path(default_codex_bin())
    if not path.exists():
        pytest.fail(f"pinned codex binary missing at {path}: run `make codex`")
    return str(path)


def test_binary_is_the_pinned_version(codex_bin):
    out = subprocess.run([codex_bin, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == ["codex-cli", PINNED]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.codex
def test_checked_in_schema_matches_the_binary(codex_bin, tmp_path):
    subprocess.run(
        [codex_bin, "app-server", "generate-json-schema", "--experimental", "--out", str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert _tree(tmp_path) == _tree(SCHEMA), "schema files added/removed: run `make schema` and review"
    drifted = [name for name in sorted(_tree(SCHEMA)) if not filecmp.cmp(SCHEMA / name, tmp_path / name, shallow=False)]
    assert drifted == [], f"schema drift in {drifted[:5]}: run `make schema` and review the protocol changes"
