"""A validated request: what Codex must do (`TurnRequest`) plus what the reply must look like and echo."""

from __future__ import annotations

from typing import Literal

import msgspec

from app.codex.turn import TurnRequest
from app.openai.responses import TextFormatEcho, ToolChoiceEcho, ToolEcho


class RequestInvalid(Exception):
    """A 400 for a specific parameter (or 404 for an unknown model); the API layer adds the envelope."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


ToolChoiceMode = Literal["auto", "none", "required", "function"]
OutputMode = Literal["openai-json", "obsidian-xml"]


class RemoteImage(msgspec.Struct, frozen=True):
    """An http(s) image URL in the request, with the parameter it came from (named when fetching it fails)."""

    url: str
    param: str


class ToolStreamPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Stop-after-tools: the older implementation's controls (PROXY_STOP_AFTER_TOOLS*, PROXY_TOOL_BLOCK_MAX,
    PROXY_SUPPRESS_TAIL_AFTER_TOOLS), applied to the structured calls Codex reports
    (app.translate.outbound.tool_stream)."""

    stop_after_tools: bool = False
    mode: Literal["burst", "first"] = "burst"
    grace_ms: int = 300
    max_calls: int = 0  # 0 = no cap
    suppress_tail: bool = False

    @property
    def enforced(self) -> bool:
        """As before: on with PROXY_STOP_AFTER_TOOLS, a block cap, or mode `first`."""
        return self.stop_after_tools or self.max_calls > 0 or self.mode == "first"


class OutputContract(msgspec.Struct, frozen=True, kw_only=True):
    """What the finished output must satisfy before it is returned as a success (app.translate.outbound.contract).

    `tool_choice` `required` / `function` cannot be forced inside Codex: the model is told to call a tool and a
    reply without the call is an error, never a text answer passed off as compliance. `schema` (json_schema) and
    `json_object` are checked on the final text with a JSON Schema validator."""

    tool_choice: ToolChoiceMode = "auto"
    required_tool: str | None = None
    schema: msgspec.Raw | None = None
    schema_param: str = "response_format"
    json_object: bool = False

    @property
    def holds_text(self) -> bool:
        """Stream text only once it is known to be part of a valid answer (a call is required)."""
        return self.tool_choice in ("required", "function")


class TurnPlan(msgspec.Struct, frozen=True, kw_only=True):
    turn: TurnRequest
    requested_model: str
    stream: bool
    include_usage: bool = False
    contract: OutputContract = msgspec.field(default_factory=OutputContract)
    # Echoed in the reply (Responses objects repeat the request's settings).
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    effort: str | None = None
    summary: str | None = None
    user: str | None = None
    tools_echo: tuple[ToolEcho, ...] = ()
    tools_left_out: tuple[str, ...] = ()  # declared tool types Codex cannot offer (x-codex-tools-left-out)
    tool_choice_echo: str | ToolChoiceEcho = "none"
    parallel_tool_calls: bool = True
    text_format_echo: TextFormatEcho = msgspec.field(default_factory=TextFormatEcho)
    # Client compatibility (docs/chat.md).
    output_mode: OutputMode = "openai-json"
    tool_stream: ToolStreamPolicy = msgspec.field(default_factory=ToolStreamPolicy)
    expose_reasoning: bool = True
    remote_images: tuple[RemoteImage, ...] = ()  # fetched and inlined before the turn opens (app.api.images)
