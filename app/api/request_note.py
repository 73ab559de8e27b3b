"""What one HTTP request leaves for its access-log line, gathered while it runs.

The edge middleware creates a `RequestNote` per request and makes it current (a context variable, so code deep
in the pipeline — the usage ledger, the per-key limiter — can add to it without being handed the ASGI scope).
Tasks the request spawns copy the context and so share the same note object. When the response is fully sent
(a stream included) the middleware runs `on_finish` callbacks, then writes the one access line from the note.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

from app.usage import UsageRecord

logger = logging.getLogger(__name__)


class RequestNote:
    __slots__ = ("bytes_out", "on_finish", "outcome", "record", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.bytes_out = 0
        self.outcome: str | None = None  # set when the request was refused before a turn (e.g. rate_limited)
        self.record: UsageRecord | None = None  # the usage record, for generation requests
        self.on_finish: list[Callable[[], None]] = []

    def finish(self) -> None:
        """Run the callbacks registered for the end of the response (each at most once, failures logged)."""
        callbacks, self.on_finish = self.on_finish, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("request %s: end-of-response callback failed", self.request_id)


_CURRENT: contextvars.ContextVar[RequestNote | None] = contextvars.ContextVar("request_note", default=None)


def current() -> RequestNote | None:
    return _CURRENT.get()


def activate(note: RequestNote) -> contextvars.Token[RequestNote | None]:
    return _CURRENT.set(note)


def deactivate(token: contextvars.Token[RequestNote | None]) -> None:
    _CURRENT.reset(token)


def note_usage(record: UsageRecord) -> None:
    """UsageLog's append hook: the record (outcome, model, tokens) also goes into the request's access line."""
    note = _CURRENT.get()
    if note is not None:
        note.record = record
