"""The Codex login as the backend sees it: which backend to run, and whether the login still works.

A production host without a usable login must never answer model requests with the offline echo model
(issue 10): it reports `needs_login` on /readyz and refuses generation with 503 `codex_login_required`.
The login is host state: `auth.json` appears when the operator logs in (`make login`, `login.yml`), codex
rewrites it when it refreshes tokens, and the provider can reject it at any time. This module turns those
events into one state that readiness, /healthz and the generation routes read.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from app.codex.turn import CodexError, TurnFailed, TurnFinished

logger = logging.getLogger(__name__)

BackendChoice = Literal["codex", "offline", "needs_login"]
LoginStatus = Literal["not_used", "missing", "present", "rejected"]

# What the operator has to do, in plain words; shown on /readyz and in the log (never to API clients: the
# generation routes get errors.LOGIN_HINT, which names no host path).
LOGIN_FIX = (
    "log the service in: `make login` for a local CODEX_HOME, or from ansible/ "
    "`ansible-playbook login.yml --limit <host>` for a deployed host (both run `codex login --device-auth` "
    "as the service user and print a URL and a one-time code); the service picks the new login up by itself"
)


def choose_backend(backend: str, env: str, logged_in: bool) -> BackendChoice:
    """(PROXY_BACKEND, PROXY_ENV, a login or not) → what runs. Only dev falls back to the offline model by itself."""
    if backend == "offline":
        return "offline"
    if logged_in:
        return "codex"
    if backend == "auto" and env == "dev":
        return "offline"
    return "needs_login"


def is_auth_failure(err: CodexError) -> bool:
    """codex reports a rejected ChatGPT login as `unauthorized`, and a provider 401 as httpConnectionFailed{401}
    (measured: docs/offline-model.md, failure table); both mean the server's credentials no longer work."""
    return err.info == "unauthorized" or err.http_status == 401


class LoginFile(msgspec.Struct, frozen=True):
    """Identity of auth.json on disk: a re-login or a token refresh changes it."""

    inode: int
    size: int
    mtime_ns: int


# Written by `python -m app.login` next to auth.json after every successful login. Codex's own token refreshes
# rewrite auth.json but never this file, so a change here means "a new login": the workers are restarted so
# no process keeps (and refreshes) the tokens of the login it replaced.
GENERATION_FILE = ".login-generation"


def login_generation(codex_home: Path) -> str | None:
    try:
        return (codex_home / GENERATION_FILE).read_text().strip() or None
    except OSError:
        return None


def login_file(codex_home: Path) -> LoginFile | None:
    try:
        st = os.stat(codex_home / "auth.json")
    except OSError:
        return None
    return LoginFile(inode=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns)


class LoginState:
    """Missing / present / rejected, with the reason shown on /readyz. Only meaningful in codex mode."""

    def __init__(self, codex_home: Path) -> None:
        self.codex_home = codex_home
        self.status: LoginStatus = "not_used"
        self.rejected_at: float | None = None
        self.rejected_message = ""
        self.rejected_file: LoginFile | None = None
        self.generation: str | None = None

    @property
    def usable(self) -> bool:
        return self.status in ("not_used", "present")

    def reason(self) -> str:
        if self.status == "missing":
            return f"needs_login: CODEX_HOME {self.codex_home} has no Codex login (auth.json) — {LOGIN_FIX}"
        if self.status == "rejected":
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.rejected_at or 0))
            return (
                f"needs_login: the model provider rejected the Codex login in {self.codex_home} at {when} "
                f"({self.rejected_message[:200]}) — it expired or was revoked; {LOGIN_FIX}"
            )
        return ""

    def present(self) -> None:
        if self.status != "present":
            logger.info("Codex login in %s is in use", self.codex_home)
        self.status = "present"
        self.rejected_at = None
        self.rejected_file = None
        self.generation = login_generation(self.codex_home)

    def missing(self) -> None:
        if self.status != "missing":
            self.status = "missing"
            logger.warning("not serving model requests: %s", self.reason())

    def observe_error(self, err: CodexError) -> None:
        if self.status == "not_used" or not is_auth_failure(err):
            return
        if self.status != "rejected":
            self.status = "rejected"
            self.rejected_at = time.time()
            self.rejected_message = err.message
            self.rejected_file = login_file(self.codex_home)
            logger.error("Codex login rejected; readiness is off until a turn succeeds: %s", self.reason())

    def observe_finished(self, finished: TurnFinished) -> None:
        if finished.error is not None:
            self.observe_error(finished.error)
        elif finished.status == "completed" and self.status == "rejected":
            logger.info("a turn succeeded again: the Codex login works, readiness is back")
            self.present()

    def login_replaced(self) -> bool:
        """A new login since the workers started (app.login's generation), or, after a rejection, any change
        to auth.json (a login made some other way, or a refresh by another process)."""
        if self.status != "not_used" and login_generation(self.codex_home) != self.generation:
            return True
        return self.status == "rejected" and login_file(self.codex_home) != self.rejected_file


class WatchedTurn:
    """Wraps a turn session so the login state learns every turn's outcome (one hook in the pipeline).

    Delegates `__aenter__`, `next_event` and `__aexit__`; everything else is the wrapped session's.
    """

    def __init__(self, session: Any, login: LoginState) -> None:
        self._session = session
        self._login = login

    async def __aenter__(self) -> WatchedTurn:
        try:
            await self._session.__aenter__()
        except TurnFailed as exc:
            self._login.observe_error(exc.error)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.__aexit__(*exc_info)

    async def next_event(self) -> Any:
        try:
            event = await self._session.next_event()
        except TurnFailed as exc:
            self._login.observe_error(exc.error)
            raise
        if isinstance(event, TurnFinished):
            self._login.observe_finished(event)
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
