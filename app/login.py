"""`python -m app.login`: Codex's device-code login for one CODEX_HOME, bounded in time (issue 10).

Runs `codex login --device-auth`, shows the verification URL and one-time code, and waits while the operator
finishes in a browser on any other machine. Without a route to the login server codex either fails at once
(DNS, connection refused) or hangs on the connection (a proxy or firewall that drops packets): both end here
within `--code-timeout` seconds with a message that says what to check.

codex deletes the existing auth.json before it even contacts the server, so a failed re-login would destroy a
working login. It therefore logs in inside a private staging home and only a finished login replaces auth.json
(an atomic rename, 0600). A running app notices the new login (`.login-generation`) and restarts its workers.

`--transcript FILE` mirrors everything printed (0600) for Ansible's login.yml, which cannot stream a task's
output; its status lines start with `LOGIN WAITING`, `LOGIN OK` or `LOGIN FAILED`.

exit status: 0 logged in · 1 the login did not complete · 2 usage/setup error · 3 no code from the login server
"""

from __future__ import annotations

import argparse
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from app.codex.launch import prepare_codex_home
from app.login_state import GENERATION_FILE
from app.settings import ConfigError, Settings

REACH = (
    "The host needs outbound HTTPS to auth.openai.com and chatgpt.com: check DNS, HTTPS_PROXY and the "
    "firewall, then run the login again."
)
# codex prints the code on the line after this one; the transcript marks "shown" once that line arrived.
CODE_LINE = "one-time code"


class Reporter:
    """Prints to the terminal and mirrors to the transcript file (if any), line by line, flushed."""

    def __init__(self, out: TextIO, transcript: Path | None) -> None:
        self.out = out
        self.file: TextIO | None = None
        if transcript is not None:
            fd = os.open(transcript, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.file = os.fdopen(fd, "w", encoding="utf-8")

    def line(self, text: str) -> None:
        for f in (self.out, self.file):
            if f is not None:
                f.write(text + "\n")
                f.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """TERM the login's process group, KILL it if it lingers; never leaves a child behind."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def _install(staging: Path, home: Path) -> Path:
    """Move the fresh login into place atomically (same directory → same filesystem) and mark it as new."""
    auth = home / "auth.json"
    os.chmod(staging / "auth.json", 0o600)
    os.replace(staging / "auth.json", auth)
    marker = home / GENERATION_FILE
    tmp = home / f".{GENERATION_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {secrets.token_hex(8)}\n")
    os.replace(tmp, marker)
    return auth


def run_login(codex_bin: str, codex_home: Path, *, code_timeout: float, timeout: float, report: Reporter) -> int:
    if not (Path(codex_bin).is_file() and os.access(codex_bin, os.X_OK)):
        report.line(f"LOGIN FAILED: CODEX_BIN {codex_bin} is missing or not executable (run `make codex`).")
        return 2
    try:
        prepare_codex_home(codex_home)
    except OSError as exc:
        report.line(f"LOGIN FAILED: cannot use CODEX_HOME {codex_home}: {exc}")
        return 2
    if (codex_home / "auth.json").exists():
        report.line(f"Replacing the login in {codex_home} (it stays in place unless the new login completes).")
    staging = Path(tempfile.mkdtemp(prefix=".login-", dir=codex_home))
    try:
        if (codex_home / "config.toml").is_file():
            shutil.copyfile(codex_home / "config.toml", staging / "config.toml")  # same auth settings
        return _device_login(codex_bin, codex_home, staging, code_timeout=code_timeout, timeout=timeout, report=report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _device_login(
    codex_bin: str, home: Path, staging: Path, *, code_timeout: float, timeout: float, report: Reporter
) -> int:
    report.line(f"Starting the device-code login for CODEX_HOME={home} (codex login --device-auth) …")
    proc = subprocess.Popen(
        [codex_bin, "login", "--device-auth"],
        env={**os.environ, "CODEX_HOME": str(staging)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    started = time.monotonic()
    code_seen_at: float | None = None
    waiting = False
    last = ""
    buf = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            now = time.monotonic()
            if code_seen_at is not None and not waiting and now - code_seen_at > 2:
                waiting = True  # the code line came without a line after it: it is on screen anyway
                report.line("LOGIN WAITING: open the link above, sign in and enter the code.")
            deadline = started + (timeout if waiting else code_timeout)
            if now >= deadline:
                _stop(proc)
                if waiting:
                    report.line(f"LOGIN FAILED: the login was not completed within {timeout:.0f} s; run it again.")
                    return 1
                report.line(
                    f"LOGIN FAILED: no answer from the login server within {code_timeout:.0f} s, so codex was "
                    f"stopped. {REACH}"
                )
                return 3
            events = sel.select(min(deadline - now, 0.5))
            if not events:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                text = raw.decode(errors="replace").rstrip()
                if not text.strip():
                    continue
                report.line(text)
                last = text
                if code_seen_at is not None and not waiting:
                    waiting = True
                    report.line("LOGIN WAITING: open the link above, sign in and enter the code.")
                if CODE_LINE in text and code_seen_at is None:
                    code_seen_at = time.monotonic()
        if buf.strip():
            last = buf.decode(errors="replace").strip()
            report.line(last)
        rc = proc.wait(timeout=max(1.0, started + timeout - time.monotonic()))
    finally:
        sel.close()
        _stop(proc)
        proc.stdout.close()
    if rc == 0 and (staging / "auth.json").is_file():
        auth = _install(staging, home)
        report.line(
            f"LOGIN OK: logged in; {auth} (0600) is in place. A running service picks the new login up "
            "within seconds (PROXY_LOGIN_POLL_MS) and restarts its Codex workers with it."
        )
        return 0
    if code_seen_at is None:
        report.line(f"LOGIN FAILED: codex could not start the device-code login ({last or f'exit {rc}'}). {REACH}")
        return 3
    report.line(f"LOGIN FAILED: the login did not complete (codex exit {rc}: {last}). Run it again.")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.login", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--codex-home", help="the Codex home to log in (default: CODEX_HOME / the env's default)")
    parser.add_argument("--codex-bin", help="the codex executable (default: CODEX_BIN / the pinned binary)")
    parser.add_argument("--code-timeout", type=float, default=30.0, help="seconds to wait for the one-time code")
    parser.add_argument("--timeout", type=float, default=960.0, help="seconds for the whole login (codex: 15 min)")
    parser.add_argument("--transcript", type=Path, help="mirror the output to this file (0600), for login.yml")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(check=False)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    home = Path(args.codex_home).expanduser().resolve() if args.codex_home else settings.codex_home_path
    report = Reporter(sys.stdout, args.transcript)
    try:
        return run_login(
            args.codex_bin or settings.codex_bin,
            home,
            code_timeout=args.code_timeout,
            timeout=args.timeout,
            report=report,
        )
    finally:
        report.close()


if __name__ == "__main__":
    raise SystemExit(main())
