"""What the offline model answers: scripted replies, usage, and the tiny prompt-directive grammar.

Everything here is pure and deterministic so tests can predict the exact text, deltas and usage
the real codex binary will relay. Replies are frozen msgspec Structs: values, not behaviour; the
server (`server.py`) turns them into HTTP/SSE.
"""

from __future__ import annotations

import re

import msgspec


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token usage the model reports in `response.completed` (codex relays it as `thread/tokenUsage/updated`)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


Headers = tuple[tuple[str, str], ...]


class Echo(msgspec.Struct, frozen=True, kw_only=True):
    """The default reply: `echo: <last user text>` (directive removed), split on word boundaries."""

    chunks: int | None = None
    interval_s: float = 0.0
    first_byte_delay_s: float = 0.0
    headers: Headers = ()  # extra response headers, e.g. `plan_headers(...)`


class Text(msgspec.Struct, frozen=True):
    """A fixed assistant message. `chunks` (joined = `text`) pins the exact deltas; pauses are per delta."""

    text: str
    chunks: list[str] | None = None
    interval_s: float = 0.0
    first_byte_delay_s: float = 0.0
    usage: Usage | None = None
    headers: Headers = ()


class FunctionCall(msgspec.Struct, frozen=True):
    """A `function_call` output item; codex turns it into `item/tool/call` for a client (dynamic) tool.

    `chunks` pins the `response.function_call_arguments.delta` pieces (joined = `arguments`), or with an int splits
    `arguments` into that many pieces by characters, so a test can cut mid-token (default: one delta).
    `namespace` names the namespace tool the function sits in (codex's dynamic-tool `namespace`). `usage` applies
    when the call is the whole reply; inside `ToolCalls` the batch's `usage` counts instead.
    """

    name: str
    arguments: str
    call_id: str = "call_offline_1"
    usage: Usage | None = None
    chunks: list[str] | int | None = None
    namespace: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.chunks, list) and "".join(self.chunks) != self.arguments:
            raise ValueError("FunctionCall.chunks must join to exactly `arguments`")
        if isinstance(self.chunks, int) and self.chunks < 1:
            raise ValueError("FunctionCall.chunks must be >= 1")

    def argument_deltas(self) -> list[str]:
        """The argument deltas to stream; never empty (an empty argument string is one empty delta)."""
        if isinstance(self.chunks, list):
            return list(self.chunks) or [""]
        if isinstance(self.chunks, int) and len(self.arguments) > 1:
            return _group(list(self.arguments), min(self.chunks, len(self.arguments)))
        return [self.arguments]


class ToolCalls(msgspec.Struct, frozen=True, kw_only=True):
    """One model response holding, in this order: an optional reasoning item, an optional message, then `calls`.

    Several calls are parallel calls of one response (codex receives them all before it runs any). The call ids
    must be distinct. `text_chunks` pins the message deltas like `Text.chunks`; `interval_s` pauses before every
    output item after the first. `hold_after=N` stops the stream after its first N output items until
    `OfflineModel.release()`, so a test can observe, without timing, what codex does while the response is still
    streaming. `usage` overrides the computed one.
    """

    calls: list[FunctionCall]
    text: str | None = None
    text_chunks: list[str] | None = None
    reasoning: str | None = None
    interval_s: float = 0.0
    hold_after: int | None = None
    usage: Usage | None = None

    def __post_init__(self) -> None:
        ids = [c.call_id for c in self.calls]
        if len(set(ids)) != len(ids):
            raise ValueError(f"ToolCalls needs distinct call ids, got {ids}")
        if self.text_chunks is not None and "".join(self.text_chunks) != (self.text or ""):
            raise ValueError("ToolCalls.text_chunks must join to exactly `text`")


class Reasoning(msgspec.Struct, frozen=True):
    """A reasoning item with one summary part, streamed before `then` (usage gets reasoning_tokens > 0)."""

    summary: str
    then: Reply = Echo()


class Fail(msgspec.Struct, frozen=True):
    """An HTTP error instead of the stream, with an OpenAI error body `{"error":{type,code,message,param}}`.

    `type` defaults to `code` because codex keys some mappings on `error.type` (e.g. `usage_limit_reached`).
    """

    status: int
    code: str
    message: str = "offline model failure"
    type: str | None = None
    retry_after_s: int | None = None
    headers: Headers = ()


class StreamError(msgspec.Struct, frozen=True):
    """A stream that starts fine (optionally some text) and then fails with `response.failed` or an `error` event."""

    code: str
    message: str = "offline model stream failure"
    after_text: str = ""
    event: str = "response.failed"


class Disconnect(msgspec.Struct, frozen=True):
    """The connection is dropped mid-stream (after `after_text`) without `response.completed`."""

    after_text: str = ""


class Hang(msgspec.Struct, frozen=True):
    """Accept the request and never finish. `after_created` sends 200 + `response.created` first.

    The handler still ends on `OfflineModel.stop()` or when the client goes away.
    """

    after_created: bool = True


Reply = Echo | Text | FunctionCall | ToolCalls | Reasoning | Fail | StreamError | Disconnect | Hang


def plan_headers(
    primary_used_percent: float,
    primary_resets_at: int,
    *,
    primary_window_minutes: int = 300,
    secondary_used_percent: float | None = None,
    secondary_resets_at: int | None = None,
    secondary_window_minutes: int = 10080,
) -> Headers:
    """The ChatGPT backend's rate-limit response headers (5-hour primary, weekly secondary window; reset times in
    epoch seconds). codex 0.169.0 reads them from any provider and reports `account/rateLimits/updated`."""
    headers = [
        ("x-codex-primary-used-percent", f"{primary_used_percent:g}"),
        ("x-codex-primary-window-minutes", str(primary_window_minutes)),
        ("x-codex-primary-reset-at", str(primary_resets_at)),
    ]
    if secondary_used_percent is not None:
        headers += [
            ("x-codex-secondary-used-percent", f"{secondary_used_percent:g}"),
            ("x-codex-secondary-window-minutes", str(secondary_window_minutes)),
            ("x-codex-secondary-reset-at", str(secondary_resets_at or primary_resets_at)),
        ]
    return tuple(headers)


# ---------------------------------------------------------------------------------------------------------------------
# Deterministic text helpers


_TOKEN = re.compile(r"\s*\S+|\s+$")


def word_count(text: str) -> int:
    """The offline model's "tokenizer": whitespace-separated words. Cheap, deterministic, easy to predict in tests."""
    return len(text.split())


def split_text(text: str, n: int | None = None) -> list[str]:
    """Split `text` into deltas on word boundaries (leading whitespace kept on each piece), concatenating back to it.

    With `n`, exactly `n` pieces when the text has at least `n` characters (falling back to character splits when
    there are fewer words than `n`); without it, one piece per word up to 8 pieces.
    """
    if not text:
        return []
    words = _TOKEN.findall(text)
    if "".join(words) != text:  # leading whitespace only text etc.: never lose characters
        words = [text]
    if n is None:
        n = min(len(words), 8)
    n = max(1, n)
    if len(words) >= n:
        return _group(words, n)
    if len(text) >= n:
        return _group(list(text), n)
    return list(text)


def _group(parts: list[str], n: int) -> list[str]:
    size, extra = divmod(len(parts), n)
    out: list[str] = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(parts[start:end]))
        start = end
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Prompt directives: `[[offline key=value ... flag]]` anywhere in the last user message.

_DIRECTIVE = re.compile(r"\s*\[\[offline(?P<body>[^\]]*)\]\]\s*")


class Directive(msgspec.Struct, frozen=True, kw_only=True):
    """Parsed `[[offline ...]]` directive; `clean_text` is the user text with the directive removed."""

    clean_text: str
    options: dict[str, str] = msgspec.field(default_factory=dict)


def parse_directive(text: str) -> Directive | None:
    """Find the first `[[offline ...]]` directive; tokens are `key=value` or bare flags (`hang`, `reasoning`)."""
    match = _DIRECTIVE.search(text)
    if match is None:
        return None
    options: dict[str, str] = {}
    for token in match.group("body").split():
        key, _, value = token.partition("=")
        options[key.strip().lower()] = value.strip()
    before, after = text[: match.start()], text[match.end() :]
    clean = (before + (" " if before and after else "") + after).strip()
    return Directive(clean_text=clean, options=options)


def reply_for_directive(directive: Directive) -> Reply:
    """Map a directive to a reply; unknown keys are ignored so a typo degrades to the plain echo."""
    opts = directive.options
    if "hang" in opts:
        return Hang()
    if "fail" in opts:
        code = opts.get("code") or "offline_failure"
        return Fail(status=int(opts["fail"]), code=code, message=f"offline model: {code}")
    if "stream_error" in opts:
        code = opts["stream_error"] or "server_error"
        return StreamError(code=code, message=f"offline model: {code}")
    if "disconnect" in opts:
        return Disconnect()
    echo = Echo(
        chunks=int(opts["chunks"]) if opts.get("chunks") else None,
        interval_s=int(opts.get("interval_ms") or 0) / 1000,
        first_byte_delay_s=int(opts.get("first_byte_ms") or 0) / 1000,
    )
    if "reasoning" in opts:
        return Reasoning(summary=f"Thinking about: {directive.clean_text}".strip(), then=echo)
    return echo
