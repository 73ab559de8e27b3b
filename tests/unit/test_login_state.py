"""Which backend runs, and how auth failures and successes move the login state (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.codex.turn import CodexError, TurnFinished
from app.login_state import LoginState, choose_backend, is_auth_failure


@pytest.mark.parametrize(
    ("backend", "env", "logged_in", "expected"),
    [
        ("auto", "dev", False, "offline"),
        ("auto", "dev", True, "codex"),
        ("auto", "prod", False, "needs_login"),
        ("auto", "prod", True, "codex"),
        ("codex", "dev", False, "needs_login"),
        ("codex", "prod", True, "codex"),
        ("offline", "prod", False, "offline"),
        ("offline", "prod", True, "offline"),
    ],
    ids=lambda v: str(v),
)
def test_choose_backend(backend: str, env: str, logged_in: bool, expected: str) -> None:
    assert choose_backend(backend, env, logged_in) == expected


@pytest.mark.parametrize(
    ("err", "auth"),
    [
        (CodexError(message="x", info="unauthorized"), True),
        (CodexError(message="unexpected status 401 Unauthorized", info="httpConnectionFailed", http_status=401), True),
        (CodexError(message="forbidden", info="httpConnectionFailed", http_status=403), False),
        (CodexError(message="limit", info="usageLimitExceeded"), False),
    ],
    ids=["unauthorized", "http-401", "http-403", "usage-limit"],
)
def test_is_auth_failure(err: CodexError, auth: bool) -> None:
    assert is_auth_failure(err) is auth


def _state(tmp_path: Path) -> LoginState:
    (tmp_path / "auth.json").write_text("{}")
    state = LoginState(tmp_path)
    state.present()
    return state


def test_an_auth_failure_rejects_and_a_completed_turn_accepts(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.observe_finished(TurnFinished(status="failed", usage=None, error=CodexError(message="401", http_status=401)))
    assert (state.status, state.usable) == ("rejected", False)
    assert "needs_login" in state.reason() and "401" in state.reason()
    state.observe_finished(TurnFinished(status="completed", usage=None))
    assert (state.status, state.usable) == ("present", True)


def test_other_failures_leave_the_login_alone(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.observe_error(CodexError(message="overloaded", info="serverOverloaded"))
    assert state.status == "present"


def test_without_a_login_in_use_nothing_is_tracked(tmp_path: Path) -> None:
    state = LoginState(tmp_path)  # offline model: not_used
    state.observe_error(CodexError(message="401", http_status=401))
    assert (state.status, state.usable) == ("not_used", True)


def test_login_replaced_sees_a_rewritten_auth_json(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.observe_error(CodexError(message="401", http_status=401))
    assert not state.login_replaced()
    (tmp_path / "auth.json").write_text('{"tokens": "new"}')
    assert state.login_replaced()
