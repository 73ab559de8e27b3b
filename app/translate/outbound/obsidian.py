"""obsidian-xml output mode: the structured calls Codex produced, also written as `<use_tool>` blocks in the text.

Obsidian Copilot's agent finds tool calls in the assistant text (app.translate.use_tool). This encoder wraps an
API encoder (chat or responses) and changes one thing: after the calls' own frames (`delta.tool_calls`, or
Responses `function_call` items — sent alongside, as the older implementation did), each call is appended to
the message text as one canonical block, **one complete block per SSE chunk**, so no tag is ever split across
chunks whatever the model's argument deltas looked like (the server only ever sees whole calls). Blocks after
other text are separated by a blank line; nothing follows the last block (the response ends with the calls).
The non-stream body holds the same text. Nothing is prompted: the model calls real tools, this only renders them.
"""

from __future__ import annotations

import msgspec

from app.codex.turn import TurnFinished
from app.openai.errors import ErrorDetail
from app.translate.outbound.accumulator import MessageOut, OutputAccumulator, ReasoningOut, ToolCallOut
from app.translate.outbound.sse import Encoder, EncoderFactory
from app.translate.plan import TurnPlan
from app.translate.use_tool import render_block


class ObsidianXmlEncoder:
    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.acc = inner.acc
        self._rendered: set[str] = set()  # call ids already written as blocks

    def opening(self) -> list[bytes]:
        return self.inner.opening()

    def text(self, item: MessageOut, delta: str, opened: bool) -> list[bytes]:
        return self.inner.text(item, delta, opened)

    def reasoning(self, item: ReasoningOut, delta: str, opened: bool) -> list[bytes]:
        return self.inner.reasoning(item, delta, opened)

    def tool_calls(self, items: list[ToolCallOut]) -> list[bytes]:
        frames = self.inner.tool_calls(items)
        for item in items:
            block, message, opened = self._render(item)
            frames += self.inner.text(message, block, opened)
        return frames

    def closing(self, finished: TurnFinished) -> list[bytes]:
        return self.inner.closing(finished)

    def failure(self, error: ErrorDetail) -> list[bytes]:
        return self.inner.failure(error)

    def body(self, finished: TurnFinished) -> msgspec.Struct:
        for item in self.acc.calls:
            if item.call.call_id not in self._rendered:
                self._render(item)
        return self.inner.body(finished)

    def _render(self, item: ToolCallOut) -> tuple[str, MessageOut, bool]:
        """Append the call's block to the text (the accumulator holds what stream and body show)."""
        self._rendered.add(item.call.call_id)
        written = any(m.parts for m in self.acc.messages)
        block = ("\n\n" if written else "") + render_block(item.call.name, item.call.arguments)
        message, opened = self.acc.text(block)
        return block, message, opened


def with_output_mode(factory: EncoderFactory) -> EncoderFactory:
    """The API's encoder, wrapped for obsidian-xml when the request chose that mode."""

    def build(plan: TurnPlan, acc: OutputAccumulator) -> Encoder:
        encoder = factory(plan, acc)
        return ObsidianXmlEncoder(encoder) if plan.output_mode == "obsidian-xml" else encoder

    return build
