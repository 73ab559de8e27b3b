"""Responses API requests → `TurnPlan`: input items (messages, function calls and their outputs) in order."""

from __future__ import annotations

from app.openai import responses as r
from app.translate.inbound.checks import (
    ResolverFn,
    check_effort,
    check_n,
    check_positive,
    check_summary,
    message_content,
    plain_text,
    require_model,
    resolve_model,
)
from app.translate.inbound.history import CallParam, Transcript
from app.translate.inbound.structured import responses_format
from app.translate.inbound.tools import responses_tools, tool_choice
from app.translate.inbound.turn import build_turn, offered
from app.translate.inbound.xml_history import XmlHistory
from app.translate.plan import OutputMode, RequestInvalid, TurnPlan

RESPONSE_ROLES = ("user", "assistant", "system", "developer")


def _transcript(
    items: str | list[r.InputItem],
    ignore_system: bool,
    instructions: str | None,
    *,
    fetch: bool = False,
    xml: XmlHistory | None = None,
) -> Transcript:
    transcript = Transcript(ignore_system=ignore_system, input_param="input")
    if instructions:
        transcript.system(instructions)
    if isinstance(items, str):
        transcript.user(items, ())
        return transcript
    folded = -1
    for i, item in enumerate(items):
        if i == folded:
            continue
        where = f"input[{i}]"
        if item.type == "reasoning":
            # The model's own earlier reasoning, echoed back by stateless clients (Codex CLI). It is not replayed:
            # without its encrypted content the model backend rejects a foreign reasoning id (store=false).
            continue
        if item.type == "function_call":
            params = CallParam(item=where, id=f"{where}.call_id", arguments=f"{where}.arguments")
            transcript.call(item.call_id, item.name or "", item.arguments or "", item.namespace, params)
        elif item.type == "function_call_output":
            output = message_content(item.output, f"{where}.output", images=True, fetch=fetch)
            transcript.result(item.call_id, output.text, output.images, f"{where}.call_id", output.remote)
        elif item.type == "message":
            if item.role not in RESPONSE_ROLES:
                raise RequestInvalid(
                    f"unsupported role {item.role!r}; supported roles are: {', '.join(RESPONSE_ROLES)}",
                    f"{where}.role",
                )
            content = message_content(item.content, f"{where}.content", images=item.role == "user", fetch=fetch)
            if item.role in ("system", "developer"):
                transcript.system(content.text)
            elif item.role == "user":
                transcript.user(content.text, content.images, content.remote)
            elif xml is not None and _folds(xml, transcript, items, i, content.text):
                folded = i + 1
            elif xml is not None and i > 0 and items[i - 1].type == "function_call":
                transcript.assistant(xml.without_blocks(content.text))  # our own output echoed: calls, then blocks
            else:
                transcript.assistant(content.text)
        else:
            raise RequestInvalid(f"unsupported input item type {item.type!r}", f"{where}.type")
    return transcript


def _folds(xml: XmlHistory, transcript: Transcript, items: list[r.InputItem], i: int, text: str) -> bool:
    """An assistant message with `<use_tool>` blocks followed by Copilot's textual results (obsidian-xml)."""
    if i + 1 >= len(items):
        return False
    nxt = items[i + 1]
    results = plain_text(nxt.content) if nxt.type == "message" and nxt.role == "user" else None
    return results is not None and xml.fold(transcript, i, text, results, f"input[{i + 1}].content")


def plan_responses(
    req: r.ResponsesRequest,
    resolver: ResolverFn,
    *,
    ignore_client_system_prompt: bool,
    output_mode: OutputMode = "openai-json",
    fetch_images: bool = False,
) -> TurnPlan:
    if req.messages:
        raise RequestInvalid("messages is not supported for /v1/responses; send the conversation as input", "messages")
    check_n(req.n)
    model = require_model(req.model)
    if req.input is None or (isinstance(req.input, list) and not req.input):
        raise RequestInvalid("input is required (a string or a non-empty array of items)", "input")
    if req.previous_response_id is not None:
        raise RequestInvalid(
            "previous_response_id is not supported: this service is stateless; send the whole conversation as input",
            "previous_response_id",
        )
    for name, value in (("background", req.background), ("conversation", req.conversation), ("prompt", req.prompt)):
        if value:
            raise RequestInvalid(f"{name} is not supported by this server", name)
    tools = responses_tools(req.tools)
    choice = tool_choice(req.tool_choice, tools, "tool_choice")
    structured = responses_format(req.text.format if req.text else None)
    resolved = resolve_model(model, resolver)
    effort = check_effort(req.reasoning.effort if req.reasoning else None, "reasoning.effort")
    summary = check_summary(req.reasoning.summary if req.reasoning else None)
    check_positive(req.max_output_tokens, "max_output_tokens")
    parallel = req.parallel_tool_calls is not False
    shown = offered(tools, choice)
    xml = XmlHistory(tools) if output_mode == "obsidian-xml" else None
    transcript = _transcript(req.input, ignore_client_system_prompt, req.instructions, fetch=fetch_images, xml=xml)
    turn, contract = build_turn(
        transcript,
        resolved,
        effort=effort,
        summary=summary,
        tools=shown,
        choice=choice,
        structured=structured,
        parallel_tool_calls=parallel,
    )
    return TurnPlan(
        turn=turn,
        requested_model=model,
        stream=bool(req.stream),
        contract=contract,
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        metadata=req.metadata or {},
        effort=effort,
        summary=summary,
        user=req.user,
        tools_echo=shown.echo,
        tools_left_out=tools.left_out,
        tool_choice_echo=choice.echo,
        parallel_tool_calls=parallel and bool(shown.dynamic),  # echoed as in effect: false when nothing is offered
        text_format_echo=structured.echo,
        output_mode=output_mode,
        remote_images=tuple(transcript.remote_images),
    )
