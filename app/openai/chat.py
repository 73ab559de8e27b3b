"""OpenAI Chat Completions wire structs (snake_case), requests in and bodies/chunks out.

Request structs are permissive about fields we ignore (unknown keys are dropped, knobs Codex cannot honour are
typed only so that a wrong type is still a clear 400); semantic checks live in app.translate.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType


class ImageURL(Struct):
    url: str
    detail: str | None = None


class ContentPart(Struct):
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None


class ChatMessage(Struct):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: Any = None
    function_call: Any = None


class StreamOptions(Struct):
    include_usage: bool | None = None


class ReasoningOptions(Struct):
    effort: str | None = None
    summary: str | None = None


class ResponseFormat(Struct):
    type: str
    json_schema: Any = None


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
    # Refused until client tools land (a clear 400 naming the parameter, never silently ignored).
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


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
    content: str
    role: Literal["assistant"] = "assistant"
    refusal: None = None


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
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


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
