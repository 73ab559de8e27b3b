"""The last step both APIs share: transcript + tools + structured output → `TurnRequest` and `OutputContract`."""

from __future__ import annotations

from app.codex.turn import TurnRequest
from app.model_ids import ResolvedModel
from app.translate.inbound.history import Transcript
from app.translate.inbound.structured import Structured
from app.translate.inbound.tools import ToolChoice, ToolSet, instruction
from app.translate.plan import OutputContract


def offered(tools: ToolSet, choice: ToolChoice) -> ToolSet:
    """What the model is offered: nothing for `none`, only the named function for a named choice."""
    if choice.mode == "none":
        return ToolSet(left_out=tools.left_out)
    if choice.mode == "function" and choice.name is not None:
        return tools.only(choice.name)
    return tools


def build_turn(
    transcript: Transcript,
    resolved: ResolvedModel,
    *,
    effort: str | None,
    summary: str | None,
    tools: ToolSet,
    choice: ToolChoice,
    structured: Structured,
    parallel_tool_calls: bool,
) -> tuple[TurnRequest, OutputContract]:
    turn_input = transcript.turn_input()
    parts = (turn_input.developer_instructions, instruction(choice), structured.instruction)
    developer = "\n\n".join(text for text in parts if text)
    turn = TurnRequest(
        input_text=turn_input.text,
        input_images=turn_input.images,
        history=turn_input.history,
        model=resolved.model,
        effort=effort or resolved.effort,
        summary=summary,
        developer_instructions=developer or None,
        tools=tools.dynamic,
        parallel_tool_calls=parallel_tool_calls,
        output_schema=structured.output_schema,
    )
    contract = OutputContract(
        tool_choice=choice.mode if tools.dynamic else "none",
        required_tool=choice.name,
        schema=structured.output_schema,
        schema_param=structured.param,
        json_object=structured.json_object,
    )
    return turn, contract
