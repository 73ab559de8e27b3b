"""Chat completions out: role chunk, content / reasoning / tool-call deltas, one finish chunk, usage, [DONE].

**`ToolCallsRequested` → `tool_calls`**: each call streams as a first fragment carrying `index`, `id`, `type`
and `function.name` (empty arguments), then its argument text as fragments (never cumulative);
`finish_reason: "tool_calls"`. Non-stream: `message.tool_calls`, `content` null when the model wrote no text.
Reasoning summaries: `delta.reasoning_content` in the stream, `message.reasoning_content` in the body.
"""

from __future__ import annotations

import secrets
import time

import msgspec

from app.codex.turn import TurnFinished, Usage
from app.openai import chat as c
from app.openai.errors import ErrorDetail, ErrorEnvelope
from app.translate.outbound.accumulator import MessageOut, OutputAccumulator, ReasoningOut, ToolCallOut
from app.translate.outbound.sse import DONE, data_frame
from app.translate.plan import TurnPlan


def chat_usage(usage: Usage | None) -> c.ChatUsage:
    u = usage or Usage()
    return c.ChatUsage(
        prompt_tokens=u.input_tokens,
        completion_tokens=u.output_tokens,
        total_tokens=u.total_tokens or u.input_tokens + u.output_tokens,
        prompt_tokens_details=c.PromptTokensDetails(cached_tokens=u.cached_input_tokens),
        completion_tokens_details=c.CompletionTokensDetails(reasoning_tokens=u.reasoning_output_tokens),
    )


def finish_reason(finished: TurnFinished) -> str:
    return finished.reason


class ChatIds(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str

    @classmethod
    def new(cls, prefix: str, model: str) -> ChatIds:
        return cls(id=prefix + secrets.token_hex(12), created=int(time.time()), model=model)


def tool_calls(items: list[ToolCallOut]) -> list[c.ChatToolCall]:
    return [
        c.ChatToolCall(id=i.call.call_id, function=c.FunctionCallPayload(name=i.call.name, arguments=i.call.arguments))
        for i in items
    ]


class ChatEncoder:
    def __init__(self, plan: TurnPlan, acc: OutputAccumulator) -> None:
        self.plan = plan
        self.acc = acc
        self.ids = ChatIds.new("chatcmpl-", plan.requested_model)

    def _chunk(self, delta: c.Delta, finish: str | None = None) -> bytes:
        ids = self.ids
        choice = c.ChunkChoice(index=0, delta=delta, finish_reason=finish)
        return data_frame(c.ChatCompletionChunk(id=ids.id, created=ids.created, model=ids.model, choices=[choice]))

    def opening(self) -> list[bytes]:
        return [self._chunk(c.Delta(role="assistant", content=""))]

    def text(self, item: MessageOut, delta: str, opened: bool) -> list[bytes]:
        return [self._chunk(c.Delta(content=delta))]

    def reasoning(self, item: ReasoningOut, delta: str, opened: bool) -> list[bytes]:
        return [self._chunk(c.Delta(reasoning_content=delta))]

    def tool_calls(self, items: list[ToolCallOut]) -> list[bytes]:
        frames: list[bytes] = []
        for item in items:
            call = item.call
            first = c.DeltaToolCall(
                index=item.ordinal, id=call.call_id, type="function", function=c.DeltaFunction(name=call.name)
            )
            frames.append(self._chunk(c.Delta(tool_calls=[first])))
            if call.arguments:
                rest = c.DeltaToolCall(index=item.ordinal, function=c.DeltaFunction(arguments=call.arguments))
                frames.append(self._chunk(c.Delta(tool_calls=[rest])))
        return frames

    def closing(self, finished: TurnFinished) -> list[bytes]:
        frames = [self._chunk(c.Delta(), finish_reason(finished))]
        if self.plan.include_usage:
            ids = self.ids
            usage = c.ChatCompletionChunk(
                id=ids.id, created=ids.created, model=ids.model, choices=[], usage=chat_usage(finished.usage)
            )
            frames.append(data_frame(usage))
        return [*frames, DONE]

    def failure(self, error: ErrorDetail) -> list[bytes]:
        return [data_frame(ErrorEnvelope(error=error)), DONE]

    def body(self, finished: TurnFinished) -> c.ChatCompletion:
        calls = self.acc.calls
        text = self.acc.text_value
        reasoning = self.acc.reasoning_value
        message = c.AssistantMessage(
            content=None if calls and not text else text,
            tool_calls=tool_calls(calls) if calls else msgspec.UNSET,
            reasoning_content=reasoning if reasoning else msgspec.UNSET,
        )
        ids = self.ids
        return c.ChatCompletion(
            id=ids.id,
            created=ids.created,
            model=ids.model,
            choices=[c.Choice(index=0, message=message, finish_reason=finish_reason(finished))],
            usage=chat_usage(finished.usage),
        )
