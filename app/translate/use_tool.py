"""Obsidian Copilot's `<use_tool>` text format, both directions (pure; the format is documented in docs/chat.md).

Copilot's autonomous agent finds tool calls in the assistant's *text*: each call is one block

    <use_tool>
    <name>localSearch</name>
    <query>piano practice</query>
    <salientTerms>["piano", "practice"]</salientTerms>
    </use_tool>

with one element per argument named after the parameter. Copilot reads a parameter's text verbatim (trimmed):
JSON arrays/objects are parsed as JSON, `<item>` children form an array, nested elements an object, anything else
is a string; it decodes no XML entities. The older `<args>{json}</args>` form (one element holding the whole JSON
object) is read too. Copilot then runs the tools and sends the results back as the next *user* message, one
`Tool '<name>' result: <output>` paragraph per call, in call order, joined by a blank line.

Rendering (`render_block`): strings verbatim, other JSON values as compact JSON. A value that contains `</` or
`<use_tool` could close its element or the block early, or look like a second block, so only such a value is
XML-escaped (`&lt;` `&gt;` `&amp;`); parsing undoes exactly that (a value without a raw `<` that contains `&lt;/`
or `&lt;use_tool`). Arguments that are not a JSON object, or whose keys are not XML names, are rendered as one
`<args>` element holding the JSON text.
"""

from __future__ import annotations

import re

import msgspec

BLOCK = re.compile(r"<use_tool>(.*?)</use_tool>", re.DOTALL)
NAME = re.compile(r"<name>(.*?)</name>", re.DOTALL)
ELEMENT = re.compile(r"<([A-Za-z_][A-Za-z0-9_.-]*)>(.*?)</\1>", re.DOTALL)
ITEM = re.compile(r"<item>(.*?)</item>", re.DOTALL)
XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
WHOLE_ARGS = ("args", "arguments")  # Copilot's older form: one element with the JSON object
RESULT_HEAD = "Tool '{}' result: "
SCALAR_KINDS = frozenset({"number", "integer", "boolean", "null"})
_ENCODER = msgspec.json.Encoder()
_ANY = msgspec.json.Decoder()


class Block(msgspec.Struct, frozen=True):
    """One parsed `<use_tool>` block: the tool name and its arguments as JSON text."""

    name: str
    arguments: str


class Parsed(msgspec.Struct, frozen=True):
    prose: str  # the message text outside the blocks
    blocks: tuple[Block, ...]


# ---- rendering ---------------------------------------------------------------------------------------------


def render_block(name: str, arguments: str) -> str:
    """A complete `<use_tool>` block for one structured call (`arguments`: the JSON text the model wrote)."""
    try:
        args = _ANY.decode(arguments or "{}")
    except msgspec.DecodeError:
        args = None
    lines = ["<use_tool>", f"<name>{name}</name>"]
    if isinstance(args, dict) and all(isinstance(k, str) and XML_NAME.fullmatch(k) for k in args):
        lines += [f"<{key}>{_text(value)}</{key}>" for key, value in args.items()]
    elif arguments and arguments.strip() not in ("", "{}"):
        lines.append(f"<args>{_escape_if_needed(arguments)}</args>")
    lines.append("</use_tool>")
    return "\n".join(lines)


def _text(value: object) -> str:
    text = value if isinstance(value, str) else _ENCODER.encode(value).decode()
    return _escape_if_needed(text)


def _escape_if_needed(text: str) -> str:
    if "</" not in text and "<use_tool" not in text:
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- parsing -------------------------------------------------------------------------------------------------


def parse(text: str, kinds: dict[str, dict[str, str]] | None = None) -> Parsed | None:
    """The blocks in an assistant message, or None when it has none or one without a name.

    `kinds` maps tool → parameter → JSON Schema type, so `<epoch>0</epoch>` becomes the number the tool declared
    (Copilot itself would pass the string "0"); undeclared parameters follow Copilot's rules."""
    if "<use_tool>" not in text:
        return None
    blocks: list[Block] = []
    for match in BLOCK.finditer(text):
        body = match.group(1)
        name_match = NAME.search(body)
        if name_match is None or not name_match.group(1).strip():
            return None
        name = name_match.group(1).strip()
        rest = body[: name_match.start()] + body[name_match.end() :]
        params = (kinds or {}).get(name, {})
        blocks.append(Block(name, _arguments(rest, params)))
    if not blocks:
        return None
    prose = BLOCK.sub("", text).strip()
    return Parsed(prose=prose, blocks=tuple(blocks))


def _arguments(body: str, kinds: dict[str, str]) -> str:
    elements = [(m.group(1), m.group(2)) for m in ELEMENT.finditer(body)]
    if len(elements) == 1 and elements[0][0] in WHOLE_ARGS and elements[0][0] not in kinds:
        whole = _value(elements[0][1], "object")
        if isinstance(whole, dict):
            return _ENCODER.encode(whole).decode()
    args = {key: _value(raw, kinds.get(key)) for key, raw in elements}
    return _ENCODER.encode(args).decode()


def _value(raw: str, kind: str | None) -> object:
    text = raw.strip()
    # render_block escaped it (its tags are text, not structure): no raw `<`, and the escaped form of what it escapes
    escaped = "<" not in text and ("&lt;/" in text or "&lt;use_tool" in text)
    if escaped:
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if not text:
        return [] if kind == "array" else {} if kind == "object" else ""
    if kind == "string":
        return text
    if not escaped and "<" in text:
        if items := ITEM.findall(text):
            return [_value(item, None) for item in items]
        if nested := ELEMENT.findall(text):
            return {key: _value(inner, None) for key, inner in nested}
    if text[0] in "[{" or kind in SCALAR_KINDS:
        try:
            decoded = _ANY.decode(text)
        except msgspec.DecodeError:
            return text
        structured = isinstance(decoded, list | dict)
        if structured if text[0] in "[{" else not isinstance(decoded, str):
            return decoded
    return text


def split_results(names: list[str], text: str) -> list[str] | None:
    """Copilot's textual results for the calls `names` (in order), or None when `text` is not exactly that."""
    if not names or not text.startswith(RESULT_HEAD.format(names[0])):
        return None
    results: list[str] = []
    start = len(RESULT_HEAD.format(names[0]))
    for name in names[1:]:
        head = "\n\n" + RESULT_HEAD.format(name)
        end = text.find(head, start)
        if end < 0:
            return None
        results.append(text[start:end])
        start = end + len(head)
    results.append(text[start:])
    return results
