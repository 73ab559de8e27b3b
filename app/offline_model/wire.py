"""Wire shapes of the Responses API subset codex calls: the request it POSTs and the SSE events it parses.

Requests are decoded leniently (codex adds fields between versions; unknown ones are ignored) into a flat,
test-friendly record. Events are encoded from Structs whose field names are exactly what codex 0.169.0's
parser reads (`codex-rs` `ResponsesStreamEvent`): `type`, `response`, `item`, `delta`, `output_index`,
`content_index`, `summary_index`, `item_id`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.offline_model.replies import FunctionCall, Usage, word_count


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None
    image_url: str | None = None


class _RawItem(msgspec.Struct):
    type: str = "message"
    id: str | None = None
    role: str | None = None
    status: str | None = None
    content: list[_Part] | str | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    call_id: str | None = None
    output: str | list[_Part] | None = None
    summary: list[_Part] | None = None


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the request's `tools`, as codex declared it to the model.

    `tools` holds a `namespace` tool's members (codex puts client dynamic tools declared in a namespace there);
    `declaration` is the entry's whole JSON object, for fields this struct does not name.
    """

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    declaration: dict[str, Any] = msgspec.field(default_factory=dict)


class _RawTool(msgspec.Struct):
    type: str = ""
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ReasoningParams(msgspec.Struct, frozen=True):
    """The request's `reasoning` object (`effort`, `summary`), as codex sent it."""

    effort: str | None = None
    summary: str | None = None


class TextFormat(msgspec.Struct, frozen=True, kw_only=True):
    """The request's `text.format`. Codex 0.169.0 sends `turn/start.outputSchema` as
    `{type:"json_schema", name:"codex_output_schema", strict:true, schema:<the schema unchanged>}`."""

    type: str = "text"
    name: str | None = None
    schema: dict[str, Any] | bool | None = None
    strict: bool | None = None


class _TextParams(msgspec.Struct):
    format: TextFormat | None = None


class _RawRequest(msgspec.Struct):
    model: str = ""
    instructions: str | None = None
    input: list[_RawItem] | str = msgspec.field(default_factory=list)
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: _TextParams | None = None
    reasoning: ReasoningParams | None = None
    stream: bool = False


class ContentPart(msgspec.Struct, frozen=True):
    """One content part of a message, a reasoning summary or a `function_call_output` array (`type`, `text`,
    `image_url`), kept in order so a test can tell separate parts apart (codex packs several into one message)."""

    type: str
    text: str | None = None
    image_url: str | None = None


class InputItem(msgspec.Struct, frozen=True, kw_only=True):
    """One `input` item, flattened: messages keep role + joined text parts; tool items keep name/args/call_id/output.

    `text` joins a message's text parts (or a reasoning item's summary); `output` joins a `function_call_output`'s
    text whether codex sent a string or a content-part array; `parts` keeps the individual parts of either.
    """

    type: str
    role: str | None = None
    text: str = ""
    name: str | None = None
    arguments: str | None = None
    call_id: str | None = None
    output: str | None = None
    id: str | None = None
    status: str | None = None
    namespace: str | None = None
    parts: list[ContentPart] = msgspec.field(default_factory=list)


class RecordedRequest(msgspec.Struct, kw_only=True):
    """Everything codex sent in one `POST /v1/responses`, plus what the offline model answered.

    Mutable on purpose: `outcome` moves from `pending` to `completed` / `failed` / `http_error` / `disconnected` /
    `cancelled` (codex went away) / `stopped` (server shut down) as the response ends. `tools` lists the top-level
    tool names (kept for older tests); `tool_specs` holds the full declarations.
    """

    index: int
    model: str
    instructions: str | None
    input: list[InputItem]
    tools: list[str]
    reasoning: ReasoningParams | None
    stream: bool
    raw: bytes
    headers: list[tuple[str, str]]
    tool_specs: list[ToolSpec] = msgspec.field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text_format: TextFormat | None = None
    raw_size: int = 0
    reply: str = ""
    rule: str | None = None
    reply_text: str = ""
    deltas: list[str] = msgspec.field(default_factory=list)
    calls: list[FunctionCall] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    outcome: str = "pending"

    @property
    def last_user_text(self) -> str:
        """Text of the last `user` message (what the echo repeats), or "" if there is none."""
        for item in reversed(self.input):
            if item.type == "message" and item.role == "user":
                return item.text
        return ""

    @property
    def response_id(self) -> str:
        """The `response.id` the model answers with (app-server's `rawResponse/completed.responseId`)."""
        return f"resp_offline_{self.index}"

    @property
    def output_schema(self) -> dict[str, Any] | bool | None:
        """The JSON Schema the final answer must satisfy (`text.format.schema` of a `json_schema` format), or None."""
        fmt = self.text_format
        return fmt.schema if fmt is not None and fmt.type == "json_schema" else None

    @property
    def functions(self) -> dict[str, ToolSpec]:
        """Every callable function tool by the name the model calls it with: top-level `function` tools by `name`,
        a `namespace` tool's members by `<namespace>.<name>` (see docs/offline-model.md)."""
        out: dict[str, ToolSpec] = {}
        for spec in self.tool_specs:
            if spec.type == "function" and spec.name:
                out[spec.name] = spec
            elif spec.type == "namespace" and spec.name:
                for member in spec.tools:
                    if member.type == "function" and member.name:
                        out[f"{spec.name}.{member.name}"] = member
        return out

    def texts(self, role: str) -> list[str]:
        """Every text part of the `role` messages (e.g. "developer"), in input order."""
        return [
            p.text
            for item in self.input
            if item.type == "message" and item.role == role
            for p in item.parts
            if p.text is not None
        ]

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


_request_decoder = msgspec.json.Decoder(_RawRequest)


def _text_of(value: list[_Part] | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "".join(p.text or "" for p in value)


def _parts_of(value: list[_Part] | str | None) -> list[ContentPart]:
    if not isinstance(value, list):
        return []
    return [ContentPart(p.type, p.text, p.image_url) for p in value]


def _spec(declaration: dict[str, Any]) -> ToolSpec:
    tool = msgspec.convert(declaration, _RawTool)
    members = declaration.get("tools")
    return ToolSpec(
        type=tool.type,
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,
        strict=tool.strict,
        tools=[_spec(m) for m in members if isinstance(m, dict)] if isinstance(members, list) else [],
        declaration=declaration,
    )


def _item(i: _RawItem) -> InputItem:
    return InputItem(
        type=i.type,
        role=i.role,
        text=_text_of(i.content) or _text_of(i.summary),
        name=i.name,
        arguments=i.arguments,
        call_id=i.call_id,
        output=None if i.output is None else _text_of(i.output),
        id=i.id,
        status=i.status,
        namespace=i.namespace,
        parts=_parts_of(i.content) or _parts_of(i.summary) or _parts_of(i.output),
    )


def decode_request(index: int, body: bytes, headers: list[tuple[str, str]]) -> RecordedRequest:
    """Decode a Responses request body; raises `msgspec.DecodeError` / `ValidationError` on a malformed one.

    A string `input` (allowed by the Responses API, never sent by codex) is one user message.
    """
    raw = _request_decoder.decode(body)
    if isinstance(raw.input, str):
        items = [InputItem(type="message", role="user", text=raw.input, parts=[ContentPart("input_text", raw.input)])]
    else:
        items = [_item(i) for i in raw.input]
    specs = [_spec(t) for t in raw.tools]
    return RecordedRequest(
        index=index,
        model=raw.model,
        instructions=raw.instructions,
        input=items,
        tools=[t.name or t.type for t in specs],
        reasoning=raw.reasoning,
        stream=raw.stream,
        raw=body,
        headers=headers,
        tool_specs=specs,
        tool_choice=raw.tool_choice,
        parallel_tool_calls=raw.parallel_tool_calls,
        text_format=raw.text.format if raw.text is not None else None,
        raw_size=len(body),
    )


def input_word_count(request: RecordedRequest) -> int:
    """Words across all input text (instructions, message parts, call arguments and outputs): the usage basis."""
    total = word_count(request.instructions or "")
    for item in request.input:
        total += word_count(item.text) + word_count(item.arguments or "") + word_count(item.output or "")
    return total


# ---------------------------------------------------------------------------------------------------------------------
# SSE events


class OutputPart(msgspec.Struct, frozen=True):
    type: str
    text: str


class MessageItem(msgspec.Struct, frozen=True, tag="message", tag_field="type"):
    id: str
    role: str = "assistant"
    status: str = "completed"
    content: list[OutputPart] = msgspec.field(default_factory=list)


class ReasoningItem(msgspec.Struct, frozen=True, tag="reasoning", tag_field="type"):
    id: str
    summary: list[OutputPart] = msgspec.field(default_factory=list)


class FunctionCallItem(msgspec.Struct, frozen=True, tag="function_call", tag_field="type"):
    id: str
    call_id: str
    name: str
    arguments: str
    status: str = "completed"
    namespace: str | msgspec.UnsetType = msgspec.UNSET


OutputItem = MessageItem | ReasoningItem | FunctionCallItem


class InputTokensDetails(msgspec.Struct, frozen=True):
    cached_tokens: int


class OutputTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int


class WireUsage(msgspec.Struct, frozen=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> WireUsage:
        return cls(
            input_tokens=usage.input_tokens,
            input_tokens_details=InputTokensDetails(usage.cached_tokens),
            output_tokens=usage.output_tokens,
            output_tokens_details=OutputTokensDetails(usage.reasoning_tokens),
            total_tokens=usage.total_tokens,
        )


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str
    type: str | None = None
    param: str | None = None


class ResponseObject(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    object: str = "response"
    status: str = "in_progress"
    model: str = "offline"
    usage: WireUsage | None = None
    error: ErrorBody | None = None


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """One SSE frame's `data`; `type` is repeated in the `event:` line."""

    type: str
    response: ResponseObject | None = None
    output_index: int | None = None
    item: OutputItem | None = None
    item_id: str | None = None
    content_index: int | None = None
    summary_index: int | None = None
    part: OutputPart | None = None
    delta: str | None = None
    code: str | None = None
    message: str | None = None
    sequence_number: int | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: ErrorBody


class ModelEntry(msgspec.Struct, frozen=True):
    id: str
    object: str = "model"
    owned_by: str = "offline"


class ModelList(msgspec.Struct, frozen=True):
    data: list[ModelEntry]
    object: str = "list"


_encoder = msgspec.json.Encoder()


def sse_frame(event: Event) -> bytes:
    """`event: <type>\\ndata: <json>\\n\\n`: the framing codex's SSE parser accepts."""
    return b"event: " + event.type.encode() + b"\ndata: " + _encoder.encode(event) + b"\n\n"


def encode(value: msgspec.Struct) -> bytes:
    return _encoder.encode(value)
