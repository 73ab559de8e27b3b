"""OpenAI Responses API wire structs: the request, the response object and the typed stream events.

Shapes follow OpenAI's published API (where the older reference implementation differs, OpenAI wins), so the
official SDK's models and its accumulating `responses.stream()` helper accept them unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import Struct

from app.openai.chat import ReasoningOptions


class InputPart(Struct):
    type: str
    text: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputItem(Struct):
    type: str = "message"
    role: str | None = None
    content: str | list[InputPart] | None = None


class TextFormat(Struct):
    type: str


class TextOptions(Struct):
    format: TextFormat | None = None


class ToolDeclaration(Struct):
    """A declared tool: accepted, never executed (see app.translate.plan_responses); only its shape is checked."""

    type: str
    name: str | None = None


class ResponsesRequest(Struct):
    model: str | None = None
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    stream: bool | None = None
    max_output_tokens: int | None = None
    reasoning: ReasoningOptions | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    user: str | None = None
    text: TextOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    truncation: str | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    # Refused with a clear 400 (stateless service; client tools come later; one output only).
    previous_response_id: str | None = None
    tools: list[ToolDeclaration] | None = None
    tool_choice: Any = None
    messages: Any = None
    n: int | None = None
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None


# ---- the response object -----------------------------------------------------------------------------------


class OutputText(Struct):
    text: str
    type: Literal["output_text"] = "output_text"
    annotations: list[Any] = msgspec.field(default_factory=list)
    logprobs: list[Any] = msgspec.field(default_factory=list)


class MessageOutput(Struct):
    id: str
    status: str
    content: list[OutputText]
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"


class SummaryText(Struct):
    text: str
    type: Literal["summary_text"] = "summary_text"


class ReasoningOutput(Struct):
    id: str
    summary: list[SummaryText]
    type: Literal["reasoning"] = "reasoning"


OutputItem = MessageOutput | ReasoningOutput


class InputTokensDetails(Struct):
    cached_tokens: int = 0


class OutputTokensDetails(Struct):
    reasoning_tokens: int = 0


class ResponseUsage(Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(Struct):
    code: str
    message: str


class IncompleteDetails(Struct):
    reason: str


class ReasoningEcho(Struct):
    effort: str | None = None
    summary: str | None = None


class TextFormatEcho(Struct):
    type: str = "text"


class TextEcho(Struct):
    format: TextFormatEcho = msgspec.field(default_factory=TextFormatEcho)


class Response(Struct):
    id: str
    created_at: int
    status: str
    model: str
    output: list[OutputItem]
    usage: ResponseUsage | None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    parallel_tool_calls: bool = False
    previous_response_id: None = None
    reasoning: ReasoningEcho = msgspec.field(default_factory=ReasoningEcho)
    store: bool = False
    temperature: float | None = None
    text: TextEcho = msgspec.field(default_factory=TextEcho)
    tool_choice: str = "none"
    tools: list[Any] = msgspec.field(default_factory=list)
    top_p: float | None = None
    truncation: str = "disabled"
    user: str | None = None
    object_: Literal["response"] = msgspec.field(default="response", name="object")


# ---- stream events (each carries `type` and a strictly increasing `sequence_number`) ----------------------


class ResponseEvent(Struct, tag_field="type"):
    sequence_number: int


class ResponseCreated(ResponseEvent, tag="response.created"):
    response: Response


class ResponseInProgress(ResponseEvent, tag="response.in_progress"):
    response: Response


class ResponseCompleted(ResponseEvent, tag="response.completed"):
    response: Response


class ResponseIncomplete(ResponseEvent, tag="response.incomplete"):
    response: Response


class ResponseFailed(ResponseEvent, tag="response.failed"):
    response: Response


class OutputItemAdded(ResponseEvent, tag="response.output_item.added"):
    output_index: int
    item: OutputItem


class OutputItemDone(ResponseEvent, tag="response.output_item.done"):
    output_index: int
    item: OutputItem


class ContentPartAdded(ResponseEvent, tag="response.content_part.added"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartDone(ResponseEvent, tag="response.content_part.done"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDelta(ResponseEvent, tag="response.output_text.delta"):
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputTextDone(ResponseEvent, tag="response.output_text.done"):
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class SummaryPartAdded(ResponseEvent, tag="response.reasoning_summary_part.added"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryPartDone(ResponseEvent, tag="response.reasoning_summary_part.done"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryTextDelta(ResponseEvent, tag="response.reasoning_summary_text.delta"):
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryTextDone(ResponseEvent, tag="response.reasoning_summary_text.done"):
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ErrorEvent(ResponseEvent, tag="error"):
    code: str | None
    message: str
    param: str | None = None
