"""Build the Python artifacts the playbook ships, because hosts have no internet and no compiler.

OUT/wheelhouse/ holds the runtime dependencies (keyed on pyproject.toml: rebuilt only when it
changes), OUT/app/ the app + authd wheel (keyed on the sources), and OUT/codex-api-bundle.tar all of
those wheels in one file, and OUT/traefik-config.tar the repo's traefik/ files: the playbook ships
one artifact each instead of dozens of per-file copies (each costs a remote round trip). Wheels are built with a fixed
SOURCE_DATE_EPOCH so an unchanged tree gives a byte-identical wheel and the playbook stays
changed=0. Prints `built` when something was rebuilt, `unchanged` otherwise (the playbook's
changed_when). The controller's Python must match the hosts' minor version (3.11 on bookworm),
because the wheelhouse holds compiled wheels (granian, msgspec) for the controller's platform.

OUT/RELEASE names the release: `<version>-<first 12 hex of the bundle's sha256>`. Hosts install it as
/opt/codex-api/releases/<that name>; because the build is reproducible, the same tree always gives the
same name, which is how promotion knows prod gets exactly what dev runs.

usage: python build_artifacts.py OUT [--source DIR]   (DIR: a tree with pyproject.toml, app/, authd/;
       default: this repository — the infra tests build a second release from a modified copy)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("app", "authd")
# 1980-01-01: the earliest timestamp a zip can hold; any fixed value makes the wheel reproducible.
EPOCH = "315532800"


def _tree_key(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _source_files() -> list[Path]:
    files = [REPO / "pyproject.toml"]
    for top in SOURCES:
        files += [p for p in (REPO / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files


def write_release(out: Path) -> bool:
    """OUT/RELEASE = `<version>-<sha256(bundle)[:12]>`: the release directory name on the hosts."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    digest = hashlib.sha256((out / "codex-api-bundle.tar").read_bytes()).hexdigest()[:12]
    name = f"{version}-{digest}\n"
    path = out / "RELEASE"
    if path.exists() and path.read_text() == name:
        return False
    path.write_text(name)
    return True


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True, env=env)


def _publish(tmp: Path, dest: Path) -> None:
    """Swap a finished directory into place so a crashed build never leaves a half-filled one."""
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def build_wheelhouse(out: Path) -> bool:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    key = _tree_key([REPO / "pyproject.toml"])
    stamp = out / "wheelhouse" / f".key-{key}"
    if stamp.exists():
        return False
    tmp = Path(tempfile.mkdtemp(prefix="wheelhouse.", dir=out))
    _pip("download", "--only-binary=:all:", "--dest", str(tmp), *project["project"]["dependencies"])
    # The build backend too, so the app wheel below builds with --no-index (offline once warm).
    _pip("download", "--only-binary=:all:", "--dest", str(tmp / "build"), *project["build-system"]["requires"])
    (tmp / f".key-{key}").touch()
    _publish(tmp, out / "wheelhouse")
    return True


def build_app_wheel(out: Path) -> bool:
    key = _tree_key(_source_files())
    if (out / "app" / f".key-{key}").exists():
        return False
    tmp = Path(tempfile.mkdtemp(prefix="app.", dir=out))
    with tempfile.TemporaryDirectory(prefix="src.") as src:
        # Build from a copy: an in-tree build would write build/ and *.egg-info into the work tree.
        shutil.copy2(REPO / "pyproject.toml", src)
        for top in SOURCES:
            shutil.copytree(REPO / top, Path(src) / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
        build_deps = str(out / "wheelhouse" / "build")
        _pip("wheel", "--no-deps", "--no-index", "--find-links", build_deps, "-w", str(tmp), src, env=env)
    (tmp / f".key-{key}").touch()
    _publish(tmp, out / "app")
    return True


def _reproducible_tar(bundle: Path, members: list[tuple[Path, str]]) -> bool:
    """Write a tar with fixed mtimes, owners and modes; replace `bundle` only if the bytes differ."""
    tmp = bundle.with_name(f".{bundle.name}.{os.getpid()}")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, arcname in members:
            info = tar.gettarinfo(str(path), arcname=arcname)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
    if bundle.exists() and bundle.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        return False
    tmp.rename(bundle)
    return True


def build_bundle(out: Path) -> bool:
    """Every wheel the host installs, in one file."""
    wheels = sorted([*(out / "wheelhouse").glob("*.whl"), *(out / "app").glob("*.whl")], key=lambda p: p.name)
    return _reproducible_tar(out / "codex-api-bundle.tar", [(w, w.name) for w in wheels])


def build_traefik_config(out: Path) -> bool:
    """traefik.yml and dynamic/*.yml, verbatim (Go templates inside: never rendered with Jinja)."""
    src = REPO / "traefik"
    files = [src / "traefik.yml", *sorted((src / "dynamic").glob("*.yml"))]
    return _reproducible_tar(out / "traefik-config.tar", [(f, str(f.relative_to(src))) for f in files])


def main() -> None:
    global REPO
    parser = argparse.ArgumentParser(description="Build the wheels, bundle and Traefik config the hosts install.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, help="build from this tree instead of the repository")
    args = parser.parse_args()
    if args.source is not None:
        REPO = args.source.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    changed = build_wheelhouse(out)
    changed = build_app_wheel(out) or changed
    changed = build_bundle(out) or changed
    changed = build_traefik_config(out) or changed
    changed = write_release(out) or changed
    print("built" if changed else "unchanged")


if __name__ == "__main__":
    main()
