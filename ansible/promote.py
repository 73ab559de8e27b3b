"""Promote exactly the release dev runs to prod, and only when dev is green (`make promote`; issue 10).

  1. build (or reuse) the artifacts of this checkout → release R (build_artifacts.py, reproducible);
  2. verify.yml on dev with verify_release=R: dev must run R and pass its smoke and testinfra checks —
     otherwise stop here and prod is not touched;
  3. site.yml on prod with app_expected_release=R (the app role refuses any other artifacts);
  4. verify.yml on prod with verify_release=R.

Dev and prod are separate ansible-playbook runs because each inventory's group_vars/all applies to every host
of a run. The defaults use the repository's inventories; the tests pass their own (--dev-args/--prod-args).

usage: python ansible/promote.py [--dev-args ARGS] [--prod-args ARGS] [--no-build]
exit status: 0 promoted · 1 refused (dev red or on another release) or prod failed its checks · 2 usage
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ANSIBLE = Path(__file__).resolve().parent
DEV_ARGS = "-i inventories/dev/hosts.yml --vault-password-file inventories/dev/vault-password.txt"
PROD_ARGS = "-i inventories/prod/hosts.yml --vault-id prod@prompt"


def artifacts_dir() -> Path:
    default = Path.home() / ".cache" / "codex-api-artifacts"
    return Path(os.environ.get("CODEX_API_ARTIFACTS", default))


def say(text: str) -> None:
    print(f"\n==> promote: {text}", flush=True)


def playbook(playbook_name: str, args: str, *extra: str) -> int:
    exe = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(exe), *shlex.split(args), *extra, playbook_name]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")}
    return subprocess.run(cmd, cwd=ANSIBLE, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-args", default=DEV_ARGS, help=f"ansible-playbook options for dev (default: {DEV_ARGS})")
    parser.add_argument("--prod-args", default=PROD_ARGS, help=f"options for prod (default: {PROD_ARGS})")
    parser.add_argument("--no-build", action="store_true", help="use the artifacts already in CODEX_API_ARTIFACTS")
    args = parser.parse_args(argv)

    out = artifacts_dir()
    if not args.no_build:
        built = subprocess.run([sys.executable, str(ANSIBLE / "build_artifacts.py"), str(out)], check=False)
        if built.returncode != 0:
            say("building the artifacts failed")
            return 1
    try:
        release = (out / "RELEASE").read_text().strip()
    except OSError:
        say(f"{out}/RELEASE is missing: build the artifacts first (drop --no-build)")
        return 2
    say(f"this checkout is release {release}; checking that dev runs it and is green")

    if playbook("verify.yml", args.dev_args, "-e", f"verify_release={release}") != 0:
        say(f"REFUSED: dev is red or does not run {release} (see above); prod was not touched")
        return 1

    say(f"dev is green on {release}; deploying it to prod")
    deploy = ("-e", "site_build_artifacts=false", "-e", f"app_expected_release={release}")
    if playbook("site.yml", args.prod_args, *deploy) != 0:
        say(f"the prod deploy of {release} failed (see above); roll back with rollback.yml if prod is degraded")
        return 1
    if playbook("verify.yml", args.prod_args, "-e", f"verify_release={release}") != 0:
        say(f"prod runs {release} but is red (see above): `ansible-playbook rollback.yml` with the prod inventory")
        return 1
    say(f"promoted {release}: prod runs what dev runs, and both are green")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
