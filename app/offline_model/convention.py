"""The offline model's text convention: how any client drives tool calls, structured output and reasoning.

A client of the proxy cannot call `OfflineModel.script()`, so the model reads what it should do from the request
itself (docs/offline-model.md "Convention" has the exact rules and examples):

- input ending with tool outputs → `<tool-name> returned: <output text>`, one line per output;
- `call <tool-name> <json-arguments>` lines in the last user message → those `function_call`s, in one response;
- an output schema (`text.format` json_schema) → a deterministic JSON instance of it;
- a last user message starting `think: <text>` → the reasoning summary `<text>` before whichever answer.

Pure: a `RecordedRequest` in, a `Reply` (or None: no rule applies, the echo answers) out.
"""

from __future__ import annotations

import json
import re

import msgspec

from app.codex.protocol import CLIENT_NAMESPACE
from app.offline_model.replies import FunctionCall, Reasoning, Reply, Text, ToolCalls
from app.offline_model.schema_instance import UnsupportedSchema, dumps, instance_for
from app.offline_model.wire import InputItem, RecordedRequest

_CALL = re.compile(r"^[ \t]*call[ \t]+(?P<name>\S+)(?:[ \t]+(?P<args>.*?))?[ \t]*$")
_THINK = re.compile(r"^\s*think:[ \t]*(?P<text>[^\n]*)\n?")
_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")
_TOOL_CALLS = ("function_call", "custom_tool_call")
# The proxy's `json_object` mode cannot use a strict output schema, so it tells the model in a developer message
# (app/translate/inbound/structured.py, JSON_OBJECT_INSTRUCTION); the model treats that like text.format json_object.
JSON_OBJECT_MARK = "Answer with one JSON object"


def wants_structured(request: RecordedRequest) -> bool:
    fmt = request.text_format
    if fmt is not None and fmt.type in ("json_schema", "json_object"):
        return True
    return any(JSON_OBJECT_MARK in text for text in request.texts("developer"))


class Rule(msgspec.Struct, frozen=True):
    """The reply a rule chose and the rule's name (recorded as `RecordedRequest.rule`)."""

    name: str
    reply: Reply


def split_think(text: str) -> tuple[str | None, str]:
    """(`<text>` of a leading `think: <text>` line or None, the message without that line)."""
    match = _THINK.match(text)
    if match is None:
        return None, text
    return match.group("text").strip(), text[match.end() :]


def apply(request: RecordedRequest, user_text: str) -> Rule | None:
    """The convention's reply for `request` (`user_text`: its last user message, directives removed), or None."""
    thought, rest = split_think(user_text)
    outputs = trailing_tool_outputs(request.input)
    if outputs:
        if wants_structured(request):
            return _with_thought(thought, *_structured(request))
        lines = [f"{_tool_name(request.input, o)} returned: {o.output or ''}" for o in outputs]
        return _with_thought(thought, "tool_outputs", Text("\n".join(lines)))
    lines = [m for m in (_CALL.match(line) for line in rest.splitlines()) if m is not None]
    if lines:
        return _with_thought(thought, *_calls(request, lines))
    if wants_structured(request):
        return _with_thought(thought, *_structured(request))
    if thought is not None:
        return Rule("think", Reasoning(thought, then=Text(f"echo: {rest.strip() or thought}")))
    return None


def trailing_tool_outputs(items: list[InputItem]) -> list[InputItem]:
    """The tool outputs after the input's last message (what the model is being asked to react to), in order."""
    tail: list[InputItem] = []
    for item in reversed(items):
        if item.type == "message":
            break
        tail.append(item)
    return [i for i in reversed(tail) if i.type in _TOOL_OUTPUTS]


def _tool_name(items: list[InputItem], output: InputItem) -> str:
    """The called tool's name (`<namespace>.<name>` inside a namespace), from the call with the same call_id."""
    for item in items:
        if item.type in _TOOL_CALLS and item.call_id == output.call_id and item.name:
            hidden = item.namespace in (None, CLIENT_NAMESPACE)  # the proxy's namespace is not the client's
            return item.name if hidden else f"{item.namespace}.{item.name}"
    return output.call_id or "unknown_tool"


def _calls(request: RecordedRequest, lines: list[re.Match[str]]) -> tuple[str, Reply]:
    offered = request.functions
    calls: list[FunctionCall] = []
    problems: list[str] = []
    for n, match in enumerate(lines, start=1):
        name, args = match.group("name"), (match.group("args") or "{}")
        if name not in offered and f"{CLIENT_NAMESPACE}.{name}" in offered:
            name = f"{CLIENT_NAMESPACE}.{name}"  # a client tool the proxy offers in its namespace: plain name works
        if name not in offered:
            names = ", ".join(sorted(offered)) or "none"
            problems.append(f"offline model: cannot call {name}: no such tool is offered (offered: {names})")
            continue
        try:
            parsed = json.loads(args)
        except json.JSONDecodeError as exc:
            problems.append(f"offline model: cannot call {name}: arguments are not valid JSON ({exc})")
            continue
        if not isinstance(parsed, dict):
            problems.append(f"offline model: cannot call {name}: arguments must be a JSON object, got {args}")
            continue
        namespace, _, member = name.rpartition(".")
        calls.append(
            FunctionCall(member, args, call_id=f"call_offline_{request.index}_{n}", namespace=namespace or None)
        )
    if problems:
        return "call_error", Text("\n".join(problems))
    return "calls", ToolCalls(calls=calls)


def _structured(request: RecordedRequest) -> tuple[str, Reply]:
    fmt = request.text_format
    if fmt is None or fmt.type == "json_object" or fmt.schema is None:
        return "output_schema", Text("{}")
    try:
        return "output_schema", Text(dumps(instance_for(fmt.schema)))
    except UnsupportedSchema as exc:
        return "schema_error", Text(f"offline model: cannot build an instance of the output schema: {exc}")


def _with_thought(thought: str | None, name: str, reply: Reply) -> Rule:
    if thought is None:
        return Rule(name, reply)
    if isinstance(reply, ToolCalls):
        return Rule(name, ToolCalls(calls=reply.calls, text=reply.text, reasoning=thought))
    return Rule(name, Reasoning(thought, then=reply))
