"""OpenAI Chat Completions wire structs (snake_case), requests in and bodies/chunks out.

Request structs are permissive about fields we ignore (unknown keys are dropped, knobs Codex cannot honour are
typed only so that a wrong type is still a clear 400); semantic checks live in app.translate.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType


class ImageURL(Struct):
    url: str
    detail: str | None = None


class ContentPart(Struct):
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None


class FunctionCallPayload(Struct):
    """`{name, arguments}` of a call: arguments are the JSON text the model wrote (a string, per OpenAI)."""

    name: str
    arguments: str = ""


class ChatToolCall(Struct):
    """An assistant message's `tool_calls[]` entry (sent back by the client in the next request)."""

    id: str
    function: FunctionCallPayload
    type: str = "function"


class ChatMessage(Struct):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    function_call: FunctionCallPayload | None = None  # legacy single call (before `tool_calls`)


class FunctionDefinition(Struct):
    """A function the client offers: `parameters` is its JSON Schema, kept as raw JSON and passed through."""

    name: str
    description: str | None = None
    parameters: msgspec.Raw = msgspec.Raw()  # absent: empty (msgspec cannot take `Raw | None`)
    strict: bool | None = None


class ChatTool(Struct):
    """`tools[]`: `{type:"function", function:{…}}`; other types are recognised by `type` (see app.translate)."""

    type: str
    function: FunctionDefinition | None = None
    name: str | None = None


class NamedFunction(Struct):
    name: str


class ChatToolChoice(Struct):
    """`tool_choice` as an object: `{type:"function", function:{name}}` (chat) or `{type:"function", name}`."""

    type: str
    function: NamedFunction | None = None
    name: str | None = None


class JsonSchemaFormat(Struct):
    name: str | None = None
    description: str | None = None
    schema: msgspec.Raw = msgspec.Raw()  # absent: empty (msgspec cannot take `Raw | None`)
    strict: bool | None = None


class StreamOptions(Struct):
    include_usage: bool | None = None


class ReasoningOptions(Struct):
    effort: str | None = None
    summary: str | None = None


class ResponseFormat(Struct):
    type: str
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(Struct):
    model: str | None = None
    messages: list[ChatMessage] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    reasoning_effort: str | None = None
    reasoning: ReasoningOptions | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    # Accepted and ignored: Codex has no such knobs (documented in the README).
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    # Client tools and structured output (app.translate.inbound.tools / .structured).
    tools: list[ChatTool] | None = None
    functions: list[FunctionDefinition] | None = None
    tool_choice: str | ChatToolChoice | None = None
    function_call: str | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # Refused (a clear 400 naming the parameter, never silently ignored).
    logprobs: bool | None = None
    top_logprobs: int | None = None


class CompletionRequest(Struct):
    """Legacy `/v1/completions`: a prompt instead of messages."""

    model: str | None = None
    prompt: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = None
    max_tokens: int | None = None
    user: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: int | None = None
    echo: bool | None = None
    suffix: str | None = None


# ---- responses out -----------------------------------------------------------------------------------------


class PromptTokensDetails(Struct):
    cached_tokens: int = 0


class CompletionTokensDetails(Struct):
    reasoning_tokens: int = 0


class ChatUsage(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class AssistantMessage(Struct):
    content: str | None
    role: Literal["assistant"] = "assistant"
    tool_calls: list[ChatToolCall] | UnsetType = UNSET  # UNSET fields are left out of the JSON
    reasoning_content: str | UnsetType = UNSET
    refusal: None = None


class DeltaFunction(Struct):
    name: str | UnsetType = UNSET
    arguments: str = ""


class DeltaToolCall(Struct):
    """A streamed tool-call fragment: `id`, `type` and `function.name` on the first one, argument text after."""

    index: int
    function: DeltaFunction
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET


class Choice(Struct):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    object_: Literal["chat.completion"] = msgspec.field(default="chat.completion", name="object")
    system_fingerprint: None = None


class Delta(Struct, omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[DeltaToolCall] | UnsetType = UNSET


class ChunkChoice(Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(Struct):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None
    object_: Literal["chat.completion.chunk"] = msgspec.field(default="chat.completion.chunk", name="object")
    system_fingerprint: None = None


class TextChoice(Struct):
    index: int
    text: str
    finish_reason: str | None
    logprobs: None = None


class TextCompletion(Struct):
    id: str
    created: int
    model: str
    choices: list[TextChoice]
    usage: ChatUsage | None = None
    object_: Literal["text_completion"] = msgspec.field(default="text_completion", name="object")
