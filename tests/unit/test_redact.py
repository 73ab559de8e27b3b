"""Secrets a child might print on stderr are masked before they reach the log or /healthz."""

from __future__ import annotations

import pytest

from app.codex.transport import redact


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer [redacted]"),
        ("using key sk-proj-ABCDEFGH12345", "using key [redacted]"),
        ("open https://auth.example/x?code=SECRET123&state=1", "open https://auth.example/x?code=[redacted]&state=1"),
        ('{"access_token": "eyJabc", "n": 1}', '{"access_token": "[redacted]", "n": 1}'),
        ("refresh_token=rt-1 id_token=it-2", "refresh_token=[redacted] id_token=[redacted]"),
        ("api_key: abc", "api_key: [redacted]"),
    ],
)
def test_secrets_are_masked(line, expected):
    assert redact(line) == expected


@pytest.mark.parametrize("line", ["error code: 500", "stream disconnected before completion", "tokens used: 42"])
def test_ordinary_lines_are_left_alone(line):
    assert redact(line) == line
