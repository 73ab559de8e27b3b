"""Every environment variable the app reads is in the README's configuration table (and nothing stale is)."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _read_in_settings() -> set[str]:
    """Names passed to `e.get("NAME"…)` or a parser `_int(e, "NAME"…)` in Settings.from_env."""
    source = (REPO / "app" / "settings.py").read_text()
    return set(re.findall(r'\be\.get\("([A-Z][A-Z0-9_]+)"', source)) | set(
        re.findall(r'\(e, "([A-Z][A-Z0-9_]+)"', source)
    )


def _in_readme_table() -> set[str]:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }


def test_every_variable_is_documented() -> None:
    read = _read_in_settings()
    assert {"PROXY_MODEL_ALIASES", "PROXY_KEY_REQUESTS_PER_MINUTE", "PROXY_USAGE_LOG_MAX_FILES"} <= read
    assert read - _in_readme_table() == set()


def test_no_documented_variable_is_stale() -> None:
    assert _in_readme_table() - _read_in_settings() == set()
