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
    tool_choice_echo: str | ToolChoiceEcho = "none"
    parallel_tool_calls: bool = True
    text_format_echo: TextFormatEcho = msgspec.field(default_factory=TextFormatEcho)
