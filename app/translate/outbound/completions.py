"""Legacy text completions out: `text_completion` objects (no role chunk, no reasoning, no tools)."""

from __future__ import annotations

import msgspec

from app.codex.turn import TurnFinished
from app.openai import chat as c
from app.openai.errors import ErrorDetail, ErrorEnvelope
from app.translate.outbound.accumulator import MessageOut, OutputAccumulator, ReasoningOut, ToolCallOut
from app.translate.outbound.chat import ChatIds, chat_usage, finish_reason
from app.translate.outbound.sse import DONE, data_frame
from app.translate.plan import TurnPlan


class CompletionsEncoder:
    def __init__(self, plan: TurnPlan, acc: OutputAccumulator) -> None:
        self.plan = plan
        self.acc = acc
        self.ids = ChatIds.new("cmpl-", plan.requested_model)

    def _object(self, text: str, finish: str | None) -> c.TextCompletion:
        ids = self.ids
        choice = c.TextChoice(index=0, text=text, finish_reason=finish)
        return c.TextCompletion(id=ids.id, created=ids.created, model=ids.model, choices=[choice])

    def opening(self) -> list[bytes]:
        return []

    def text(self, item: MessageOut, delta: str, opened: bool) -> list[bytes]:
        return [data_frame(self._object(delta, None))]

    def reasoning(self, item: ReasoningOut, delta: str, opened: bool) -> list[bytes]:
        return []

    def tool_calls(self, items: list[ToolCallOut]) -> list[bytes]:
        return []  # never offered: completions declare no tools

    def closing(self, finished: TurnFinished) -> list[bytes]:
        frames = [data_frame(self._object("", finish_reason(finished)))]
        if self.plan.include_usage:
            usage = msgspec.structs.replace(self._object("", None), choices=[], usage=chat_usage(finished.usage))
            frames.append(data_frame(usage))
        return [*frames, DONE]

    def failure(self, error: ErrorDetail) -> list[bytes]:
        return [data_frame(ErrorEnvelope(error=error)), DONE]

    def body(self, finished: TurnFinished) -> c.TextCompletion:
        body = self._object(self.acc.text_value, finish_reason(finished))
        return msgspec.structs.replace(body, usage=chat_usage(finished.usage))
