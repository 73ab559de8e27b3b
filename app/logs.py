"""Logging set-up: one stdlib configuration for the app, its access log, Granian and codex's stderr.

Plain text in dev, one JSON object per line with `PROXY_LOG_JSON` (prod's default). The same `dictConfig` is
handed to Granian (`log_dictconfig`, applied in its main and worker processes) and applied again by the app
factory, and Litestar's own logging config is switched off in `create_app`: Litestar's default replaced the
root handler and level after ours was set, so `PROXY_LOG_LEVEL` and `PROXY_LOG_JSON` had no effect (issue 11).

Structured fields travel as `extra={"fields": {...}}`: JSON lines carry them as top-level keys, text lines
show the message only (the access log builds its own readable text). ANSI escapes and other control
characters are removed from every line, whatever wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import msgspec

from app.settings import Settings

HANDLER = "codex-api-stderr"
# CSI/OSC escape sequences (colours, cursor moves, titles) and the remaining C0 controls except \t and \n.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")
_ENCODER = msgspec.json.Encoder()


def strip_controls(text: str) -> str:
    """The text without ANSI escape sequences or control characters (tabs and newlines kept)."""
    return _ESCAPES.sub("", text) if ("\x1b" in text or not text.isprintable()) else text


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the record's structured `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": strip_controls(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, strip_controls(value) if isinstance(value, str) else value)
        if record.exc_info:
            entry["exc"] = strip_controls(self.formatException(record.exc_info))
        return _ENCODER.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message>` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return strip_controls(super().format(record))


def dict_config(settings: Settings) -> dict[str, Any]:
    """The whole logging configuration as a `dictConfig` dict (also given to Granian, which applies it in its
    main and worker processes). Granian's loggers propagate to the root handler instead of printing their own
    bracketed lines to stdout."""
    level = settings.log_level
    formatter = "app.logs.JsonFormatter" if settings.log_json else "app.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"app": {"()": formatter}},
        "handlers": {HANDLER: {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"}},
        "root": {"handlers": [HANDLER], "level": level},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True, "level": level},
            "granian.access": {"handlers": [], "propagate": True, "level": level},
            "litestar": {"handlers": [], "propagate": True, "level": level},
        },
    }


def configure_logging(settings: Settings) -> None:
    """The same configuration as `dict_config`, applied by hand: `dictConfig` would close every existing handler
    (a test runner's capture included), so only our own root handler is replaced (also the one Granian's
    `dictConfig` installed from `dict_config`, which has the same name)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.name = HANDLER
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.name == HANDLER:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("_granian", "granian.access", "litestar"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(settings.log_level)


def granian_level(settings: Settings) -> str:
    """Granian's `log_level` name for our level (it sets `_granian`'s level from it after the dict config)."""
    return settings.log_level.lower()
