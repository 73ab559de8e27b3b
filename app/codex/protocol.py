"""The slice of the codex app-server v2 JSON-RPC protocol this proxy speaks (codex-cli 0.169.0).

Field names follow the checked-in schema (`app/codex/schema/`, camelCase on the wire). Messages are decoded in
two steps: the envelope first (`params`/`result` kept as `msgspec.Raw`), then the params by method from
`NOTIFICATION_TYPES`, so an unknown or changed notification never breaks the reader.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

# JSON-RPC error codes used by app-server and by us.
OVERLOADED = -32001
METHOD_NOT_FOUND = -32601
INVALID_REQUEST = -32600


class RpcError(Struct, omit_defaults=True):
    code: int
    message: str
    data: Raw = Raw()


class Envelope(Struct, omit_defaults=True):
    """Any incoming line. id+method: server request; id only: response; method only: notification."""

    id: int | str | None = None
    method: str | None = None
    params: Raw = Raw()
    result: Raw = Raw()
    error: RpcError | None = None


class OutRequest(Struct, omit_defaults=True):
    id: int
    method: str
    params: object = UNSET  # a params Struct (encoded as is)


class OutNotification(Struct, omit_defaults=True):
    method: str
    params: object = UNSET


class OutResult(Struct):
    id: int | str
    result: object  # an answer Struct


class OutError(Struct):
    id: int | str
    error: RpcError


# ---- handshake ---------------------------------------------------------------------------------------------


class _Camel(Struct, rename="camel", omit_defaults=True):
    """Base for protocol params: camelCase names, optional fields left out when unset."""


class ClientInfo(_Camel):
    name: str
    version: str
    title: str | UnsetType = UNSET


class InitializeCapabilities(Struct, rename="camel"):
    """Sent in full (no omitted defaults): `experimentalApi: true` must reach codex, dynamicTools needs it."""

    experimental_api: bool = True
    opt_out_notification_methods: list[str] = msgspec.field(default_factory=list)


class InitializeParams(_Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities


class InitializeResult(_Camel):
    user_agent: str = ""
    codex_home: str = ""


# ---- threads and turns -------------------------------------------------------------------------------------


class DynamicFunctionTool(_Camel, tag="function", tag_field="type"):
    """A client function tool offered to the model (`thread/start.dynamicTools`); `inputSchema` is the client's
    JSON Schema, passed through byte for byte."""

    name: str
    description: str
    input_schema: Raw


class DynamicNamespaceTool(_Camel, tag="namespace", tag_field="type"):
    """A named group of client function tools (Codex CLI declares one); calls carry the namespace back."""

    name: str
    description: str
    tools: list[DynamicFunctionTool]


DynamicTool = DynamicFunctionTool | DynamicNamespaceTool

# Top-level dynamic tool names codex 0.169.0 drops without an error: `exec_command` and `shell_command` are
# reserved ("skipping external tool with reserved name"), `request_user_input` is its own built-in ("skipping
# duplicate external tool"). Inside a namespace they are accepted, so such client tools are offered in this
# namespace and their calls reported without it (app.codex.turn); tests/offline_model/test_codex_reserved_names.py
# pins it.
RESERVED_TOOL_NAMES = frozenset({"exec_command", "shell_command", "request_user_input"})
CLIENT_NAMESPACE = "client_tools"


class ThreadStartParams(_Camel):
    ephemeral: bool = True
    model: str | UnsetType = UNSET
    cwd: str | UnsetType = UNSET
    approval_policy: str = "never"
    sandbox: str = "read-only"
    developer_instructions: str | UnsetType = UNSET
    base_instructions: str | UnsetType = UNSET
    config: dict[str, str] | UnsetType = UNSET
    service_name: str | UnsetType = UNSET
    dynamic_tools: list[DynamicTool] | UnsetType = UNSET
    # Raw Responses items on the event stream: the only signal that marks the end of one model response, which is
    # how a batch of parallel tool calls is known to be complete (app-server-protocol.md §11).
    experimental_raw_events: bool | UnsetType = UNSET


class ThreadRef(_Camel):
    id: str


class ThreadStartResult(_Camel):
    thread: ThreadRef
    model: str = ""


class ContentPart(Struct, omit_defaults=True):
    """A Responses-API content part inside an injected history item (snake_case, raw item format)."""

    type: Literal["input_text", "output_text", "input_image"]
    text: str | None = None
    image_url: str | None = None


class MessageItem(Struct, tag="message", tag_field="type"):
    """A raw Responses `message` item for `thread/inject_items` (history replay)."""

    role: Literal["user", "assistant", "developer"]
    content: list[ContentPart]


class FunctionCallItem(Struct, omit_defaults=True, tag="function_call", tag_field="type"):
    """A tool call the model made earlier in the conversation (arguments: the JSON text the model wrote)."""

    call_id: str
    name: str
    arguments: str
    namespace: str | UnsetType = UNSET


class FunctionCallOutputItem(Struct, tag="function_call_output", tag_field="type"):
    """The client's result for `call_id`; text, or content parts when the result carries images."""

    call_id: str
    output: str | list[ContentPart]


HistoryItem = MessageItem | FunctionCallItem | FunctionCallOutputItem


class ThreadInjectItemsParams(_Camel):
    thread_id: str
    items: list[HistoryItem]


class TextInput(Struct):
    """`UserInput` text variant; `text_elements` is snake_case on the wire."""

    text: str
    type: Literal["text"] = "text"
    text_elements: list[object] = msgspec.field(default_factory=list)  # always empty: plain text


class ImageInput(Struct):
    """`UserInput` image variant: a data URL (app-server rejects remote http(s) URLs)."""

    url: str
    type: Literal["image"] = "image"


class TurnStartParams(_Camel):
    thread_id: str
    input: list[TextInput | ImageInput]
    effort: str | UnsetType = UNSET
    summary: str | UnsetType = UNSET
    output_schema: Raw | UnsetType = UNSET  # JSON Schema for the final message; codex sends it as `text.format`


class TurnRef(_Camel):
    id: str
    status: str = "inProgress"


class TurnStartResult(_Camel):
    turn: TurnRef


class TurnInterruptParams(_Camel):
    thread_id: str
    turn_id: str


class ThreadUnsubscribeParams(_Camel):
    """Also the params of `thread/delete` (the same single field)."""

    thread_id: str


class ThreadLoadedListParams(_Camel):
    """`thread/loaded/list` — the cheap request the liveness probe sends."""

    limit: int = 1


class ModelListParams(_Camel):
    cursor: str | None = None
    limit: int | None = None
    include_hidden: bool = False


class ModelInfo(_Camel):
    id: str
    model: str = ""
    display_name: str = ""
    hidden: bool = False


class ModelListResult(_Camel):
    data: list[ModelInfo] = msgspec.field(default_factory=list)
    next_cursor: str | None = None


class AccountInfo(_Camel):
    type: str


class AccountReadResult(_Camel):
    account: AccountInfo | None = None
    requires_openai_auth: bool = False


# ---- notifications -----------------------------------------------------------------------------------------


class TurnError(_Camel):
    message: str = ""
    codex_error_info: Raw = Raw()
    additional_details: str | None = None

    def info(self) -> tuple[str | None, int | None]:
        """`codexErrorInfo` is a bare string or `{variant: {httpStatusCode}}`: return (variant, http status)."""
        if not self.codex_error_info:
            return None, None
        value = msgspec.json.decode(self.codex_error_info)
        if isinstance(value, str):
            return value, None
        if isinstance(value, dict) and value:
            name, detail = next(iter(value.items()))
            status = detail.get("httpStatusCode") if isinstance(detail, dict) else None
            return str(name), status if isinstance(status, int) else None
        return None, None


class AgentMessageDelta(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str


class ReasoningSummaryDelta(_Camel):
    thread_id: str
    turn_id: str
    item_id: str
    delta: str
    summary_index: int = 0


class Turn(_Camel):
    id: str
    status: str
    error: TurnError | None = None


class TurnCompleted(_Camel):
    thread_id: str
    turn: Turn


class TurnStarted(_Camel):
    thread_id: str
    turn: Turn


class TokenBreakdown(_Camel):
    total_tokens: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0


class TokenUsage(_Camel):
    total: TokenBreakdown
    last: TokenBreakdown


class TokenUsageUpdated(_Camel):
    thread_id: str
    token_usage: TokenUsage
    turn_id: str = ""


class ErrorNotification(_Camel):
    error: TurnError
    will_retry: bool = False
    thread_id: str = ""
    turn_id: str = ""


class ThreadStatus(_Camel):
    type: str


class ThreadStatusChanged(_Camel):
    thread_id: str
    status: ThreadStatus


class ItemNotification(_Camel):
    """item/started and item/completed: only the thread id and the raw item are needed here."""

    thread_id: str
    item: Raw = Raw()
    turn_id: str = ""


class RawItem(_Camel):
    """A raw Responses output item (`rawResponseItem/completed`). Only function calls are read; every other field
    (large developer messages included) is skipped by the decoder."""

    type: str
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    call_id: str | None = msgspec.field(default=None, name="call_id")


class RawResponseItemCompleted(_Camel):
    thread_id: str
    item: RawItem
    turn_id: str = ""


class RawResponseCompleted(_Camel):
    """One model response finished; `usage` is that response's exact usage."""

    thread_id: str
    turn_id: str = ""
    usage: TokenBreakdown | None = None


Notification = (
    AgentMessageDelta
    | ReasoningSummaryDelta
    | TurnCompleted
    | TurnStarted
    | TokenUsageUpdated
    | ErrorNotification
    | ThreadStatusChanged
    | ItemNotification
    | RawResponseItemCompleted
    | RawResponseCompleted
)

NOTIFICATION_TYPES: dict[str, type[Struct]] = {
    "item/agentMessage/delta": AgentMessageDelta,
    "item/reasoning/summaryTextDelta": ReasoningSummaryDelta,
    "turn/completed": TurnCompleted,
    "turn/started": TurnStarted,
    "thread/tokenUsage/updated": TokenUsageUpdated,
    "error": ErrorNotification,
    "thread/status/changed": ThreadStatusChanged,
    "item/started": ItemNotification,
    "item/completed": ItemNotification,
    "rawResponseItem/completed": RawResponseItemCompleted,
    "rawResponse/completed": RawResponseCompleted,
}

# Notifications we never use and ask app-server not to send (exact names; no wildcards in the protocol).
NOISY_NOTIFICATIONS = [
    "item/commandExecution/outputDelta",
    "item/fileChange/outputDelta",
    "item/plan/delta",
    "item/reasoning/textDelta",
    "turn/diff/updated",
    "turn/plan/updated",
    "mcpServer/startupStatus/updated",
    "skills/changed",
    "thread/settings/updated",
    "thread/started",
    "app/list/updated",
]


# ---- server → client requests: what we answer ------------------------------------------------------------


class ThreadScoped(_Camel):
    """The one field every thread-scoped server request carries; enough to route it to its turn."""

    thread_id: str = ""


class ToolCallParams(_Camel):
    """`item/tool/call`: codex asks the client to run one of its dynamic tools (arguments already parsed)."""

    thread_id: str
    turn_id: str = ""
    call_id: str = ""
    tool: str = ""
    namespace: str | None = None


# Server requests that go to the turn they belong to (it decides whether and how to answer); every other one is
# answered at once from SERVER_REQUEST_ANSWERS, and so is a routed one whose thread has no live turn.
ROUTED_SERVER_REQUESTS = frozenset({"item/tool/call"})


class Decision(Struct):
    decision: str


class PermissionsAnswer(Struct):
    permissions: dict[str, str] = msgspec.field(default_factory=dict)  # none granted
    scope: str = "turn"


class UserInputAnswer(Struct):
    answers: dict[str, str] = msgspec.field(default_factory=dict)


class ElicitationAnswer(Struct):
    action: str = "decline"
    content: None = None
    meta: None = msgspec.field(default=None, name="_meta")


DECLINE = Decision("decline")
SERVER_REQUEST_ANSWERS: dict[str, Struct] = {
    "item/commandExecution/requestApproval": DECLINE,
    "item/fileChange/requestApproval": DECLINE,
    "item/permissions/requestApproval": PermissionsAnswer(),
    "item/tool/requestUserInput": UserInputAnswer(),
    "mcpServer/elicitation/request": ElicitationAnswer(),
    "execCommandApproval": Decision("abort"),
    "applyPatchApproval": Decision("abort"),
}

ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
ENCODER = msgspec.json.Encoder()


_PARAM_DECODERS = {method: msgspec.json.Decoder(typ) for method, typ in NOTIFICATION_TYPES.items()}


def decode_params(method: str, raw: Raw) -> Struct | None:
    """Typed params for a known notification, or None for methods we do not consume."""
    decoder = _PARAM_DECODERS.get(method)
    return None if decoder is None else decoder.decode(raw)
