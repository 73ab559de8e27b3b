"""codex's stderr becomes clean log lines: colours removed, levels kept, per-turn noise demoted to DEBUG."""

from __future__ import annotations

import logging

import pytest

from app.codex.stderr import classify
from app.logs import strip_controls

ESC = "\x1b"


@pytest.mark.parametrize(
    ("raw", "level", "message"),
    [
        (
            f"{ESC}[2m2026-12-02T00:40:40.877127Z{ESC}[0m {ESC}[33m WARN{ESC}[0m "
            f"{ESC}[2mcodex_models_manager::model_info{ESC}[0m{ESC}[2m:{ESC}[0m "
            "Unknown model offline is used. This will use fallback model metadata.",
            logging.DEBUG,
            "Unknown model offline is used. This will use fallback model metadata.",
        ),
        (
            f"{ESC}[2m2026-12-02T00:36:41.959338Z{ESC}[0m {ESC}[31mERROR{ESC}[0m {ESC}[2mcodex_app_server{ESC}[0m"
            f"{ESC}[2m:{ESC}[0m Codex could not find bubblewrap on PATH. Install bubblewrap.",
            logging.INFO,
            "Codex could not find bubblewrap on PATH. Install bubblewrap.",
        ),
        (
            "2026-12-02T00:36:41.959338Z  WARN codex_core::client: stream disconnected, retrying",
            logging.WARNING,
            "stream disconnected, retrying",
        ),
        ("2026-12-02T00:36:41.959338Z ERROR codex_core: boom", logging.ERROR, "boom"),
        (
            'WARNING: proceeding, even though we could not create PATH aliases: Refusing … "/tmp"',
            logging.INFO,
            'WARNING: proceeding, even though we could not create PATH aliases: Refusing … "/tmp"',
        ),
        ("WARNING: something new", logging.WARNING, "WARNING: something new"),
        ("thread 'main' panicked at src/x.rs:1", logging.INFO, "thread 'main' panicked at src/x.rs:1"),
    ],
    ids=["per-turn-noise", "startup-notice", "warn", "error", "bare-startup", "bare-warning", "bare"],
)
def test_classify(raw: str, level: int, message: str) -> None:
    line = classify(raw)
    assert (line.level, line.message) == (level, message)
    assert ESC not in line.message


def test_the_codex_level_and_target_are_kept() -> None:
    line = classify("2026-12-02T00:36:41.959338Z  WARN codex_core::client: x")
    assert (line.codex_level, line.target) == ("WARN", "codex_core::client")


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (f"{ESC}[1;31mred{ESC}[0m", "red"),
        (f"{ESC}]0;title{ESC}\\after", "after"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("plain", "plain"),
    ],
    ids=["csi", "osc", "c0", "whitespace-kept", "plain"],
)
def test_strip_controls(text: str, clean: str) -> None:
    assert strip_controls(text) == clean
