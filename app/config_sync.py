"""`python -m app.config_sync`: bring the repo-managed Codex config into a Codex home (issue 10).

Copies `app/codex_home/{config.toml,AGENTS.md}` (package data, so hosts read it from the installed release)
into CODEX_HOME. It never opens, copies or removes `auth.json`: only the template names are touched.

A home's file can differ from the repo's for two reasons: the repo changed (the file is still what the last sync
wrote — its sha256 is recorded in `.repo-managed.json`), or someone edited it on the host. The first is simply
updated. The second is never overwritten silently: by default the host's version is kept as
`<name>.host-edit-<UTC time>` before the repo's goes in, and the output says so; `--on-host-edit refuse` leaves
the file alone and exits 1 naming it. A file never synced before that differs counts as a host edit.

Output: one line per file (`installed`, `unchanged`, `updated`, `backed-up`, `refused`) and a last line
`changed` or `unchanged` (Ansible's changed_when reads it).
exit status: 0 done · 1 refused a host edit · 2 usage error
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from app.codex.launch import TEMPLATE_FILES
from app.settings import ConfigError, Settings

MANIFEST = ".repo-managed.json"
Policy = Literal["backup", "refuse"]


class FileOutcome(msgspec.Struct, frozen=True):
    name: str
    action: Literal["installed", "unchanged", "updated", "backed-up", "refused"]
    note: str = ""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    """Write next to the target and rename: a reader never sees half a file; 0600 like codex's own files."""
    tmp = path.with_name(f".{path.name}.sync-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _read_manifest(home: Path) -> dict[str, str]:
    try:
        data = json.loads((home / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def templates() -> dict[str, bytes]:
    root = resources.files("app.codex_home")
    return {name: (root / name).read_bytes() for name in TEMPLATE_FILES}


def sync(home: Path, policy: Policy = "backup", now: float | None = None) -> tuple[list[FileOutcome], bool]:
    """Apply the templates to `home`; returns what happened per file and whether anything changed on disk."""
    assert "auth.json" not in TEMPLATE_FILES
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    manifest = _read_manifest(home)
    recorded = dict(manifest)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    outcomes: list[FileOutcome] = []
    changed = False
    for name, data in templates().items():
        target = home / name
        want = _sha(data)
        if not target.exists():
            _write_private(target, data)
            outcomes.append(FileOutcome(name, "installed"))
            changed = True
        else:
            have = _sha(target.read_bytes())
            if have == want:
                outcomes.append(FileOutcome(name, "unchanged"))
            elif recorded.get(name) == have:
                _write_private(target, data)
                outcomes.append(FileOutcome(name, "updated", "the repo's version changed"))
                changed = True
            elif policy == "refuse":
                outcomes.append(
                    FileOutcome(
                        name,
                        "refused",
                        f"{target} was changed on the host and differs from the repo's; merge the change into "
                        f"app/codex_home/{name} or move the file aside, then sync again",
                    )
                )
                continue  # nothing recorded: the file stays host state until someone decides
            else:
                backup = home / f"{name}.host-edit-{stamp}"
                _write_private(backup, target.read_bytes())
                _write_private(target, data)
                outcomes.append(FileOutcome(name, "backed-up", f"host edits kept in {backup.name}"))
                changed = True
        manifest[name] = want
    if manifest != recorded:
        _write_private(home / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        changed = True
    return outcomes, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.config_sync", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--codex-home", help="the Codex home (default: CODEX_HOME / the env's default)")
    parser.add_argument("--on-host-edit", choices=("backup", "refuse"), default="backup")
    args = parser.parse_args(argv)
    try:
        home = (
            Path(args.codex_home).expanduser().resolve()
            if args.codex_home
            else Settings.from_env(check=False).codex_home_path
        )
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        outcomes, changed = sync(home, args.on_host_edit)
    except OSError as exc:
        print(f"config sync failed for {home}: {exc}", file=sys.stderr)
        return 2
    for o in outcomes:
        print(f"{o.action:<10} {home / o.name}" + (f" — {o.note}" if o.note else ""))
    print("changed" if changed else "unchanged")
    return 1 if any(o.action == "refused" for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
