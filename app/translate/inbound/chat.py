"""Chat completions and legacy completions → `TurnPlan`, validated in the reference's order."""

from __future__ import annotations

from app.openai import chat as c
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
from app.translate.inbound.structured import Structured, chat_format
from app.translate.inbound.tools import ToolChoice, ToolSet, chat_tools, tool_choice
from app.translate.inbound.turn import build_turn, offered
from app.translate.inbound.xml_history import XmlHistory
from app.translate.plan import OutputMode, RequestInvalid, TurnPlan

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _transcript(
    messages: list[c.ChatMessage], ignore_system: bool, *, fetch: bool = False, xml: XmlHistory | None = None
) -> Transcript:
    """Messages in order → typed history: assistant tool calls and the tool/function results that answer them.

    With `xml` (obsidian-xml mode), an assistant message with `<use_tool>` blocks and the user message holding
    their textual results become calls and results (app.translate.inbound.xml_history)."""
    transcript = Transcript(ignore_system=ignore_system, input_param="messages")
    folded = -1
    for i, msg in enumerate(messages):
        if i == folded:
            continue
        where = f"messages[{i}]"
        if msg.role not in CHAT_ROLES:
            raise RequestInvalid(
                f"unsupported role {msg.role!r}; supported roles are: {', '.join(CHAT_ROLES)}", f"{where}.role"
            )
        images = msg.role in ("user", "tool", "function")
        content = message_content(msg.content, f"{where}.content", images=images, fetch=fetch)
        if msg.role in ("system", "developer"):
            transcript.system(content.text)
        elif msg.role == "user":
            transcript.user(content.text, content.images, content.remote)
        elif msg.role == "assistant":
            if xml is not None and not msg.tool_calls and msg.function_call is None and i + 1 < len(messages):
                nxt = messages[i + 1]
                results = plain_text(nxt.content) if nxt.role == "user" else None
                if results is not None and xml.fold(transcript, i, content.text, results, f"messages[{i + 1}].content"):
                    folded = i + 1
                    continue
            echoed = xml is not None and bool(msg.tool_calls or msg.function_call)
            transcript.assistant(xml.without_blocks(content.text) if xml is not None and echoed else content.text)
            for j, call in enumerate(msg.tool_calls or []):
                at = f"{where}.tool_calls[{j}]"
                params = CallParam(item=at, id=f"{at}.id", arguments=f"{at}.function.arguments")
                transcript.call(call.id, call.function.name, call.function.arguments, None, params)
            if msg.function_call is not None:  # legacy: one call without an id; the next `function` message answers
                at = f"{where}.function_call"
                params = CallParam(item=at, id=at, arguments=f"{at}.arguments")
                fn = msg.function_call
                transcript.call(f"call_legacy_{i}", fn.name, fn.arguments, None, params)
        elif msg.role == "tool":
            transcript.result(msg.tool_call_id, content.text, content.images, f"{where}.tool_call_id", content.remote)
        else:  # legacy `function` result, matched by name
            call_id = transcript.call_id_for(msg.name or "")
            if call_id is None:
                raise RequestInvalid(f"no earlier function_call named {msg.name!r} for this result", f"{where}.name")
            transcript.result(call_id, content.text, content.images, f"{where}.name", content.remote)
    return transcript


def plan_chat(
    req: c.ChatCompletionRequest,
    resolver: ResolverFn,
    *,
    ignore_client_system_prompt: bool,
    default_stream: bool,
    output_mode: OutputMode = "openai-json",
    fetch_images: bool = False,
) -> TurnPlan:
    """Validate in the reference's order (model, messages, n, unsupported knobs, model id) and build the turn.

    `output_mode` obsidian-xml also reads `<use_tool>` history back as tool calls; `fetch_images` accepts http(s)
    image URLs (fetched before the turn opens)."""
    model = require_model(req.model)
    if not req.messages:
        raise RequestInvalid("messages must be a non-empty array", "messages", code="invalid_request_error")
    check_n(req.n)
    if req.logprobs or req.top_logprobs is not None:
        raise RequestInvalid("logprobs is not supported by this server", "logprobs" if req.logprobs else "top_logprobs")
    tools = chat_tools(req.tools, req.functions)
    if req.tool_choice is not None:
        choice = tool_choice(req.tool_choice, tools, "tool_choice")
    else:
        choice = tool_choice(req.function_call, tools, "function_call")
    structured = chat_format(req.response_format)
    resolved = resolve_model(model, resolver)
    effort = check_effort(req.reasoning_effort, "reasoning_effort") or check_effort(
        req.reasoning.effort if req.reasoning else None, "reasoning.effort"
    )
    summary = check_summary(req.reasoning.summary if req.reasoning else None)
    check_positive(req.max_tokens, "max_tokens")
    check_positive(req.max_completion_tokens, "max_completion_tokens")
    parallel = req.parallel_tool_calls is not False
    xml = XmlHistory(tools) if output_mode == "obsidian-xml" else None
    transcript = _transcript(req.messages, ignore_client_system_prompt, fetch=fetch_images, xml=xml)
    turn, contract = build_turn(
        transcript,
        resolved,
        effort=effort,
        summary=summary,
        tools=offered(tools, choice),
        choice=choice,
        structured=structured,
        parallel_tool_calls=parallel,
    )
    return TurnPlan(
        turn=turn,
        requested_model=model,
        stream=default_stream if req.stream is None else req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        contract=contract,
        max_output_tokens=req.max_completion_tokens or req.max_tokens,
        metadata=req.metadata or {},
        effort=effort,
        summary=summary,
        user=req.user,
        parallel_tool_calls=parallel,
        output_mode=output_mode,
        remote_images=tuple(transcript.remote_images),
    )


def plan_completion(req: c.CompletionRequest, resolver: ResolverFn, *, default_stream: bool) -> TurnPlan:
    model = require_model(req.model)
    if req.prompt is None or (isinstance(req.prompt, list) and not req.prompt):
        raise RequestInvalid("prompt is required", "prompt", code="invalid_request_error")
    check_n(req.n)
    if req.logprobs is not None:
        raise RequestInvalid("logprobs is not supported by this server", "logprobs")
    if req.echo:
        raise RequestInvalid("echo is not supported by this server", "echo")
    if req.suffix:
        raise RequestInvalid("suffix is not supported by this server", "suffix")
    resolved = resolve_model(model, resolver)
    check_positive(req.max_tokens, "max_tokens")
    prompt = req.prompt if isinstance(req.prompt, str) else "\n".join(req.prompt)
    transcript = Transcript(ignore_system=True, input_param="prompt")
    transcript.user(prompt, ())
    turn, contract = build_turn(
        transcript,
        resolved,
        effort=None,
        summary=None,
        tools=ToolSet(),
        choice=ToolChoice("none", echo="none"),
        structured=Structured(),
        parallel_tool_calls=True,
    )
    return TurnPlan(
        turn=turn,
        requested_model=model,
        stream=default_stream if req.stream is None else req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        contract=contract,
        max_output_tokens=req.max_tokens,
        user=req.user,
    )
