"""Checks every API shares: model id, effort, summary, `n`, positive limits, and message content parts."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec

from app.model_ids import ResolvedModel
from app.openai.chat import ImageURL
from app.translate.plan import RequestInvalid

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
TEXT_PARTS = ("text", "input_text", "output_text")
IMAGE_PARTS = ("image_url", "input_image")
MEDIA_PARTS = ("input_file", "input_audio", "file")
DATA_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+\Z")

ResolverFn = Callable[[str], ResolvedModel | None]


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


def check_summary(summary: str | None) -> str | None:
    if summary is not None and summary not in SUMMARIES:
        raise RequestInvalid(f"reasoning.summary must be one of {', '.join(SUMMARIES)}", "reasoning.summary")
    return summary


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


class Part(Protocol):
    """A content part of either API (chat `ContentPart`, responses `InputPart`)."""

    @property
    def type(self) -> str: ...
    @property
    def text(self) -> str | None: ...
    @property
    def image_url(self) -> ImageURL | str | None: ...


class MessageContent(msgspec.Struct, frozen=True):
    text: str
    images: tuple[str, ...] = ()


def message_content(content: str | Sequence[Part] | None, param: str, *, images: bool) -> MessageContent:
    """A message's text (the string, or its text parts joined by newlines) and its images (data URLs).

    Images are accepted in user messages and tool results only, as `data:image/...;base64,` URLs: app-server
    refuses remote URLs and this server does not fetch them for clients. Audio and files are refused by name,
    unknown part types with the parameter path."""
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
                raise RequestInvalid("images are accepted in user messages and tool results only", where)
            urls.append(_image_url(part, where))
        elif part.type in MEDIA_PARTS:
            raise RequestInvalid(f"{part.type} content is not supported by this server yet", where)
        else:
            raise RequestInvalid(f"unsupported content part type {part.type!r}", f"{where}.type")
    return MessageContent(text="\n".join(texts), images=tuple(urls))


def _image_url(part: Part, where: str) -> str:
    raw = part.image_url
    url = raw if isinstance(raw, str) else raw.url if raw is not None else None
    if not isinstance(url, str) or not DATA_IMAGE.match(url):
        raise RequestInvalid(
            "images must be data URLs (data:image/png;base64,...); remote image URLs are not fetched", where
        )
    return url
