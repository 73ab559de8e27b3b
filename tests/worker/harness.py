"""The Cloudflare Worker as a long-running process for Python suites: `cloudflare-worker/test/mf-serve.mjs`
(Miniflare, real workerd) started from the shipped wrangler.jsonc, with Worker vars injected through its
environment, and stopped as a whole process group (node and its workerd child).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.conftest import REPO, free_port, wait_for

WORKER_DIR = REPO / "cloudflare-worker"
# Offline switches (harness.md §2.2); mf-serve also passes `cf: false` to Miniflare.
OFFLINE_ENV = {
    "CLOUDFLARE_CF_FETCH_ENABLED": "false",
    "WRANGLER_SEND_METRICS": "false",
    "WRANGLER_SEND_ERROR_REPORTS": "false",
    "CI": "1",
}


@dataclass
class MfServe:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    pin_base: int
    stdout: Path
    stderr: Path

    def log(self) -> str:
        """The Worker's own log lines (one JSON object per request, never Authorization or a body)."""
        return self.stdout.read_text(errors="replace")

    def stop(self) -> None:
        stop_mf_serve(self.proc)


def require_toolchain() -> str:
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is missing: install Node 20 (apt-get install nodejs) and run `make worker-deps`")
    if not (WORKER_DIR / "node_modules" / "miniflare").is_dir():
        raise AssertionError("cloudflare-worker/node_modules is missing: run `make worker-deps` (npm ci)")
    return node


def start_mf_serve(tmp: Path, worker_env: Mapping[str, str], port: int | None = None) -> MfServe:
    """mf-serve on `port` (a free one by default). `worker_env` carries what a deployment sets per Worker:
    ORIGIN_URL / ALLOWED_ORIGINS vars, and NODE_EXTRA_CA_CERTS when the origin's certificate is private."""
    node = require_toolchain()
    port, pin_base = port or free_port(), free_port()
    out, err = tmp / "mf-serve.out", tmp / "mf-serve.err"
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "MF_PORT": str(port),
        "PIN_PORT_BASE": str(pin_base),
        "XDG_CONFIG_HOME": str(tmp),
        **worker_env,
    }
    with out.open("wb") as stdout, err.open("wb") as stderr:
        # Own session = own process group, so teardown can signal node *and* its workerd child.
        proc = subprocess.Popen(
            [node, "--require", "./test/pin-ports.cjs", "test/mf-serve.mjs"],
            cwd=WORKER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    def ready() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"mf-serve exited {proc.returncode}: {err.read_text()[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        return None

    try:
        url = wait_for(ready, timeout=30, what="mf-serve READY")
    except BaseException:
        stop_mf_serve(proc)
        raise
    return MfServe(proc=proc, url=url.rstrip("/"), port=port, pin_base=pin_base, stdout=out, stderr=err)


def process_group(pgid: int) -> list[psutil.Process]:
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def stop_mf_serve(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, reap node, and make sure nothing in the group survives."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
    try:
        wait_for(lambda: not process_group(pgid), timeout=10, what=f"process group {pgid} to exit")
    except AssertionError:
        for p in process_group(pgid):
            p.kill()
        raise
