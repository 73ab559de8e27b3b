#!/usr/bin/python3
"""codex-api-release: the host's release directory (installed as /opt/codex-api/bin/codex-api-release).

Each deploy lands in ROOT/releases/<version>/ (venv + the wheel bundle it came from, `.installed` once pip
finished); ROOT/current is a symlink to the live one, and the systemd units start
ROOT/current/venv/bin/... . Switching is one atomic rename of the link, so a rollback is instant and
never touches state: the Codex home, its login, the usage ledger and the keys live elsewhere
(/var/lib/codex-api, /etc/codex-api). Every activation is timestamped in the release's `.activated`;
"previous" is the most recently activated release other than the current one.

Standard library only: it runs with the host's /usr/bin/python3, before any venv exists.

  codex-api-release [--root DIR] current          print the live release (exit 1: none)
  codex-api-release [--root DIR] list             every installed release, newest activation first
  codex-api-release [--root DIR] activate ID      point `current` at ID; prints `changed …` or `unchanged`
  codex-api-release [--root DIR] previous         the rollback target (exit 1: there is none)
  codex-api-release [--root DIR] prune KEEP       keep the live release and the KEEP-1 newest others
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

INSTALLED = ".installed"
ACTIVATED = ".activated"


class Releases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "releases"
        self.link = root / "current"

    def current(self) -> str | None:
        try:
            target = os.readlink(self.link)
        except OSError:
            return None
        name = Path(target).name
        return name if (self.dir / name / INSTALLED).exists() else None

    def installed(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return [p.name for p in self.dir.iterdir() if (p / INSTALLED).exists()]

    def activated_at(self, name: str) -> int:
        try:
            return int((self.dir / name / ACTIVATED).read_text().strip())
        except (OSError, ValueError):
            return 0

    def by_activation(self) -> list[str]:
        """Installed releases, most recently activated first (never activated ones last, by name)."""
        return sorted(self.installed(), key=lambda n: (-self.activated_at(n), n))

    def activate(self, name: str) -> str | None:
        """Point `current` at `name`; returns the release it replaced, or raises when `name` is not installed."""
        if not (self.dir / name / INSTALLED).exists():
            raise LookupError(f"release {name} is not installed under {self.dir}")
        old = self.current()
        if old == name:
            return name
        (self.dir / name / ACTIVATED).write_text(f"{time.time_ns()}\n")
        tmp = self.root / f".current.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(f"releases/{name}", tmp)
        os.replace(tmp, self.link)  # rename(2): readers see the old link or the new one, never none
        return old or ""

    def previous(self) -> str | None:
        current = self.current()
        candidates = [n for n in self.by_activation() if n != current and self.activated_at(n)]
        return candidates[0] if candidates else None

    def prune(self, keep: int) -> list[str]:
        """Remove all but the live release and the keep-1 most recently activated others (and half-installed
        directories that are not live). Returns the removed names."""
        current = self.current()
        others = [n for n in self.by_activation() if n != current]
        doomed = others[max(keep - 1, 0) :]
        if self.dir.is_dir():
            doomed += [p.name for p in self.dir.iterdir() if p.is_dir() and not (p / INSTALLED).exists()]
        for name in doomed:
            shutil.rmtree(self.dir / name)
        return sorted(doomed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codex-api-release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/opt/codex-api"))
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("current")
    sub.add_parser("list")
    sub.add_parser("previous")
    sub.add_parser("activate").add_argument("release")
    sub.add_parser("prune").add_argument("keep", type=int)
    args = parser.parse_args(argv)
    releases = Releases(args.root)
    if args.cmd == "current":
        name = releases.current()
        print(name or "none")
        return 0 if name else 1
    if args.cmd == "list":
        current = releases.current()
        for name in releases.by_activation():
            at = releases.activated_at(name)
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at / 1e9)) if at else "never activated"
            print(f"{'*' if name == current else ' '} {name}  {when}")
        return 0
    if args.cmd == "previous":
        name = releases.previous()
        if name is None:
            print(f"no previous release to roll back to (current: {releases.current() or 'none'})", file=sys.stderr)
            return 1
        print(name)
        return 0
    if args.cmd == "activate":
        try:
            old = releases.activate(args.release)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("unchanged" if old == args.release else f"changed {old or 'none'} -> {args.release}")
        return 0
    if args.keep < 2:
        print("prune KEEP must be at least 2 (the live release and one to roll back to)", file=sys.stderr)
        return 2
    removed = releases.prune(args.keep)
    for name in removed:
        print(f"removed {name}")
    print("changed" if removed else "unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
