"""Read-only checks of a provisioned host. They run against the nspawn container by default and
unchanged against a real host: `pytest tests/infra --hosts=ssh://deploy@host --sudo`."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import testinfra

from tests.conftest import wait_for

pytestmark = pytest.mark.infra

Host = testinfra.host.Host
STATE = "/var/lib/codex-api"
CODEX_HOME = f"{STATE}/.codex-api"
INSTALL = "/opt/codex-api"
APP = ("127.0.0.1", 11435)
AUTHD = ("127.0.0.1", 18080)
UNITS = ("codex-api", "codex-authd", "traefik")
# Files holding a secret (or a digest of one): never readable by "other".
SECRETS = (
    "/etc/codex-api/app.env",
    "/etc/codex-api/api-keys.json",
    "/etc/traefik/traefik.env",
    "/etc/traefik/tls/origin.key",
    f"{CODEX_HOME}/auth.json",
)


def _env_file(host: Host, path: str) -> dict[str, str]:
    lines = host.file(path).content_string.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_host_runs_systemd(host: Host) -> None:
    assert host.run("ps -p 1 -o comm=").stdout.strip() == "systemd"
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_service_user(host: Host) -> None:
    user = host.user("codex")
    assert user.exists
    assert user.group == "codex"
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")


def test_codex_home_is_private_to_the_service_user(host: Host) -> None:
    home = host.file(CODEX_HOME)
    assert home.is_directory
    assert (home.user, home.group, home.mode) == ("codex", "codex", 0o700)


def test_codex_home_is_writable_by_the_service_user(host: Host) -> None:
    probe = f"{CODEX_HOME}/.infra-write-probe"
    r = host.run(f"runuser -u codex -- sh -c {shlex.quote(f'touch {probe} && rm {probe}')}")
    assert r.rc == 0, r.stderr


@pytest.mark.parametrize("name", ["config.toml", "AGENTS.md"])
def test_codex_home_templates_installed(host: Host, name: str) -> None:
    f = host.file(f"{CODEX_HOME}/{name}")
    assert f.is_file
    assert f.user == "codex"


def test_codex_login_is_present_and_private(host: Host) -> None:
    """The login is host state: checked for presence, owner and mode — never its content (issue 10)."""
    f = host.file(f"{CODEX_HOME}/auth.json")
    if _env_file(host, "/etc/codex-api/app.env").get("PROXY_BACKEND") != "offline":
        assert f.exists, "no Codex login: run `ansible-playbook login.yml --limit <host>` from ansible/"
    if f.exists:
        assert f.is_file and not f.is_symlink
        assert (f.user, f.group, f.mode) == ("codex", "codex", 0o600)


def test_the_live_release_is_complete_and_the_units_run_it(host: Host) -> None:
    current = host.file(f"{INSTALL}/current")
    assert current.is_symlink
    assert current.linked_to.startswith(f"{INSTALL}/releases/")
    assert host.file(f"{current.linked_to}/.installed").exists
    for unit in ("codex-api", "codex-authd"):
        text = host.file(f"/etc/systemd/system/{unit}.service").content_string
        assert f"ExecStart={INSTALL}/current/venv/bin/" in text


@pytest.mark.parametrize("path", SECRETS)
def test_secrets_not_world_readable(host: Host, path: str) -> None:
    f = host.file(path)
    if f.exists:
        assert f.mode & 0o007 == 0, oct(f.mode)


@pytest.mark.parametrize("unit", UNITS)
def test_unit_enabled_and_active(host: Host, unit: str) -> None:
    s = host.service(unit)
    assert s.is_valid
    assert s.is_enabled
    assert s.is_running


@pytest.mark.parametrize(("name", "addr"), [("app", APP), ("authd", AUTHD)])
def test_loopback_only_listener(host: Host, name: str, addr: tuple[str, int]) -> None:
    ip, port = addr
    assert host.socket(f"tcp://{ip}:{port}").is_listening, name
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, name
    assert not host.socket(f"tcp://:::{port}").is_listening, name


def test_only_traefik_and_sshd_listen_publicly(host: Host) -> None:
    """Everything else (app, authd, codex's offline model, Traefik's ping) stays on loopback."""
    out = host.run("ss -Htlnup").stdout
    public = []
    for line in out.splitlines():
        local = line.split()[4]
        ip = local.rsplit(":", 1)[0].strip("[]")
        if not (ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")):
            public.append(line)
    owners = {m for line in public for m in re.findall(r'\(\("([^"]+)"', line)}
    assert owners <= {"traefik", "sshd"}, public
    assert "traefik" in owners, out


def test_readyz_from_the_host(host: Host) -> None:
    url = f"http://{APP[0]}:{APP[1]}/readyz"
    wait_for(
        lambda: host.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout == "200",
        timeout=60,
        interval=0.5,
        what=f"{url} to answer 200",
    )


def test_chat_completion_through_traefik(host: Host) -> None:
    """The whole edge on the host: TLS + Host rule -> forwardAuth (authd) -> app -> codex.

    A host with PROXY_BACKEND=offline (CI) serves the offline model, which answers `echo: <text>`.
    """
    api_host = _env_file(host, "/etc/traefik/traefik.env")["API_HOST"]
    key = _env_file(host, "/etc/codex-api/app.env")["PROXY_API_KEY"]
    body = json.dumps({"model": "gpt-5.2", "messages": [{"role": "user", "content": "infra ping"}]})
    cmd = (
        f"curl -sk --max-time 60 --resolve {api_host}:443:127.0.0.1 https://{api_host}/v1/chat/completions "
        f"-H 'Content-Type: application/json' -H @- -d {shlex.quote(body)} -w '\\n%{{http_code}}'"
    )
    # The key goes in on stdin, so it never shows in the host's process list.
    r = host.run(f"printf 'Authorization: Bearer %s\\n' {shlex.quote(key)} | {cmd}")
    text, _, status = r.stdout.rpartition("\n")
    assert status == "200", r.stdout[-1000:] + r.stderr[-500:]
    reply = json.loads(text)["choices"][0]["message"]["content"]
    if _env_file(host, "/etc/codex-api/app.env").get("PROXY_BACKEND") == "offline":
        assert reply == "echo: infra ping"


def test_traefik_rejects_a_missing_key(host: Host) -> None:
    api_host = _env_file(host, "/etc/traefik/traefik.env")["API_HOST"]
    r = host.run(
        f"curl -sk -o /dev/null -w '%{{http_code}}' --resolve {api_host}:443:127.0.0.1 "
        f"https://{api_host}/v1/chat/completions -H 'Content-Type: application/json' -d '{{}}'"
    )
    assert r.stdout == "401"
