"""The slice of the codex app-server v2 JSON-RPC protocol this proxy speaks (codex-cli 0.169.0).

Field names follow the checked-in schema (`app/codex/schema/`, camelCase on the wire). Messages are decoded in
two steps: the envelope first (`params`/`result` kept as `msgspec.Raw`), then the params by method from
`NOTIFICATION_TYPES`, so an unknown or changed notification never breaks the reader.
"""

from __future__ import annotations

from typing import Any, Literal

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
    params: Any = UNSET


class OutNotification(Struct, omit_defaults=True):
    method: str
    params: Any = UNSET


class OutResult(Struct):
    id: int | str
    result: Any


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


class InitializeCapabilities(_Camel):
    experimental_api: bool = True
    opt_out_notification_methods: list[str] = msgspec.field(default_factory=list)


class InitializeParams(_Camel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities


class InitializeResult(_Camel):
    user_agent: str = ""
    codex_home: str = ""


# ---- threads and turns -------------------------------------------------------------------------------------


class ThreadStartParams(_Camel):
    ephemeral: bool = True
    model: str | UnsetType = UNSET
    cwd: str | UnsetType = UNSET
    approval_policy: str = "never"
    sandbox: str = "read-only"
    developer_instructions: str | UnsetType = UNSET
    base_instructions: str | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    service_name: str | UnsetType = UNSET


class ThreadRef(_Camel):
    id: str


class ThreadStartResult(_Camel):
    thread: ThreadRef
    model: str = ""


class ContentPart(Struct, omit_defaults=True):
    """A Responses-API content part inside an injected history message (snake_case, raw item format)."""

    type: Literal["input_text", "output_text", "input_image"]
    text: str | None = None
    image_url: str | None = None


class MessageItem(Struct):
    """A raw Responses `message` item for `thread/inject_items` (history replay)."""

    role: Literal["user", "assistant"]
    content: list[ContentPart]
    type: Literal["message"] = "message"


class ThreadInjectItemsParams(_Camel):
    thread_id: str
    items: list[MessageItem]


class TextInput(Struct):
    """`UserInput` text variant; `text_elements` is snake_case on the wire."""

    text: str
    type: Literal["text"] = "text"
    text_elements: list[Any] = msgspec.field(default_factory=list)


class ImageInput(Struct):
    """`UserInput` image variant: a data URL (app-server rejects remote http(s) URLs)."""

    url: str
    type: Literal["image"] = "image"


class TurnStartParams(_Camel):
    thread_id: str
    input: list[TextInput | ImageInput]
    effort: str | UnsetType = UNSET
    summary: str | UnsetType = UNSET


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


Notification = (
    AgentMessageDelta
    | ReasoningSummaryDelta
    | TurnCompleted
    | TurnStarted
    | TokenUsageUpdated
    | ErrorNotification
    | ThreadStatusChanged
    | ItemNotification
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

DECLINE = {"decision": "decline"}
SERVER_REQUEST_ANSWERS: dict[str, Any] = {
    "item/commandExecution/requestApproval": DECLINE,
    "item/fileChange/requestApproval": DECLINE,
    "item/permissions/requestApproval": {"permissions": {}, "scope": "turn"},
    "item/tool/requestUserInput": {"answers": {}},
    "mcpServer/elicitation/request": {"action": "decline", "content": None, "_meta": None},
    "execCommandApproval": {"decision": "abort"},
    "applyPatchApproval": {"decision": "abort"},
}

ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
ENCODER = msgspec.json.Encoder()


_PARAM_DECODERS = {method: msgspec.json.Decoder(typ) for method, typ in NOTIFICATION_TYPES.items()}


def decode_params(method: str, raw: Raw) -> Struct | None:
    """Typed params for a known notification, or None for methods we do not consume."""
    decoder = _PARAM_DECODERS.get(method)
    return None if decoder is None else decoder.decode(raw)
