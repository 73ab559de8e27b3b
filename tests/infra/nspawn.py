"""A throwaway Debian host with real systemd as PID 1, booted with systemd-nspawn (harness.md §4).

Private network (only `lo`), private user range (-U), its own cgroup, reached over ssh through an
nsenter relay. `stop()` leaves no process, cgroup, mount or file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ANSIBLE = REPO / "ansible"
BUILD_SCRIPT = HERE / "build_image.sh"
RELAY = HERE / "tcp_relay.py"
VAULT_PASS = ANSIBLE / "inventories/dev/vault-password.txt"
CGROUP = Path("/sys/fs/cgroup")


def image_path() -> Path:
    """The cached rootfs tarball, keyed on build_image.sh; built (and published atomically) if missing."""
    if os.environ.get("INFRA_IMAGE"):
        return Path(os.environ["INFRA_IMAGE"])
    key = hashlib.sha256(BUILD_SCRIPT.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("INFRA_CACHE_DIR", Path.home() / ".cache" / "infra-images"))
    img = cache / f"bookworm-systemd-{key}.tar.zst"
    if not img.exists():
        cache.mkdir(parents=True, exist_ok=True)
        # mmdebstrap picks the output format from the extension, so the partial name keeps it.
        tmp = img.with_name(f"{img.name.removesuffix('.tar.zst')}.{os.getpid()}.partial.tar.zst")
        try:
            subprocess.run(["bash", str(BUILD_SCRIPT), str(tmp)], check=True)
            tmp.rename(img)
        finally:
            tmp.unlink(missing_ok=True)
    return img


def changed_count(out: str) -> int:
    """Sum of the recap's changed= over all hosts of one ansible-playbook run."""
    return sum(int(m) for m in re.findall(r"\bchanged=(\d+)", out))


def _cgroup_dirs(name: str) -> list[Path]:
    # Hybrid hosts (cgroup v1 + unified) need a directory in both hierarchies nspawn touches.
    if (CGROUP / "unified").is_dir():
        return [CGROUP / "unified" / name, CGROUP / "systemd" / name]
    return [CGROUP / name]


def _cgroup_busy(cg: Path) -> bool:
    return any(p.read_text().strip() for p in cg.rglob("cgroup.procs")) if cg.exists() else False


class NspawnHost:
    """One container, provisioned with one of the repository's inventories (`dev` or `prod`) plus the test's
    host variables (e.g. PROXY_BACKEND=offline, which CI hosts set because they have no Codex login)."""

    def __init__(self, workdir: Path, inventory: str = "dev", host_vars: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.inventory_name = inventory
        self.host_vars = host_vars or {}
        self.name = f"it-{secrets.token_hex(4)}"
        self.root = workdir / "root"
        self.ssh_config = workdir / "ssh_config"
        self.inventory = workdir / "inventory.yml"
        self.cgroups = _cgroup_dirs(self.name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.timings: dict[str, float] = {}
        # Cached across runs (rebuilt only when pyproject.toml or the sources change).
        self.artifacts = Path(os.environ.get("CODEX_API_ARTIFACTS", Path.home() / ".cache" / "codex-api-artifacts"))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.root.mkdir()
        subprocess.run(
            ["tar", "--zstd", "-xpf", str(image_path()), "-C", str(self.root), "--numeric-owner"], check=True
        )
        self._install_ssh_key()
        for cg in self.cgroups:
            cg.mkdir()
        args = ["systemd-nspawn", "-q", "-D", str(self.root), "-M", self.name, "-b"]
        if os.environ.get("INFRA_USERNS", "1") != "0":
            args.append("-U")
        args += ["--private-network", "--register=no", "--keep-unit", "--console=passive"]
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        log = (self.workdir / "nspawn.log").open("wb")
        procs = [str(cg / "cgroup.procs") for cg in self.cgroups]

        def enter_cgroup() -> None:  # runs in the child before exec: nspawn starts in our own cgroup
            for path in procs:
                with open(path, "w") as f:
                    f.write(str(os.getpid()))

        # preexec_fn is the only hook that runs between fork and exec.
        self.proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=enter_cgroup
        )
        log.close()
        self.leader = wait_for(self._leader_pid, timeout=20, what="nspawn's container leader")
        try:
            wait_for(self._booted, timeout=180, interval=0.2, what=f"{self.name} to boot")
        except AssertionError as exc:  # say what systemd was still doing (a busy machine boots slowly)
            state = self.exec("systemctl is-system-running; systemctl list-jobs --no-pager", check=False)
            seen = (state.stdout + state.stderr)[-1500:]
            detail = f"{exc}; leader {self.leader}, state and jobs: {seen} (see {self.workdir}/nspawn.log)"
            raise AssertionError(detail) from None
        self._write_ssh_config()
        wait_for(self._ssh_ok, timeout=60, interval=0.1, what=f"ssh to {self.name}")

    def stop(self) -> None:
        if self.ssh_config.exists():  # end the shared ssh master (and with it the relay)
            subprocess.run(
                ["ssh", "-F", str(self.ssh_config), "-O", "exit", self.name], capture_output=True, check=False
            )
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn forwards SIGRTMIN+3: a clean halt
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a wedged container: kill everything in our cgroup
                for cg in self.cgroups:
                    kill = cg / "cgroup.kill"
                    if kill.exists():
                        kill.write_text("1")
                self.proc.kill()
                self.proc.wait()
        for cg in self.cgroups:  # processes leave a cgroup asynchronously after they die
            wait_for(lambda cg=cg: not _cgroup_busy(cg), timeout=10, what=f"{cg} to empty")
        for cg in self.cgroups:
            for sub in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                sub.rmdir()
            if cg.exists():
                cg.rmdir()
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / self.name, ignore_errors=True)
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(self.root) in line]
        assert not mounts, f"mounts left behind by {self.name}: {mounts[:3]}"
        assert self.proc is None or self.proc.poll() is not None, f"{self.name}: systemd-nspawn still running"
        assert not any(cg.exists() for cg in self.cgroups), f"{self.name}: cgroups left behind"
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------
    def exec(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell command as root inside the container, bypassing ssh (setup and diagnostics)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "/bin/sh", "-c", cmd], capture_output=True, text=True, check=check
        )

    def build_artifacts(self) -> None:
        """Build the wheels once per session (the playbook runs are told not to rebuild them)."""
        subprocess.run([sys.executable, str(ANSIBLE / "build_artifacts.py"), str(self.artifacts)], check=True)

    def ansible_env(self, artifacts: Path | None = None) -> dict[str, str]:
        """Environment for every ansible-playbook run against this host (and for promote.py)."""
        return {
            **os.environ,
            "CODEX_API_ARTIFACTS": str(artifacts or self.artifacts),
            # Per-task durations for diagnosing slow runs: <workdir>/junit-<n>/*.xml.
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.junit",
            "JUNIT_OUTPUT_DIR": str(self.workdir / f"junit-{len(list(self.workdir.glob('playbook-*.log'))) + 1}"),
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            # No ssh options from Ansible (it would add its own ControlPath under ~/.ansible): the host's
            # ssh_config (-F) keeps the shared master under its workdir, where stop() ends it — also when one
            # run (promote.py) talks to two containers.
            "ANSIBLE_SSH_ARGS": "",
        }

    def ansible_args(self) -> str:
        """The inventory, limit and vault options that point a playbook at this container only."""
        return (
            f"-i inventories/{self.inventory_name}/hosts.yml -i {self.inventory} --limit {self.name} "
            f"--vault-password-file {VAULT_PASS}"
        )

    def run_playbook(
        self, playbook: str = "site.yml", *extra: str, artifacts: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Apply a playbook to this host only; the output is also kept as <workdir>/playbook-<n>.log."""
        cmd = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *self.ansible_args().split(),
            *extra,
            playbook,
        ]
        r = subprocess.run(
            cmd, cwd=ANSIBLE, env=self.ansible_env(artifacts), capture_output=True, text=True, check=False
        )
        n = len(list(self.workdir.glob("playbook-*.log")))
        (self.workdir / f"playbook-{n + 1}-{playbook}.log").write_text(r.stdout + r.stderr)
        return r

    def playbook(self, *extra: str, artifacts: Path | None = None) -> tuple[int, str]:
        """Apply site.yml (artifacts already built); return (sum of changed=, output); fail on a failed run."""
        r = self.run_playbook("site.yml", "-e", "site_build_artifacts=false", *extra, artifacts=artifacts)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-6000:]
        return changed_count(out), out

    def current_release(self) -> str:
        return self.exec("/opt/codex-api/bin/codex-api-release current", check=False).stdout.strip()

    def digests(self, paths: list[str]) -> dict[str, str]:
        """sha256 of every file under `paths` (recursively), by path: for byte-identical comparisons."""
        quoted = " ".join(f"'{p}'" for p in paths)
        out = self.exec(f"find {quoted} -type f -print0 | sort -z | xargs -0 -r sha256sum").stdout
        return {line.split(None, 1)[1]: line.split(None, 1)[0] for line in out.splitlines()}

    def _install_ssh_key(self) -> None:
        key = self.workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        home = self.root / "home/deploy"
        uid, gid = home.stat().st_uid, home.stat().st_gid
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        auth = ssh_dir / "authorized_keys"
        auth.write_text(key.with_suffix(".pub").read_text())
        auth.chmod(0o600)
        for p in (ssh_dir, auth):
            os.chown(p, uid, gid)
        host_key = (self.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        (self.workdir / "known_hosts").write_text(f"{self.name} {host_key[0]} {host_key[1]}\n")

    def _write_ssh_config(self) -> None:
        relay = f"nsenter -t {self.leader} -n {sys.executable} {RELAY} 127.0.0.1 22"
        self.ssh_config.write_text(
            f"Host {self.name}\n"
            "  User deploy\n"
            f"  IdentityFile {self.workdir}/id_ed25519\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.workdir}/known_hosts\n"
            "  StrictHostKeyChecking yes\n"
            f"  ProxyCommand {relay}\n"
            "  ControlMaster auto\n"
            f"  ControlPath {self.workdir}/cm-%C\n"
            "  ControlPersist 120s\n"
            # Warnings on stderr would break testinfra's is_valid and friends.
            "  LogLevel ERROR\n"
        )
        host = {"ansible_ssh_common_args": f"-F {self.ssh_config}", **self.host_vars}
        self.inventory.write_text(yaml.safe_dump({"codex_hosts": {"hosts": {self.name: host}}}, sort_keys=False))
        self.inventory.chmod(0o600)  # the test's host variables may hold a TLS key

    def _leader_pid(self) -> int:
        """The container's PID 1 as the host sees it: the nspawn child that lives in a PID namespace of its own.

        nspawn first forks a short-lived helper, still in our PID namespace, which creates the container and
        exits. Taking whatever child came first sometimes caught that helper (more often on a busy machine):
        every later nsenter then pointed at a dead process and the "boot" timed out although the container
        was up (issue 16)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"nspawn exited: {(self.workdir / 'nspawn.log').read_text()[-2000:]}")
        ours = os.readlink(f"/proc/{self.proc.pid}/ns/pid")
        for child in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            with contextlib.suppress(OSError):  # the helper may be gone by now
                if os.readlink(f"/proc/{child}/ns/pid") != ours:
                    return int(child)
        return 0

    def _booted(self) -> bool:
        state = self.exec("systemctl is-system-running", check=False).stdout.strip()
        if state == "degraded":
            failed = self.exec("systemctl --failed --no-legend", check=False).stdout
            raise AssertionError(f"{self.name} booted degraded: {failed}")
        return state == "running"

    def _ssh_ok(self) -> bool:
        r = subprocess.run(
            ["ssh", "-F", str(self.ssh_config), self.name, "true"], capture_output=True, timeout=10, check=False
        )
        return r.returncode == 0
