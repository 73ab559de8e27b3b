"""Request bounds checked before a request reaches codex: JSON nesting depth, item, part and tool counts, text size.

Why (issue 13): the body limit alone let one key holder hurt everybody. A 10 MB body of 300,000 one-character
messages drove codex to 2.2 GB while it ingested the history, and 100,000 nested arrays made the JSON decoder
recurse into a 500. Each bound has a setting (README configuration table) and answers a 400 that names the
parameter, before any worker is leased, so codex never sees the request.

Two entry points, called by the generation route around its decode step:

- `check_raw(raw, settings)` on the raw body, before msgspec decodes it (the decoder recurses per level): the
  depth, then the item and tool counts from a shallow decode that leaves the items as raw JSON;
- `check_request(body, settings)` on the decoded wire struct. It reads fields by name (`messages`, `input`,
  `prompt`, `tools`, `functions`, `instructions`), so it does not depend on how the request structs are typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from app.errors import ApiError
from app.settings import Settings

_KEEP_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_OPEN_CLOSE = bytes.maketrans(b"{}", b"[]")
_CHUNK = 64
_PAIR_PASSES = 8

ITEM_FIELDS = ("messages", "input", "prompt")
TOOL_FIELDS = ("tools", "functions")
# Image and file payloads are bounded by PROXY_MAX_BODY_BYTES, not by the text budget.
_BINARY_FIELDS = frozenset({"image_url", "file_data"})


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when arrays/objects in `raw` nest deeper than `limit`: no recursion, only C-speed bytes operations
    plus one chunked scan. Measured on the 2-core CI machine: the 10 MB 300,000-message body ≈ 35 ms, 16 MB of `[`
    ≈ 0.1 s; the worst shape found (12.8 MB of structures nested just below the limit) ≈ 0.8 s.

    1. Escaped backslashes and quotes are dropped, then everything but quotes and brackets; `{}` become `[]`.
    2. Adjacent `""` pairs are dropped: two quote toggles in a row leave every other character's inside/outside
       parity unchanged, and most strings hold no bracket, so this leaves only strings that contain brackets.
    3. The remaining strings are cut out (split on `"`, keep the even parts): brackets inside strings never count.
    4. Each pass deleting `[]` lowers the maximum depth of balanced brackets by exactly one (every deepest `[`
       is directly followed by its `]`), so a few passes shrink ordinary JSON to almost nothing.
    5. What is left is scanned in chunks; a chunk whose `[` count cannot lift the depth past the limit costs two
       `count` calls, only a chunk that might is walked byte by byte.

    Exact for valid JSON; malformed input may be judged too deep, which is a 400 either way.
    """
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    compact = text.translate(_OPEN_CLOSE, _KEEP_QUOTES_AND_BRACKETS).replace(b'""', b"")
    brackets = b"".join(compact.split(b'"')[::2])
    passes = 0
    while passes < min(_PAIR_PASSES, limit) and brackets:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, passes = shorter, passes + 1
    limit -= passes
    depth = 0
    for start in range(0, len(brackets), _CHUNK):
        chunk = brackets[start : start + _CHUNK]
        opens = chunk.count(b"[")
        if depth + opens > limit:
            for byte in chunk:
                depth += 1 if byte == 0x5B else -1
                if depth > limit:
                    return True
        else:
            depth += opens - (len(chunk) - opens)
    return False


class _Counts(msgspec.Struct):
    """The arrays a count limit applies to, left undecoded: counting 300,000 items this way costs a fraction of
    building 300,000 message structs, so the hostile body is refused before the real decode runs."""

    messages: list[msgspec.Raw] | None = None
    input: list[msgspec.Raw] | str | None = None
    prompt: list[msgspec.Raw] | str | None = None
    tools: list[msgspec.Raw] | None = None
    functions: list[msgspec.Raw] | None = None


_decode_counts = msgspec.json.Decoder(_Counts).decode


def check_raw(raw: bytes, settings: Settings) -> None:
    """Before the real decode: 400 when the body nests deeper than PROXY_MAX_JSON_DEPTH, or when an item or tool
    array is over its limit (the same 400s `check_request` gives)."""
    if json_depth_exceeds(raw, settings.max_json_depth):
        raise ApiError(
            400,
            f"The request body nests arrays/objects deeper than {settings.max_json_depth} levels.",
            code="json_too_deep",
        )
    try:
        counts = _decode_counts(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return  # malformed or mistyped: the real decoder answers with the precise 400
    _check_counts(counts, settings)


def check_request(body: object, settings: Settings) -> None:
    """400 naming the parameter when items, content parts, tools or text exceed their settings."""
    _check_counts(body, settings)
    for name in ITEM_FIELDS:
        items = getattr(body, name, None)
        if isinstance(items, list):
            _check_parts(name, items, settings)
    budget = _TextBudget(settings.max_text_bytes)
    for name in (*ITEM_FIELDS, "instructions"):
        budget.add(name, getattr(body, name, None))
    for name in TOOL_FIELDS:
        declared = getattr(body, name, None)
        if isinstance(declared, list):
            budget.add_encoded(name, declared)


def _check_counts(body: object, settings: Settings) -> None:
    for name in ITEM_FIELDS:
        items = getattr(body, name, None)
        if isinstance(items, list):
            _check_length(name, items, settings.max_input_items)
    tools = 0
    for name in TOOL_FIELDS:
        declared = getattr(body, name, None)
        if isinstance(declared, list):
            tools += len(declared)
            if tools > settings.max_tools:
                raise ApiError(
                    400,
                    f"Invalid '{name}': at most {settings.max_tools} tools are accepted per request, got {tools}.",
                    param=name,
                    code="too_many_tools",
                )


def _check_length(param: str, items: list[Any], limit: int) -> None:
    if len(items) > limit:
        raise ApiError(
            400,
            f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
            f"but got an array with length {len(items)} instead.",
            param=param,
            code="array_above_max_length",
        )


def _check_parts(name: str, items: list[Any], settings: Settings) -> None:
    """Content parts: at most PROXY_MAX_INPUT_ITEMS in one message, PROXY_MAX_CONTENT_PARTS in the request."""
    total = 0
    for index, item in enumerate(items):
        content = getattr(item, "content", None)
        if isinstance(item, dict):
            content = item.get("content")
        if isinstance(content, list):
            _check_length(f"{name}[{index}].content", content, settings.max_input_items)
            total += len(content)
            if total > settings.max_content_parts:
                raise ApiError(
                    400,
                    f"Invalid '{name}': more than {settings.max_content_parts} content parts in one request.",
                    param=name,
                    code="too_many_content_parts",
                )


class _TextBudget:
    """Sums the UTF-8 bytes of every string under the walked values; 400 as soon as the sum passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def add(self, param: str, value: object) -> None:
        self.used += _text_bytes(value)
        self._check(param)

    def add_encoded(self, param: str, value: object) -> None:
        # Tool declarations carry free-form JSON schemas: their encoded size is the honest (and C-speed) measure.
        self.used += len(msgspec.json.encode(value))
        self._check(param)

    def _check(self, param: str) -> None:
        if self.used > self.limit:
            raise ApiError(
                400,
                f"Invalid '{param}': the request's text exceeds {self.limit} bytes in total.",
                param=param,
                code="input_too_large",
            )


def _text_bytes(value: object) -> int:
    """Bytes of text in a decoded value: strings count, image/file payload fields do not. Depth is already bounded."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, msgspec.Struct):
        fields: Iterable[str] = value.__struct_fields__
        return sum(_text_bytes(getattr(value, f)) for f in fields if f not in _BINARY_FIELDS)
    if isinstance(value, dict):
        return sum(_text_bytes(v) for k, v in value.items() if k not in _BINARY_FIELDS)
    if isinstance(value, list | tuple):
        return sum(_text_bytes(v) for v in value)
    return 0
