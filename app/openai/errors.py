"""The OpenAI error envelope: `{"error": {"message", "type", "param", "code"}}` on every error path."""

from __future__ import annotations

from msgspec import Struct


class ErrorDetail(Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(Struct):
    error: ErrorDetail
