"""obsidian-xml history: `<use_tool>` blocks + Copilot's textual results → real tool calls and results.

In obsidian-xml mode the server shows the model's structured calls to Copilot as `<use_tool>` text
(app.translate.outbound.obsidian); Copilot sends that text back as the assistant message and its results as the
next user message (`Tool '<name>' result: …`, app.translate.use_tool). Replaying them as plain text would teach
the model to write XML instead of calling tools, so such a pair becomes what it was: `function_call` items and
their `function_call_output`s (with the assistant's other text kept as a message).

Only a complete pair is converted: every block names a tool the request declares, and the next user message is
exactly the results of those calls in order. Anything else stays the text it is (never a 400: a conversation
from an older client or another mode must still work). A client that keeps the structured calls as well (chat
`tool_calls` next to the blocks, or Responses `function_call` items before the block message, as this server
sends them) has the blocks dropped from the text, so the model does not see each call twice.
"""

from __future__ import annotations

import msgspec

from app.codex import protocol as p
from app.translate.inbound.history import CallParam, Transcript
from app.translate.inbound.tools import ToolSet
from app.translate.use_tool import parse, split_results

_SCHEMA = msgspec.json.Decoder(dict[str, object])


class XmlHistory:
    def __init__(self, tools: ToolSet) -> None:
        self.kinds: dict[str, dict[str, str]] = {}  # tool → parameter → JSON Schema type
        self.namespaces: dict[str, str | None] = {}  # tool → its namespace (None at the top level)
        for tool in tools.dynamic:
            members = tool.tools if isinstance(tool, p.DynamicNamespaceTool) else [tool]
            namespace = tool.name if isinstance(tool, p.DynamicNamespaceTool) else None
            for fn in members:
                self.namespaces[fn.name] = namespace
                self.kinds[fn.name] = _property_types(fn.input_schema)

    def without_blocks(self, text: str) -> str:
        """The text with its `<use_tool>` blocks removed (they repeat structured calls that are in the history)."""
        parsed = parse(text, self.kinds)
        return parsed.prose if parsed is not None else text

    def fold(self, transcript: Transcript, index: int, assistant: str, results: str, results_param: str) -> bool:
        """Add assistant message `index` (with blocks) and the results message after it; False if not a pair."""
        parsed = parse(assistant, self.kinds)
        if parsed is None or any(block.name not in self.namespaces for block in parsed.blocks):
            return False
        outputs = split_results([block.name for block in parsed.blocks], results)
        if outputs is None:
            return False
        transcript.assistant(parsed.prose)
        ids = [f"call_xml_{index}_{j}" for j in range(len(parsed.blocks))]
        where = CallParam(results_param, results_param, results_param)  # never named: ids and JSON are ours
        for call_id, block in zip(ids, parsed.blocks, strict=True):
            transcript.call(call_id, block.name, block.arguments, self.namespaces[block.name], where)
        for call_id, output in zip(ids, outputs, strict=True):
            transcript.result(call_id, output, (), results_param)
        return True


def _property_types(schema: msgspec.Raw) -> dict[str, str]:
    try:
        decoded = _SCHEMA.decode(schema)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}
    props = decoded.get("properties")
    if not isinstance(props, dict):
        return {}
    kinds: dict[str, str] = {}
    for name, spec in props.items():
        if isinstance(name, str) and isinstance(spec, dict) and isinstance(kind := spec.get("type"), str):
            kinds[name] = kind
    return kinds
