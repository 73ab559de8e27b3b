"""What a line of codex's stderr means for our log: its level, its text without colours, and whether it is noise.

codex (RUST_LOG=warn) writes `<ts>  WARN <target>: <message>` with ANSI colours, plus a few bare lines. Some
warnings repeat on every turn and say nothing an operator can act on — with the offline model, "Unknown model
offline is used. This will use fallback model metadata." about 11 times per turn — and in a profile logging
them was about a quarter of the app worker's Python time. Those go to DEBUG (cheap: the record is never
formatted) and stay out of the stderr tail that `/healthz` shows; known harmless start-up messages go to INFO.
"""

from __future__ import annotations

import logging
import re

import msgspec

from app.logs import strip_controls

_LINE = re.compile(r"^\S+Z\s+(?P<level>TRACE|DEBUG|INFO|WARN|ERROR)\s+(?P<target>[\w:.-]+?):\s(?P<message>.*)$")
_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
}
# Per-turn repetition with nothing to act on (matched on the message, colours removed).
PER_TURN_NOISE = (
    re.compile(r"^Unknown model \S+ is used\. This will use fallback model metadata\."),
    re.compile(r"^Model metadata for `[^`]+` not found"),
)
# Printed once per worker start; harmless (app-server-protocol.md §1): INFO, not an alert.
STARTUP_NOTICES = (
    re.compile(r"^Codex could not find bubblewrap on PATH"),
    re.compile(r"proceeding, even though we could not create PATH aliases"),
)


class StderrLine(msgspec.Struct, frozen=True):
    level: int
    message: str
    codex_level: str | None = None
    target: str | None = None

    @property
    def noise(self) -> bool:
        return self.level == logging.DEBUG


def classify(raw: str) -> StderrLine:
    """Pure: one decoded stderr line (already redacted) → level and clean message."""
    text = strip_controls(raw).strip()
    match = _LINE.match(text)
    if match is None:
        message, codex_level, target, level = text, None, None, logging.INFO
        if text.startswith(("WARNING:", "ERROR:")):
            level = logging.WARNING
    else:
        message, codex_level, target = match["message"], match["level"], match["target"]
        level = _LEVELS[codex_level]
    if any(p.search(message) for p in PER_TURN_NOISE):
        level = logging.DEBUG
    elif any(p.search(message) for p in STARTUP_NOTICES):
        level = logging.INFO
    return StderrLine(level=level, message=message, codex_level=codex_level, target=target)
