"""Wire shapes of the Responses API subset codex calls: the request it POSTs and the SSE events it parses.

Requests are decoded leniently (codex adds fields between versions; unknown ones are ignored) into a flat,
test-friendly record. Events are encoded from Structs whose field names are exactly what codex 0.169.0's
parser reads (`codex-rs` `ResponsesStreamEvent`): `type`, `response`, `item`, `delta`, `output_index`,
`content_index`, `summary_index`, `item_id`.
"""

from __future__ import annotations

import msgspec

from app.offline_model.replies import Usage, word_count


class _Part(msgspec.Struct):
    type: str = ""
    text: str | None = None


class _RawItem(msgspec.Struct):
    type: str = "message"
    role: str | None = None
    content: list[_Part] | str | None = None
    name: str | None = None
    arguments: str | None = None
    call_id: str | None = None
    output: str | list[_Part] | None = None
    summary: list[_Part] | None = None


class _RawTool(msgspec.Struct):
    type: str = ""
    name: str | None = None


class ReasoningParams(msgspec.Struct, frozen=True):
    """The request's `reasoning` object (`effort`, `summary`), as codex sent it."""

    effort: str | None = None
    summary: str | None = None


class _RawRequest(msgspec.Struct):
    model: str = ""
    instructions: str | None = None
    input: list[_RawItem] = msgspec.field(default_factory=list)
    tools: list[_RawTool] = msgspec.field(default_factory=list)
    reasoning: ReasoningParams | None = None
    stream: bool = False


class InputItem(msgspec.Struct, frozen=True, kw_only=True):
    """One `input` item, flattened: messages keep role + joined text parts; tool items keep name/args/call_id/output."""

    type: str
    role: str | None = None
    text: str = ""
    name: str | None = None
    arguments: str | None = None
    call_id: str | None = None
    output: str | None = None


class RecordedRequest(msgspec.Struct, kw_only=True):
    """Everything codex sent in one `POST /v1/responses`, plus what the offline model answered.

    Mutable on purpose: `outcome` moves from `pending` to `completed` / `failed` / `http_error` / `disconnected` /
    `cancelled` (codex went away) / `stopped` (server shut down) as the response ends.
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
    reply: str = ""
    reply_text: str = ""
    deltas: list[str] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    outcome: str = "pending"

    @property
    def last_user_text(self) -> str:
        """Text of the last `user` message (what the echo repeats), or "" if there is none."""
        for item in reversed(self.input):
            if item.type == "message" and item.role == "user":
                return item.text
        return ""

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


def decode_request(index: int, body: bytes, headers: list[tuple[str, str]]) -> RecordedRequest:
    """Decode a Responses request body; raises `msgspec.DecodeError` / `ValidationError` on a malformed one."""
    raw = _request_decoder.decode(body)
    items = [
        InputItem(
            type=i.type,
            role=i.role,
            text=_text_of(i.content) or _text_of(i.summary),
            name=i.name,
            arguments=i.arguments,
            call_id=i.call_id,
            output=None if i.output is None else _text_of(i.output),
        )
        for i in raw.input
    ]
    return RecordedRequest(
        index=index,
        model=raw.model,
        instructions=raw.instructions,
        input=items,
        tools=[t.name or t.type for t in raw.tools],
        reasoning=raw.reasoning,
        stream=raw.stream,
        raw=body,
        headers=headers,
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
