"""The one pure bridge between OpenAI wire structs and Codex turns.

Requests: a chat/completions/responses body → `TurnPlan` (a `TurnRequest` plus what the renderer needs), or a
`RequestInvalid` naming the parameter. Output: `TurnEvent`s → chat chunks, Responses events or final bodies.
No I/O here; the HTTP pipeline (app.api.pipeline) drives it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import msgspec

from app.codex.turn import HistoryMessage, TurnFinished, TurnRequest, Usage
from app.model_ids import ResolvedModel
from app.openai import chat as c
from app.openai import responses as r
from app.openai.errors import ErrorDetail

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TEXT_PARTS = ("text", "input_text", "output_text")
IMAGE_PARTS = ("image_url", "input_image")
MEDIA_PARTS = ("input_file", "input_audio", "file")
DATA_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+\Z")

ResolverFn = Callable[[str], ResolvedModel | None]


class RequestInvalid(Exception):
    """A 400 for a specific parameter (or 404 for an unknown model); the API layer adds the envelope."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


class TurnPlan(msgspec.Struct, frozen=True, kw_only=True):
    turn: TurnRequest
    requested_model: str
    stream: bool
    include_usage: bool = False
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    effort: str | None = None
    summary: str | None = None
    user: str | None = None


# ---- shared checks -----------------------------------------------------------------------------------------


def require_model(model: str | None) -> str:
    if model is None or not model.strip():
        raise RequestInvalid("model is required", "model", code="model_required")
    return model


def check_effort(effort: str | None, param: str) -> str | None:
    if effort is None:
        return None
    if effort not in EFFORTS:
        raise RequestInvalid(f"{param} must be one of {', '.join(EFFORTS)}; received {effort!r}", param)
    return effort


def check_positive(value: int | None, param: str) -> int | None:
    if value is not None and value < 1:
        raise RequestInvalid(f"{param} must be a positive integer; received {value}", param)
    return value


def check_n(n: int | None) -> None:
    if n is not None and n != 1:
        raise RequestInvalid(f"n must be 1 (one choice per request is supported); received {n}", "n", "n_unsupported")


def resolve_model(model: str, resolver: ResolverFn) -> ResolvedModel:
    resolved = resolver(model)
    if resolved is None:
        raise RequestInvalid(
            f"The model `{model}` does not exist or you do not have access to it.", "model", "model_not_found", 404
        )
    return resolved


def _instructions(parts: Iterable[str], ignore_client_system_prompt: bool) -> str | None:
    if ignore_client_system_prompt:
        return None
    text = "\n\n".join(p for p in parts if p.strip())
    return text or None


def _turn(
    resolved: ResolvedModel,
    transcript: Sequence[HistoryMessage],
    effort: str | None,
    summary: str | None,
    instructions: str | None,
    input_param: str,
) -> TurnRequest:
    """The last user message is the turn input; everything before it is real history."""
    if not transcript or transcript[-1].role != "user":
        raise RequestInvalid("the last message must be from the user", input_param)
    return TurnRequest(
        input_text=transcript[-1].text,
        input_images=transcript[-1].images,
        history=tuple(transcript[:-1]),
        model=resolved.model,
        effort=effort or resolved.effort,
        summary=summary,
        developer_instructions=instructions,
    )


class _Part(Protocol):
    type: str
    text: str | None
    image_url: Any


class MessageContent(msgspec.Struct, frozen=True):
    text: str
    images: tuple[str, ...] = ()


def message_content(content: str | Sequence[_Part] | None, param: str, *, images: bool) -> MessageContent:
    """A message's text (the string, or its text parts joined by newlines) and its images (data URLs).

    Images are accepted in user messages only, as `data:image/...;base64,` URLs: app-server refuses remote
    URLs and this server does not fetch them for clients. Audio and files are refused by name, unknown part
    types with the parameter path."""
    if content is None:
        return MessageContent(text="")
    if isinstance(content, str):
        return MessageContent(text=content)
    texts: list[str] = []
    urls: list[str] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if part.type in TEXT_PARTS and part.text is not None:
            texts.append(part.text)
        elif part.type in IMAGE_PARTS:
            if not images:
                raise RequestInvalid("images are accepted in user messages only", where)
            urls.append(_image_url(part, where))
        elif part.type in MEDIA_PARTS:
            raise RequestInvalid(f"{part.type} content is not supported by this server yet", where)
        else:
            raise RequestInvalid(f"unsupported content part type {part.type!r}", f"{where}.type")
    return MessageContent(text="\n".join(texts), images=tuple(urls))


def _image_url(part: _Part, where: str) -> str:
    raw = part.image_url
    url = raw if isinstance(raw, str) else getattr(raw, "url", None)
    if not isinstance(url, str) or not DATA_IMAGE.match(url):
        raise RequestInvalid(
            "images must be data URLs (data:image/png;base64,...); remote image URLs are not fetched", where
        )
    return url


# ---- chat completions --------------------------------------------------------------------------------------


def plan_chat(
    req: c.ChatCompletionRequest, resolver: ResolverFn, *, ignore_client_system_prompt: bool, default_stream: bool
) -> TurnPlan:
    """Validate in the reference's order (model, messages, n, unsupported knobs, model id) and build the turn."""
    model = require_model(req.model)
    if not req.messages:
        raise RequestInvalid("messages must be a non-empty array", "messages", code="invalid_request_error")
    check_n(req.n)
    if req.logprobs or req.top_logprobs is not None:
        raise RequestInvalid("logprobs is not supported by this server", "logprobs" if req.logprobs else "top_logprobs")
    for name in ("tools", "functions"):
        if getattr(req, name):
            raise RequestInvalid(f"{name} (client tools) are not supported by this server yet", name)
    for name in ("tool_choice", "function_call"):
        if getattr(req, name) not in (None, "none", "auto"):
            raise RequestInvalid(f"{name} is not supported by this server yet", name)
    if req.response_format is not None and req.response_format.type != "text":
        raise RequestInvalid(
            f"response_format {req.response_format.type!r} is not supported yet; only 'text'", "response_format"
        )
    resolved = resolve_model(model, resolver)
    effort = check_effort(req.reasoning_effort, "reasoning_effort") or check_effort(
        req.reasoning.effort if req.reasoning else None, "reasoning.effort"
    )
    summary = req.reasoning.summary if req.reasoning else None
    if summary is not None and summary not in SUMMARIES:
        raise RequestInvalid(f"reasoning.summary must be one of {', '.join(SUMMARIES)}", "reasoning.summary")
    check_positive(req.max_tokens, "max_tokens")
    check_positive(req.max_completion_tokens, "max_completion_tokens")
    system: list[str] = []
    transcript: list[HistoryMessage] = []
    for i, msg in enumerate(req.messages):
        if msg.role not in CHAT_ROLES:
            raise RequestInvalid(
                f"unsupported role {msg.role!r}; supported roles are: {', '.join(CHAT_ROLES)}", f"messages[{i}].role"
            )
        content = message_content(msg.content, f"messages[{i}].content", images=msg.role == "user")
        text = content.text
        if msg.role in ("system", "developer"):
            system.append(text)
        elif msg.role == "assistant":
            transcript.append(HistoryMessage("assistant", text))
        elif msg.role in ("tool", "function"):
            label = msg.name or msg.tool_call_id or msg.role
            transcript.append(HistoryMessage("user", f"[{msg.role} result {label}]\n{text}"))
        else:
            transcript.append(HistoryMessage("user", text, content.images))
    stream = default_stream if req.stream is None else req.stream
    return TurnPlan(
        turn=_turn(
            resolved, transcript, effort, summary, _instructions(system, ignore_client_system_prompt), "messages"
        ),
        requested_model=model,
        stream=stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        max_output_tokens=req.max_completion_tokens or req.max_tokens,
        metadata=req.metadata or {},
        effort=effort,
        summary=summary,
        user=req.user,
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
    return TurnPlan(
        turn=_turn(resolved, [HistoryMessage("user", prompt)], None, None, None, "prompt"),
        requested_model=model,
        stream=default_stream if req.stream is None else req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        max_output_tokens=req.max_tokens,
        user=req.user,
    )


# ---- responses ---------------------------------------------------------------------------------------------

RESPONSE_ROLES = ("user", "assistant", "system", "developer")


def plan_responses(req: r.ResponsesRequest, resolver: ResolverFn, *, ignore_client_system_prompt: bool) -> TurnPlan:
    if req.messages is not None:
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
    for name in ("background", "conversation", "prompt"):
        if getattr(req, name):
            raise RequestInvalid(f"{name} is not supported by this server", name)
    # Tool *declarations* are accepted and never executed: the model answers in text and the response echoes
    # `tools: []`, `tool_choice: "none"`. Refusing them would lock out Codex CLI, which always declares its own
    # built-in tools; anything that demands a tool call is refused instead (docs/responses.md, "Tools").
    # Their shape (objects with a string `type`) is checked when the body is decoded.
    if req.tool_choice not in (None, "none", "auto"):
        raise RequestInvalid(
            "tool_choice other than 'auto' or 'none' is not supported: this server does not execute client tools yet",
            "tool_choice",
        )
    if req.text is not None and req.text.format is not None and req.text.format.type != "text":
        raise RequestInvalid(f"text.format {req.text.format.type!r} is not supported yet; only 'text'", "text.format")
    resolved = resolve_model(model, resolver)
    effort = check_effort(req.reasoning.effort if req.reasoning else None, "reasoning.effort")
    summary = req.reasoning.summary if req.reasoning else None
    if summary is not None and summary not in SUMMARIES:
        raise RequestInvalid(f"reasoning.summary must be one of {', '.join(SUMMARIES)}", "reasoning.summary")
    check_positive(req.max_output_tokens, "max_output_tokens")
    system = [req.instructions] if req.instructions else []
    transcript: list[HistoryMessage] = []
    if isinstance(req.input, str):
        transcript.append(HistoryMessage("user", req.input))
    else:
        for i, item in enumerate(req.input):
            if item.type == "reasoning":
                continue  # the model's own earlier reasoning, echoed back by stateless clients (Codex CLI)
            if item.type != "message":
                raise RequestInvalid(f"unsupported input item type {item.type!r}", f"input[{i}].type")
            if item.role not in RESPONSE_ROLES:
                raise RequestInvalid(
                    f"unsupported role {item.role!r}; supported roles are: {', '.join(RESPONSE_ROLES)}",
                    f"input[{i}].role",
                )
            content = message_content(item.content, f"input[{i}].content", images=item.role == "user")
            if item.role in ("system", "developer"):
                system.append(content.text)
            else:
                transcript.append(HistoryMessage(item.role, content.text, content.images))  # type: ignore[arg-type]
    return TurnPlan(
        turn=_turn(resolved, transcript, effort, summary, _instructions(system, ignore_client_system_prompt), "input"),
        requested_model=model,
        stream=bool(req.stream),
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        metadata=req.metadata or {},
        effort=effort,
        summary=summary,
        user=req.user,
    )


# ---- output: chat ------------------------------------------------------------------------------------------


def chat_usage(usage: Usage | None) -> c.ChatUsage:
    u = usage or Usage()
    return c.ChatUsage(
        prompt_tokens=u.input_tokens,
        completion_tokens=u.output_tokens,
        total_tokens=u.total_tokens or u.input_tokens + u.output_tokens,
        prompt_tokens_details=c.PromptTokensDetails(cached_tokens=u.cached_input_tokens),
        completion_tokens_details=c.CompletionTokensDetails(reasoning_tokens=u.reasoning_output_tokens),
    )


def finish_reason(finished: TurnFinished) -> str:
    return "stop"


class ChatIds(msgspec.Struct, frozen=True):
    id: str
    created: int
    model: str


def chat_chunk(ids: ChatIds, delta: c.Delta, finish: str | None = None) -> c.ChatCompletionChunk:
    return c.ChatCompletionChunk(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        choices=[c.ChunkChoice(index=0, delta=delta, finish_reason=finish)],
    )


def chat_usage_chunk(ids: ChatIds, usage: Usage | None) -> c.ChatCompletionChunk:
    return c.ChatCompletionChunk(id=ids.id, created=ids.created, model=ids.model, choices=[], usage=chat_usage(usage))


def chat_completion(ids: ChatIds, text: str, finished: TurnFinished) -> c.ChatCompletion:
    return c.ChatCompletion(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        choices=[c.Choice(index=0, message=c.AssistantMessage(content=text), finish_reason=finish_reason(finished))],
        usage=chat_usage(finished.usage),
    )


def text_chunk(ids: ChatIds, text: str, finish: str | None) -> c.TextCompletion:
    return c.TextCompletion(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        choices=[c.TextChoice(index=0, text=text, finish_reason=finish)],
    )


def text_completion(ids: ChatIds, text: str, finished: TurnFinished) -> c.TextCompletion:
    body = text_chunk(ids, text, finish_reason(finished))
    return msgspec.structs.replace(body, usage=chat_usage(finished.usage))


# ---- output: responses -------------------------------------------------------------------------------------


def response_usage(usage: Usage | None) -> r.ResponseUsage:
    u = usage or Usage()
    return r.ResponseUsage(
        input_tokens=u.input_tokens,
        input_tokens_details=r.InputTokensDetails(cached_tokens=u.cached_input_tokens),
        output_tokens=u.output_tokens,
        output_tokens_details=r.OutputTokensDetails(reasoning_tokens=u.reasoning_output_tokens),
        total_tokens=u.total_tokens or u.input_tokens + u.output_tokens,
    )


class ResponseIds(msgspec.Struct, frozen=True):
    id: str
    created_at: int
    message_id: str
    reasoning_id: str


class ResponseBuilder:
    """Accumulates one response's output and emits OpenAI's typed events with increasing sequence numbers.

    Used for both the stream (events) and the non-stream body (`response()`), so the two cannot disagree.
    """

    def __init__(self, ids: ResponseIds, plan: TurnPlan) -> None:
        self.ids = ids
        self.plan = plan
        self.seq = 0
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.message_index: int | None = None
        self.reasoning_index: int | None = None
        self.message_open = False
        self.reasoning_open = False
        self.next_index = 0

    def _n(self) -> int:
        self.seq += 1
        return self.seq

    def response(
        self,
        status: str,
        usage: Usage | None = None,
        error: ErrorDetail | None = None,
        *,
        include_usage: bool = True,
        incomplete: str | None = None,
    ) -> r.Response:
        output: list[r.OutputItem] = []
        items: list[tuple[int, r.OutputItem]] = []
        if self.reasoning_index is not None:
            items.append((self.reasoning_index, self._reasoning_item()))
        if self.message_index is not None or status in ("completed", "incomplete"):
            items.append((self.message_index if self.message_index is not None else 99, self._message_item(status)))
        output = [item for _, item in sorted(items, key=lambda x: x[0])]
        plan = self.plan
        return r.Response(
            id=self.ids.id,
            created_at=self.ids.created_at,
            status=status,
            model=plan.requested_model,
            output=output,
            # usage is null until the end, and on a failure that reported none (OpenAI never invents zeros there)
            usage=response_usage(usage)
            if include_usage and status != "in_progress" and (usage is not None or status == "completed")
            else None,
            error=r.ResponseError(code=error.code or "server_error", message=error.message) if error else None,
            incomplete_details=r.IncompleteDetails(reason=incomplete) if incomplete else None,
            instructions=plan.instructions,
            max_output_tokens=plan.max_output_tokens,
            metadata=plan.metadata,
            reasoning=r.ReasoningEcho(effort=plan.effort, summary=plan.summary),
            user=plan.user,
        )

    def _message_item(self, status: str) -> r.MessageOutput:
        # OpenAI: a message cut short by a failed/incomplete response is `incomplete`, never left `in_progress`.
        item_status = {"completed": "completed", "in_progress": "in_progress"}.get(status, "incomplete")
        return r.MessageOutput(
            id=self.ids.message_id, status=item_status, content=[r.OutputText(text="".join(self.text))]
        )

    def _reasoning_item(self) -> r.ReasoningOutput:
        text = "".join(self.reasoning)
        return r.ReasoningOutput(id=self.ids.reasoning_id, summary=[r.SummaryText(text=text)] if text else [])

    # -- stream events --

    def opening(self) -> list[r.ResponseEvent]:
        created = self.response("in_progress")
        return [
            r.ResponseCreated(sequence_number=self._n(), response=created),
            r.ResponseInProgress(sequence_number=self._n(), response=created),
        ]

    def on_reasoning(self, delta: str) -> list[r.ResponseEvent]:
        events: list[r.ResponseEvent] = []
        if self.reasoning_index is None:
            self.reasoning_index = self.next_index
            self.next_index += 1
            self.reasoning_open = True
            rid = self.ids.reasoning_id
            events.append(
                r.OutputItemAdded(
                    sequence_number=self._n(),
                    output_index=self.reasoning_index,
                    item=r.ReasoningOutput(id=rid, summary=[]),
                )
            )
            events.append(
                r.SummaryPartAdded(
                    sequence_number=self._n(),
                    item_id=rid,
                    output_index=self.reasoning_index,
                    summary_index=0,
                    part=r.SummaryText(text=""),
                )
            )
        self.reasoning.append(delta)
        events.append(
            r.SummaryTextDelta(
                sequence_number=self._n(),
                item_id=self.ids.reasoning_id,
                output_index=self.reasoning_index,
                summary_index=0,
                delta=delta,
            )
        )
        return events

    def _close_reasoning(self) -> list[r.ResponseEvent]:
        if not self.reasoning_open or self.reasoning_index is None:
            return []
        self.reasoning_open = False
        text = "".join(self.reasoning)
        rid, idx = self.ids.reasoning_id, self.reasoning_index
        return [
            r.SummaryTextDone(sequence_number=self._n(), item_id=rid, output_index=idx, summary_index=0, text=text),
            r.SummaryPartDone(
                sequence_number=self._n(), item_id=rid, output_index=idx, summary_index=0, part=r.SummaryText(text=text)
            ),
            r.OutputItemDone(sequence_number=self._n(), output_index=idx, item=self._reasoning_item()),
        ]

    def _open_message(self) -> list[r.ResponseEvent]:
        if self.message_index is not None:
            return []
        events = self._close_reasoning()
        self.message_index = self.next_index
        self.next_index += 1
        self.message_open = True
        mid = self.ids.message_id
        events.append(
            r.OutputItemAdded(
                sequence_number=self._n(),
                output_index=self.message_index,
                item=r.MessageOutput(id=mid, status="in_progress", content=[]),
            )
        )
        events.append(
            r.ContentPartAdded(
                sequence_number=self._n(),
                item_id=mid,
                output_index=self.message_index,
                content_index=0,
                part=r.OutputText(text=""),
            )
        )
        return events

    def on_text(self, delta: str) -> list[r.ResponseEvent]:
        events = self._open_message()
        self.text.append(delta)
        assert self.message_index is not None
        events.append(
            r.OutputTextDelta(
                sequence_number=self._n(),
                item_id=self.ids.message_id,
                output_index=self.message_index,
                content_index=0,
                delta=delta,
            )
        )
        return events

    def closing(self, finished: TurnFinished) -> list[r.ResponseEvent]:
        events = self._open_message()
        assert self.message_index is not None
        text = "".join(self.text)
        mid, idx = self.ids.message_id, self.message_index
        part = r.OutputText(text=text)
        events += [
            r.OutputTextDone(sequence_number=self._n(), item_id=mid, output_index=idx, content_index=0, text=text),
            r.ContentPartDone(sequence_number=self._n(), item_id=mid, output_index=idx, content_index=0, part=part),
            r.OutputItemDone(sequence_number=self._n(), output_index=idx, item=self._message_item("completed")),
        ]
        self.message_open = False
        events.append(
            r.ResponseCompleted(sequence_number=self._n(), response=self.response("completed", finished.usage))
        )
        return events

    def failure(self, error: ErrorDetail) -> list[r.ResponseEvent]:
        return [r.ResponseFailed(sequence_number=self._n(), response=self.response("failed", error=error))]
