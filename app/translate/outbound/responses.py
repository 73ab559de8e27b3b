"""Responses API out: typed events with increasing `sequence_number`, and the `response` object.

The response holds the accumulator's output items in order — reasoning, message, **`function_call`** (from
`ToolCallsRequested`) — each with its own id and `output_index`. Stream: every item gets
`response.output_item.added` … `response.output_item.done` (text via content-part / `output_text` events, a
call via `response.function_call_arguments.delta` / `.done`), then `response.completed`.
"""

from __future__ import annotations

import time

import msgspec

from app.codex.turn import TurnFinished, Usage
from app.openai import responses as r
from app.openai.errors import ErrorDetail
from app.translate.outbound.accumulator import (
    MessageOut,
    OutputAccumulator,
    OutputItem,
    ReasoningOut,
    ToolCallOut,
    new_id,
)
from app.translate.outbound.sse import event_frame
from app.translate.plan import TurnPlan


def response_usage(usage: Usage | None) -> r.ResponseUsage:
    u = usage or Usage()
    return r.ResponseUsage(
        input_tokens=u.input_tokens,
        input_tokens_details=r.InputTokensDetails(cached_tokens=u.cached_input_tokens),
        output_tokens=u.output_tokens,
        output_tokens_details=r.OutputTokensDetails(reasoning_tokens=u.reasoning_output_tokens),
        total_tokens=u.total_tokens or u.input_tokens + u.output_tokens,
    )


def _message(item: MessageOut, status: str) -> r.MessageOutput:
    return r.MessageOutput(id=item.id, status=status, content=[r.OutputText(text=item.text)])


def _reasoning(item: ReasoningOut) -> r.ReasoningOutput:
    text = item.text
    return r.ReasoningOutput(id=item.id, summary=[r.SummaryText(text=text)] if text else [])


def _call(item: ToolCallOut, status: str, *, arguments: bool = True) -> r.FunctionCallOutput:
    call = item.call
    return r.FunctionCallOutput(
        id=item.id,
        call_id=call.call_id,
        name=call.name,
        arguments=call.arguments if arguments else "",
        status=status,
        namespace=call.namespace if call.namespace else msgspec.UNSET,
    )


def output_item(item: OutputItem, status: str) -> r.OutputItem:
    """An accumulator item as a Responses output item; a message cut short by a failure is `incomplete`."""
    if isinstance(item, ReasoningOut):
        return _reasoning(item)
    if isinstance(item, MessageOut):
        return _message(item, {"completed": "completed", "in_progress": "in_progress"}.get(status, "incomplete"))
    return _call(item, "completed")


class ResponsesEncoder:
    def __init__(self, plan: TurnPlan, acc: OutputAccumulator) -> None:
        self.plan = plan
        self.acc = acc
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.seq = 0
        self.open: OutputItem | None = None  # the item whose closing events are still due

    def _frames(self, *events: r.ResponseEvent) -> list[bytes]:
        return [event_frame(str(type(e).__struct_config__.tag), e) for e in events]

    def _n(self) -> int:
        self.seq += 1
        return self.seq

    def response(self, status: str, usage: Usage | None = None, error: ErrorDetail | None = None) -> r.Response:
        plan = self.plan
        return r.Response(
            id=self.id,
            created_at=self.created_at,
            status=status,
            model=plan.requested_model,
            output=[output_item(item, status) for item in self.acc.items] if status != "in_progress" else [],
            # usage is null until the end, and on a failure that reported none (OpenAI never invents zeros there)
            usage=response_usage(usage)
            if status != "in_progress" and (usage is not None or status == "completed")
            else None,
            error=r.ResponseError(code=error.code or "server_error", message=error.message) if error else None,
            instructions=plan.instructions,
            max_output_tokens=plan.max_output_tokens,
            metadata=plan.metadata,
            parallel_tool_calls=plan.parallel_tool_calls,
            reasoning=r.ReasoningEcho(effort=plan.effort, summary=plan.summary),
            text=r.TextEcho(format=plan.text_format_echo),
            tool_choice=plan.tool_choice_echo,
            tools=list(plan.tools_echo),
            user=plan.user,
        )

    # -- stream events --

    def opening(self) -> list[bytes]:
        created = self.response("in_progress")
        return self._frames(
            r.ResponseCreated(sequence_number=self._n(), response=created),
            r.ResponseInProgress(sequence_number=self._n(), response=created),
        )

    def _close_open(self) -> list[r.ResponseEvent]:
        item, self.open = self.open, None
        if isinstance(item, ReasoningOut):
            text, part = item.text, r.SummaryText(text=item.text)
            return [
                r.SummaryTextDone(
                    sequence_number=self._n(), item_id=item.id, output_index=item.index, summary_index=0, text=text
                ),
                r.SummaryPartDone(
                    sequence_number=self._n(), item_id=item.id, output_index=item.index, summary_index=0, part=part
                ),
                r.OutputItemDone(sequence_number=self._n(), output_index=item.index, item=_reasoning(item)),
            ]
        if isinstance(item, MessageOut):
            text, part = item.text, r.OutputText(text=item.text)
            return [
                r.OutputTextDone(
                    sequence_number=self._n(), item_id=item.id, output_index=item.index, content_index=0, text=text
                ),
                r.ContentPartDone(
                    sequence_number=self._n(), item_id=item.id, output_index=item.index, content_index=0, part=part
                ),
                r.OutputItemDone(sequence_number=self._n(), output_index=item.index, item=_message(item, "completed")),
            ]
        return []

    def _open_message(self, item: MessageOut) -> list[r.ResponseEvent]:
        events = self._close_open()
        self.open = item
        empty = r.MessageOutput(id=item.id, status="in_progress", content=[])
        return [
            *events,
            r.OutputItemAdded(sequence_number=self._n(), output_index=item.index, item=empty),
            r.ContentPartAdded(
                sequence_number=self._n(),
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                part=r.OutputText(text=""),
            ),
        ]

    def text(self, item: MessageOut, delta: str, opened: bool) -> list[bytes]:
        events = self._open_message(item) if opened else []
        events.append(
            r.OutputTextDelta(
                sequence_number=self._n(), item_id=item.id, output_index=item.index, content_index=0, delta=delta
            )
        )
        return self._frames(*events)

    def reasoning(self, item: ReasoningOut, delta: str, opened: bool) -> list[bytes]:
        events: list[r.ResponseEvent] = []
        if opened:
            events = self._close_open()
            self.open = item
            events += [
                r.OutputItemAdded(
                    sequence_number=self._n(), output_index=item.index, item=r.ReasoningOutput(id=item.id, summary=[])
                ),
                r.SummaryPartAdded(
                    sequence_number=self._n(),
                    item_id=item.id,
                    output_index=item.index,
                    summary_index=0,
                    part=r.SummaryText(text=""),
                ),
            ]
        events.append(
            r.SummaryTextDelta(
                sequence_number=self._n(), item_id=item.id, output_index=item.index, summary_index=0, delta=delta
            )
        )
        return self._frames(*events)

    def tool_calls(self, items: list[ToolCallOut]) -> list[bytes]:
        events = self._close_open()
        for item in items:
            events.append(
                r.OutputItemAdded(
                    sequence_number=self._n(),
                    output_index=item.index,
                    item=_call(item, "in_progress", arguments=False),
                )
            )
            if item.call.arguments:
                events.append(
                    r.FunctionCallArgumentsDelta(
                        sequence_number=self._n(),
                        item_id=item.id,
                        output_index=item.index,
                        delta=item.call.arguments,
                    )
                )
            events += [
                r.FunctionCallArgumentsDone(
                    sequence_number=self._n(),
                    item_id=item.id,
                    output_index=item.index,
                    arguments=item.call.arguments,
                    name=item.call.name,
                ),
                r.OutputItemDone(sequence_number=self._n(), output_index=item.index, item=_call(item, "completed")),
            ]
        return self._frames(*events)

    def closing(self, finished: TurnFinished) -> list[bytes]:
        events = self._close_open()
        if not self.acc.messages and not self.acc.calls:
            item = self.acc.empty_message()
            events += self._open_message(item)
            events += self._close_open()
        events.append(
            r.ResponseCompleted(sequence_number=self._n(), response=self.response("completed", finished.usage))
        )
        return self._frames(*events)

    def failure(self, error: ErrorDetail) -> list[bytes]:
        return self._frames(r.ResponseFailed(sequence_number=self._n(), response=self.response("failed", error=error)))

    def body(self, finished: TurnFinished) -> r.Response:
        if not self.acc.messages and not self.acc.calls:
            self.acc.empty_message()
        return self.response("completed", finished.usage)
