"""OpenAI tool declarations and `tool_choice` → Codex `dynamicTools` (the one place this mapping lives).

Accepted declarations: chat `tools: [{type:"function", function:{name, description, parameters, strict}}]`,
legacy chat `functions: [{name, …}]`, responses `tools: [{type:"function", name, …}]`, the chat-style nested
form on /v1/responses (Obsidian Copilot sends it), and `{type:"namespace", name, description, tools:[…]}`
(Codex CLI declares one) → a Codex namespace. A missing description becomes "" and missing parameters an empty
object schema, because `dynamicTools` requires both. Codex offers client tools only as functions: the other
OpenAI types (web_search, file_search, code_interpreter, computer_use, local_shell, mcp, custom/freeform,
image_generation…) are left out, and the response's `tools` lists only what the model was offered
(docs/responses.md, "Tools").

`tool_choice`: `auto` offers the tools; `none` offers none; `required` and a named function cannot be forced
inside Codex, so the model is told to call (only that) tool and app.translate.outbound.contract turns a reply
without the call into an error. `strict` is echoed but not enforced by Codex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from app.codex import protocol as p
from app.openai.chat import ChatTool, ChatToolChoice, FunctionDefinition, NamedFunction
from app.openai.responses import FunctionToolEcho, NamespaceToolEcho, ToolChoiceEcho, ToolDeclaration, ToolEcho
from app.translate.plan import RequestInvalid, ToolChoiceMode

NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
# Namespaces Codex reserves for its own tools (app-server-protocol.md §6).
RESERVED_NAMESPACES = frozenset({"functions", "multi_tool_use", "web", "browser", "python", "container", "terminal"})
EMPTY_PARAMETERS = msgspec.Raw(b'{"type":"object","properties":{}}')
_OBJECT = msgspec.json.Decoder(dict[str, object])


class ToolSet(msgspec.Struct, frozen=True):
    """The client's tools as Codex takes them, as the response echoes them, and their callable names."""

    dynamic: tuple[p.DynamicTool, ...] = ()
    echo: tuple[ToolEcho, ...] = ()
    functions: frozenset[str] = frozenset()  # every callable name (namespace members included)
    left_out: tuple[str, ...] = ()  # declared types Codex cannot offer (see the module doc)

    def only(self, name: str) -> ToolSet:
        """The same set reduced to the one function `name` (tool_choice naming it)."""
        dynamic: list[p.DynamicTool] = []
        echo: list[ToolEcho] = []
        for tool, shown in zip(self.dynamic, self.echo, strict=True):
            if isinstance(tool, p.DynamicFunctionTool) and tool.name == name:
                dynamic.append(tool)
                echo.append(shown)
            elif isinstance(tool, p.DynamicNamespaceTool) and isinstance(shown, NamespaceToolEcho):
                members = [(t, e) for t, e in zip(tool.tools, shown.tools, strict=True) if t.name == name]
                if members:
                    dynamic.append(p.DynamicNamespaceTool(tool.name, tool.description, [t for t, _ in members]))
                    echo.append(NamespaceToolEcho(shown.name, shown.description, [e for _, e in members]))
        return ToolSet(tuple(dynamic), tuple(echo), frozenset({name}), self.left_out)


class ToolChoice(msgspec.Struct, frozen=True):
    mode: ToolChoiceMode
    name: str | None = None
    echo: str | ToolChoiceEcho = "auto"


def _check_name(name: str | None, param: str) -> str:
    if name is None or not NAME.fullmatch(name):
        raise RequestInvalid(f"tool names must match ^[a-zA-Z0-9_-]{{1,128}}$; received {name!r}", param)
    return name


def _parameters(raw: msgspec.Raw, param: str) -> msgspec.Raw:
    if not raw or bytes(raw).strip() == b"null":
        return EMPTY_PARAMETERS
    try:
        _OBJECT.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise RequestInvalid("tool parameters must be a JSON Schema object", param) from None
    return raw


def _function(
    name: str | None, description: str | None, parameters: msgspec.Raw, strict: bool | None, param: str
) -> tuple[p.DynamicFunctionTool, FunctionToolEcho]:
    checked = _check_name(name, f"{param}.name")
    schema = _parameters(parameters, f"{param}.parameters")
    return (
        p.DynamicFunctionTool(name=checked, description=description or "", input_schema=schema),
        FunctionToolEcho(name=checked, description=description, parameters=schema, strict=strict),
    )


class _Builder:
    def __init__(self) -> None:
        self.dynamic: list[p.DynamicTool] = []
        self.echo: list[ToolEcho] = []
        self.names: set[str] = set()
        self.left_out: list[str] = []

    def add_function(self, fn: FunctionDefinition, param: str) -> None:
        tool, echo = _function(fn.name, fn.description, fn.parameters, fn.strict, param)
        self._claim(tool.name, f"{param}.name")
        self.dynamic.append(tool)
        self.echo.append(echo)

    def add_namespace(self, decl: ToolDeclaration, param: str) -> None:
        name = _check_name(decl.name, f"{param}.name")
        if name in RESERVED_NAMESPACES or name == p.CLIENT_NAMESPACE:
            raise RequestInvalid(f"namespace {name!r} is reserved by Codex; rename it", f"{param}.name")
        members: list[p.DynamicFunctionTool] = []
        shown: list[FunctionToolEcho] = []
        for j, member in enumerate(decl.tools or []):
            where = f"{param}.tools[{j}]"
            if member.type != "function":
                raise RequestInvalid("a namespace may contain only function tools", f"{where}.type")
            fn = member.function
            tool, echo = (
                _function(fn.name, fn.description, fn.parameters, fn.strict, f"{where}.function")
                if fn is not None
                else _function(member.name, member.description, member.parameters, member.strict, where)
            )
            self._claim(tool.name, f"{where}.name")
            members.append(tool)
            shown.append(echo)
        if not members:
            return  # nothing to offer (Codex would refuse an empty namespace)
        self.dynamic.append(p.DynamicNamespaceTool(name=name, description=decl.description or "", tools=members))
        self.echo.append(NamespaceToolEcho(name=name, description=decl.description, tools=shown))

    def _claim(self, name: str, param: str) -> None:
        if name in self.names:
            raise RequestInvalid(f"tool {name!r} is declared twice", param)
        self.names.add(name)

    def build(self) -> ToolSet:
        return ToolSet(tuple(self.dynamic), tuple(self.echo), frozenset(self.names), tuple(self.left_out))


def chat_tools(tools: Sequence[ChatTool] | None, functions: Sequence[FunctionDefinition] | None) -> ToolSet:
    """`tools` (and the legacy `functions`) of a chat request."""
    b = _Builder()
    for i, tool in enumerate(tools or []):
        if tool.type != "function":
            # Chat has no echo of what was offered, so leaving a tool out would be silent: refuse it.
            raise RequestInvalid(
                f"tools[{i}] of type {tool.type!r} is not supported: Codex offers client tools only as functions",
                f"tools[{i}].type",
            )
        if tool.function is None:
            raise RequestInvalid("a function tool needs its `function` object", f"tools[{i}].function")
        b.add_function(tool.function, f"tools[{i}].function")
    for i, fn in enumerate(functions or []):
        b.add_function(fn, f"functions[{i}]")
    return b.build()


def responses_tools(tools: Sequence[ToolDeclaration] | None) -> ToolSet:
    """`tools` of a Responses request: flat or chat-style function tools, namespaces; other types left out (not
    refused: Codex CLI always declares `web_search`), named in the `x-codex-tools-left-out` header and absent from
    the response's `tools`."""
    b = _Builder()
    for i, decl in enumerate(tools or []):
        where = f"tools[{i}]"
        if decl.type == "function":
            if decl.function is not None:
                b.add_function(decl.function, f"{where}.function")
            else:
                b.add_function(
                    FunctionDefinition(decl.name or "", decl.description, decl.parameters, decl.strict), where
                )
        elif decl.type == "namespace":
            b.add_namespace(decl, where)
        else:
            b.left_out.append(decl.type)
    return b.build()


def tool_choice(choice: str | ChatToolChoice | NamedFunction | None, tools: ToolSet, param: str) -> ToolChoice:
    """Validate `tool_choice` (or legacy `function_call`) against the declared tools."""
    if choice is None:
        return ToolChoice("auto" if tools.functions else "none", echo="auto" if tools.functions else "none")
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise RequestInvalid(f"{param} must be auto, none, required or a function; received {choice!r}", param)
        if choice == "required" and not tools.functions:
            raise RequestInvalid(f"{param} is 'required' but no function tools were declared", param)
        return ToolChoice(choice, echo=choice)  # type: ignore[arg-type]
    if isinstance(choice, NamedFunction):  # legacy `function_call: {name}`
        name, name_param = choice.name, f"{param}.name"
    else:
        if choice.type != "function":
            raise RequestInvalid(f"{param} of type {choice.type!r} is not supported; name a function", f"{param}.type")
        if choice.function is not None:
            name, name_param = choice.function.name, f"{param}.function.name"
        else:
            name, name_param = choice.name, f"{param}.name"
    if name is None or name not in tools.functions:
        raise RequestInvalid(f"{param} names {name!r}, which is not a declared function tool", name_param)
    return ToolChoice("function", name, echo=ToolChoiceEcho(name=name))


def instruction(choice: ToolChoice) -> str | None:
    """What the model is told when a call is required (Codex has no switch to force one)."""
    if choice.mode == "required":
        return "In this response you must call at least one of the provided tools; do not answer in text only."
    if choice.mode == "function":
        return f"In this response you must call the tool `{choice.name}`; do not answer in text only."
    return None
