"""SSE framing and the encoder interface every API's outbound module implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from app.codex.turn import TurnFinished
from app.openai.errors import ErrorDetail
from app.translate.outbound.accumulator import MessageOut, OutputAccumulator, ReasoningOut, ToolCallOut
from app.translate.plan import TurnPlan

ENCODER = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"


def data_frame(obj: msgspec.Struct) -> bytes:
    return b"data: " + ENCODER.encode(obj) + b"\n\n"


def event_frame(name: str, obj: msgspec.Struct) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + ENCODER.encode(obj) + b"\n\n"


class Encoder(Protocol):
    """How one API shows a response: stream frames as the accumulator grows, or one body at the end.

    The pipeline updates `acc` first, then asks for the frames of that change; `body` reads only `acc`."""

    acc: OutputAccumulator

    def opening(self) -> list[bytes]: ...
    def text(self, item: MessageOut, delta: str, opened: bool) -> list[bytes]: ...
    def reasoning(self, item: ReasoningOut, delta: str, opened: bool) -> list[bytes]: ...
    def tool_calls(self, items: list[ToolCallOut]) -> list[bytes]: ...
    def closing(self, finished: TurnFinished) -> list[bytes]: ...
    def failure(self, error: ErrorDetail) -> list[bytes]: ...
    def body(self, finished: TurnFinished) -> msgspec.Struct: ...


EncoderFactory = Callable[[TurnPlan, OutputAccumulator], Encoder]
