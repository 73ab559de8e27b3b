"""OpenAI Responses API wire structs: the request, the response object and the typed stream events.

Shapes follow OpenAI's published API (where the older reference implementation differs, OpenAI wins), so the
official SDK's models and its accumulating `responses.stream()` helper accept them unchanged.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from app.openai.chat import ChatToolChoice, FunctionDefinition, ReasoningOptions


class InputPart(Struct):
    type: str
    text: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputItem(Struct):
    """One `input[]` item: a message, or a `function_call` the model made / its `function_call_output`."""

    type: str = "message"
    role: str | None = None
    content: str | list[InputPart] | None = None
    # function_call / function_call_output
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    output: str | list[InputPart] | None = None


class TextFormat(Struct):
    """`text.format`: text, json_object, or json_schema with the schema inline (flat, unlike chat)."""

    type: str
    name: str | None = None
    description: str | None = None
    schema: msgspec.Raw = msgspec.Raw()  # absent: empty (msgspec cannot take `Raw | None`)
    strict: bool | None = None


class TextOptions(Struct):
    format: TextFormat | None = None
    verbosity: str | None = None


class ToolDeclaration(Struct):
    """A declared tool: flat `{type:"function", name, parameters…}`, the chat-style nested `function:{…}` that
    Obsidian Copilot sends here, a `namespace` with member `tools`, or another type (see app.translate.inbound)."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: msgspec.Raw = msgspec.Raw()  # absent: empty (msgspec cannot take `Raw | None`)
    strict: bool | None = None
    function: FunctionDefinition | None = None
    tools: list[ToolDeclaration] | None = None


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
    tools: list[ToolDeclaration] | None = None
    tool_choice: str | ChatToolChoice | None = None
    # Refused with a clear 400 (stateless service; one output only).
    previous_response_id: str | None = None
    messages: msgspec.Raw = msgspec.Raw()  # any JSON: refused when present
    n: int | None = None
    background: bool | None = None
    conversation: msgspec.Raw = msgspec.Raw()
    prompt: msgspec.Raw = msgspec.Raw()


# ---- the response object -----------------------------------------------------------------------------------


class OutputText(Struct):
    text: str
    type: Literal["output_text"] = "output_text"
    annotations: list[object] = msgspec.field(default_factory=list)
    logprobs: list[object] = msgspec.field(default_factory=list)


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


class FunctionCallOutput(Struct):
    """A `function_call` output item: the model called a client tool; `arguments` is a JSON string."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: str
    type: Literal["function_call"] = "function_call"
    namespace: str | UnsetType = UNSET


OutputItem = MessageOutput | ReasoningOutput | FunctionCallOutput


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
    name: str | UnsetType = UNSET
    schema: msgspec.Raw | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class TextEcho(Struct):
    format: TextFormatEcho = msgspec.field(default_factory=TextFormatEcho)


class FunctionToolEcho(Struct, tag="function", tag_field="type"):
    """A tool the model was offered, as the Responses API lists it in `response.tools`."""

    name: str
    description: str | None
    parameters: msgspec.Raw
    strict: bool | None = None


class NamespaceToolEcho(Struct, tag="namespace", tag_field="type"):
    name: str
    description: str | None
    tools: list[FunctionToolEcho]


ToolEcho = FunctionToolEcho | NamespaceToolEcho


class ToolChoiceEcho(Struct, tag="function", tag_field="type"):
    name: str


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
    tool_choice: str | ToolChoiceEcho = "none"
    tools: list[ToolEcho] = msgspec.field(default_factory=list)
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
    logprobs: list[object] = msgspec.field(default_factory=list)


class OutputTextDone(ResponseEvent, tag="response.output_text.done"):
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[object] = msgspec.field(default_factory=list)


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


class FunctionCallArgumentsDelta(ResponseEvent, tag="response.function_call_arguments.delta"):
    item_id: str
    output_index: int
    delta: str


class FunctionCallArgumentsDone(ResponseEvent, tag="response.function_call_arguments.done"):
    item_id: str
    output_index: int
    arguments: str
    name: str


class ErrorEvent(ResponseEvent, tag="error"):
    code: str | None
    message: str
    param: str | None = None
