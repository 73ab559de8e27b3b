"""Issue 13 on a provisioned host: the origin firewall lets only the edge's ranges reach 80/443, and a runaway
worker under the app unit's limits ends in a clean error and a fresh worker.

Read-only checks use testinfra's `host` (they also run against a real host with --hosts). The two behaviour
tests need the nspawn container: a second network namespace with a veth pair into the container gives two
source addresses, one inside Cloudflare's ranges and one outside; a copy of codex-api.service (same hardening,
same limits, same user) runs the app on the fault double's `fault:allocate`.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import testinfra

from tests.conftest import wait_for
from tests.infra.nspawn import REPO, NspawnHost

pytestmark = pytest.mark.infra

Host = testinfra.host.Host
API_HOST = "dev-api.example.test"
# The container's end of the veth, and the client's two sources: one in Cloudflare's published ranges
# (ansible/roles/traefik/files/cloudflare-ips.txt), one in a documentation range that never is.
ORIGIN_V4, ORIGIN_V6 = "192.0.2.1", "2001:db8:13::1"
ALLOWED_V4, REFUSED_V4 = "173.245.48.10", "192.0.2.10"
ALLOWED_V6, REFUSED_V6 = "2606:4700::10", "2001:db8:13::10"


# ---------------------------------------------------------------- read-only (container or real host)


def test_origin_firewall_is_loaded_with_the_edge_ranges(host: Host) -> None:
    assert host.service("codex-origin-firewall").is_enabled
    assert host.run("systemctl is-active codex-origin-firewall.service").stdout.strip() == "active"
    table = host.run("nft list table inet codex_origin")
    assert table.rc == 0, table.stderr
    for cidr in ("173.245.48.0/20", "104.16.0.0/13", "2400:cb00::/32", "2a06:98c0::/29"):
        assert cidr in table.stdout, cidr
    assert re.search(r"tcp dport != \{ 80, 443 \} accept", table.stdout), table.stdout
    assert "reject with tcp reset" in table.stdout


def test_app_unit_limits_are_in_force(host: Host) -> None:
    props = host.run(
        "systemctl show codex-api.service -p MemoryHigh -p MemoryMax -p MemorySwapMax -p TasksMax -p OOMPolicy"
    ).stdout
    values = dict(line.split("=", 1) for line in props.splitlines() if "=" in line)
    assert values == {
        "MemoryHigh": str(2304 * 2**20),
        "MemoryMax": str(2816 * 2**20),
        "MemorySwapMax": "0",
        "TasksMax": "512",
        "OOMPolicy": "continue",
    }


# ---------------------------------------------------------------- origin firewall (container only)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True)


@dataclass
class Sources:
    netns: str

    def curl(self, source: str, origin: str, path: str = "/healthz") -> tuple[int, str]:
        """(curl's exit code, HTTP status) for an HTTPS request to Traefik on `origin` from `source`."""
        target = f"[{origin}]" if ":" in origin else origin
        r = subprocess.run(
            [
                *("ip", "netns", "exec", self.netns, "curl", "-sk", "--max-time", "20"),
                *("--interface", source, "--resolve", f"{API_HOST}:443:{target}"),
                *("-o", "/dev/null", "-w", "%{http_code}", f"https://{API_HOST}{path}"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return r.returncode, r.stdout


@pytest.fixture(scope="module")
def sources(nspawn_host: NspawnHost) -> Iterator[Sources]:
    """A client network namespace joined to the container by a veth pair; removed (with the pair) afterwards."""
    if shutil.which("curl") is None:
        pytest.fail("curl missing on the test machine: apt-get install curl")
    tag = secrets.token_hex(3)
    netns, outside, inside = f"src-{tag}", f"vo{tag}", f"vi{tag}"
    _run("ip", "netns", "add", netns)
    try:
        _run(
            "ip",
            "link",
            "add",
            outside,
            "netns",
            netns,
            "type",
            "veth",
            "peer",
            "name",
            inside,
            "netns",
            str(nspawn_host.leader),
        )
        for cmd in (
            f"ip addr add {REFUSED_V4}/24 dev {outside}",
            f"ip addr add {ALLOWED_V4}/32 dev {outside}",
            f"ip -6 addr add {REFUSED_V6}/64 dev {outside} nodad",
            f"ip -6 addr add {ALLOWED_V6}/128 dev {outside} nodad",
            f"ip link set {outside} up",
            "ip link set lo up",
            f"ip -6 route add {ORIGIN_V6}/128 dev {outside}",
        ):
            _run("ip", "netns", "exec", netns, *shlex.split(cmd))
        nspawn_host.exec(
            f"ip addr add {ORIGIN_V4}/24 dev {inside} && ip -6 addr add {ORIGIN_V6}/64 dev {inside} nodad && "
            f"ip link set {inside} up && ip route add {ALLOWED_V4}/32 dev {inside} && "
            f"ip -6 route add {ALLOWED_V6}/128 dev {inside}"
        )
        yield Sources(netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)  # takes the veth pair along


@pytest.mark.parametrize(("source", "origin"), [(ALLOWED_V4, ORIGIN_V4), (ALLOWED_V6, ORIGIN_V6)], ids=["v4", "v6"])
def test_a_cloudflare_address_reaches_traefik(sources: Sources, source: str, origin: str) -> None:
    _, status = wait_for(lambda: (r := sources.curl(source, origin))[0] == 0 and r, timeout=30, what="Traefik")
    assert status == "200"


@pytest.mark.parametrize(("source", "origin"), [(REFUSED_V4, ORIGIN_V4), (REFUSED_V6, ORIGIN_V6)], ids=["v4", "v6"])
def test_any_other_address_is_refused(sources: Sources, source: str, origin: str) -> None:
    """Refused at once (TCP reset): curl's 7 is "failed to connect", never a TLS or HTTP answer."""
    allowed = ALLOWED_V4 if ":" not in origin else ALLOWED_V6
    assert sources.curl(allowed, origin) == (0, "200")  # the path works (else a refusal would prove nothing)
    code, status = sources.curl(source, origin)
    assert (code, status) == (7, "000")


def test_port_80_is_refused_too(sources: Sources) -> None:
    r = subprocess.run(
        [
            *("ip", "netns", "exec", sources.netns, "curl", "-s", "--max-time", "20"),
            *("--interface", REFUSED_V4, "-o", "/dev/null", "-w", "%{http_code}", f"http://{ORIGIN_V4}/"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (r.returncode, r.stdout) == (7, "000")


# ---------------------------------------------------------------- memory blow-up under the unit (container only)

PROBE = "codex-api-memprobe.service"
PROBE_PORT = 11436


@pytest.fixture(scope="module")
def memprobe(nspawn_host: NspawnHost) -> Iterator[NspawnHost]:
    """codex-api.service verbatim (hardening, limits, user, env file) but on another port, with the fault double
    as CODEX_BIN and a 256 MB per-worker watchdog."""
    fault_dir = nspawn_host.root / "opt/codex-fault"
    fault_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.copyfile(REPO / "tests/fakes/fault_app_server.py", fault_dir / "fault_app_server.py")
    (fault_dir / "fault_app_server.py").chmod(0o644)
    wrapper = fault_dir / "codex"
    wrapper.write_text(
        "#!/bin/sh\nexport FAULT_ALLOCATE_MAX_MB=1536\n"
        'exec /opt/codex-api/current/venv/bin/python /opt/codex-fault/fault_app_server.py "$@"\n'
    )
    wrapper.chmod(0o755)
    overrides = {
        "PORT": str(PROBE_PORT),
        "CODEX_BIN": "/opt/codex-fault/codex",
        "PROXY_BACKEND": "offline",
        "PROXY_WORKER_COUNT": "1",
        "WORKER_MAX_RSS_MB": "256",
        "WORKER_BACKOFF_INITIAL_MS": "100",
        "PROXY_USAGE_LOG": "/tmp/memprobe-usage.ndjson",
    }
    unit = (REPO / "systemd/codex-api.service").read_text().split("[Install]")[0]
    # EnvironmentFile= wins over Environment=, so the overrides go on the command line through env(1).
    assignments = " ".join(f"{k}={v}" for k, v in overrides.items())
    unit = re.sub(r"^ExecStart=(.*)$", rf"ExecStart=/usr/bin/env {assignments} \1", unit, flags=re.M)
    path = f"/etc/systemd/system/{PROBE}"
    (nspawn_host.root / path.lstrip("/")).write_text(unit)
    try:
        nspawn_host.exec(f"systemctl daemon-reload && systemctl start {PROBE}")
        try:
            wait_for(
                lambda: _probe_health(nspawn_host).get("ok") is True,
                timeout=60,
                interval=0.5,
                what="the probe app ready",
            )
        except AssertionError as exc:
            journal = nspawn_host.exec(f"journalctl -u {PROBE} --no-pager -n 40", check=False).stdout
            raise AssertionError(f"{exc}\n{journal}") from None
        yield nspawn_host
    finally:
        nspawn_host.exec(f"systemctl stop {PROBE}; rm -f {path} && systemctl daemon-reload", check=False)
        shutil.rmtree(fault_dir, ignore_errors=True)


def _probe_health(nh: NspawnHost) -> dict:
    r = nh.exec(f"curl -s --max-time 5 http://127.0.0.1:{PROBE_PORT}/healthz", check=False)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout else {}


def _worker(nh: NspawnHost) -> dict:
    return _probe_health(nh)["backend"]["workers"][0]


def test_a_runaway_worker_under_the_units_limits_is_replaced(memprobe: NspawnHost) -> None:
    before = _worker(memprobe)
    body = json.dumps({"model": "codex-5", "messages": [{"role": "user", "content": "fault:allocate"}]})
    r = memprobe.exec(
        "set -a; . /etc/codex-api/app.env; "
        'printf "Authorization: Bearer %s\\n" "$PROXY_API_KEY" | '
        f"curl -s --max-time 90 -H @- -H 'Content-Type: application/json' -d {shlex.quote(body)} "
        f"-w '\\n%{{http_code}}' http://127.0.0.1:{PROBE_PORT}/v1/chat/completions",
        check=False,
    )
    text, _, status = r.stdout.rpartition("\n")
    assert status == "502", r.stdout[-2000:] + r.stderr[-500:]
    assert json.loads(text)["error"]["code"] == "worker_exited"

    def replaced() -> bool:
        w = _worker(memprobe)
        return w["ready"] and w["restarts"] == before["restarts"] + 1 and w["pid"] != before["pid"]

    wait_for(replaced, timeout=60, interval=0.5, what="a fresh worker in the probe unit")
    assert "over WORKER_MAX_RSS_MB=256" in _worker(memprobe)["last_exit"]["reason"]
    shown = memprobe.exec(f"systemctl show {PROBE} -p ActiveState -p NRestarts -p MemoryMax").stdout
    state = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    # The unit itself never went down, and it ran under the real unit's ceiling.
    assert state == {"ActiveState": "active", "NRestarts": "0", "MemoryMax": str(2816 * 2**20)}, state
