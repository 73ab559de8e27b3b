"""Checks every API shares: model id, effort, summary, `n`, positive limits, and message content parts."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import msgspec

from app.codex.turn import ImageRef
from app.model_ids import ResolvedModel
from app.openai.chat import ImageURL
from app.translate.plan import RemoteImage, RequestInvalid

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed", "none")
TEXT_PARTS = ("text", "input_text", "output_text")
IMAGE_PARTS = ("image_url", "input_image")
MEDIA_PARTS = ("input_file", "input_audio", "file")
DATA_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+\Z")
IMAGE_DETAILS = ("auto", "low", "high", "original")
# codex 0.169.0 takes auto / high / original and *drops* an image sent with `low` (it puts "image content omitted
# because detail 'low' is not supported" in its place), so `low` goes to codex as its default (auto) instead.
CODEX_DETAIL: dict[str, str | None] = {"auto": "auto", "low": None, "high": "high", "original": "original"}
MAX_IMAGE_URL = 8192

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
    images: tuple[ImageRef, ...] = ()
    remote: tuple[RemoteImage, ...] = ()  # the http(s) ones among `images`, still to be fetched


def message_content(
    content: str | Sequence[Part] | None, param: str, *, images: bool, fetch: bool = False
) -> MessageContent:
    """A message's text (the string, or its text parts joined by newlines) and its images.

    Images are accepted in user messages and tool results only: `data:image/...;base64,` URLs, and — with `fetch`
    (PROXY_FETCH_IMAGE_URLS) — http(s) URLs, which app.api.images fetches and inlines before the turn opens
    (app-server itself takes data URLs only). `detail` is passed through (`low` as auto, see CODEX_DETAIL).
    Audio and files are refused by name, unknown part types with the parameter path."""
    if content is None:
        return MessageContent(text="")
    if isinstance(content, str):
        return MessageContent(text=content)
    texts: list[str] = []
    refs: list[ImageRef] = []
    remote: list[RemoteImage] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if part.type in TEXT_PARTS and part.text is not None:
            texts.append(part.text)
        elif part.type in IMAGE_PARTS:
            if not images:
                raise RequestInvalid("images are accepted in user messages and tool results only", where)
            ref = _image(part, where, fetch)
            refs.append(ref)
            if not ref.url.startswith("data:"):
                remote.append(RemoteImage(url=ref.url, param=where))
        elif part.type in MEDIA_PARTS:
            raise RequestInvalid(f"{part.type} content is not supported by this server yet", where)
        else:
            raise RequestInvalid(f"unsupported content part type {part.type!r}", f"{where}.type")
    return MessageContent(text="\n".join(texts), images=tuple(refs), remote=tuple(remote))


def plain_text(content: str | Sequence[Part] | None) -> str | None:
    """The text of a message made of text only (a string or text parts), else None."""
    if isinstance(content, str):
        return content
    if content and all(part.type in TEXT_PARTS and part.text is not None for part in content):
        return "\n".join(part.text or "" for part in content)
    return None


def _image(part: Part, where: str, fetch: bool) -> ImageRef:
    raw = part.image_url
    if isinstance(raw, ImageURL):
        url, detail, detail_param = raw.url, raw.detail, f"{where}.image_url.detail"
    else:
        url, detail, detail_param = raw, getattr(part, "detail", None), f"{where}.detail"
    if detail is not None and detail not in IMAGE_DETAILS:
        raise RequestInvalid(
            f"image detail must be one of {', '.join(IMAGE_DETAILS)}; received {detail!r}", detail_param
        )
    detail = CODEX_DETAIL[detail] if detail is not None else None
    if isinstance(url, str) and DATA_IMAGE.match(url):
        return ImageRef(url, detail)
    if isinstance(url, str) and len(url) > MAX_IMAGE_URL:
        raise RequestInvalid(f"an image URL may be at most {MAX_IMAGE_URL} characters (or send a data URL)", where)
    if isinstance(url, str) and _is_http(url):
        if not fetch:
            raise RequestInvalid(
                "remote image URLs are not fetched on this server (PROXY_FETCH_IMAGE_URLS=false); "
                "send the image as a data URL (data:image/png;base64,...)",
                where,
            )
        return ImageRef(url, detail)
    raise RequestInvalid("images must be http(s) URLs or data URLs (data:image/png;base64,...)", where)


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
