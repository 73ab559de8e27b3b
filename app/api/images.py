"""Remote images in a planned request → data URLs, before the turn opens (app.image_fetch does the fetching).

Planning (pure) keeps http(s) image URLs as they are and lists them with the parameter each came from. This step
fetches every distinct URL once, concurrently within the server's bound, and puts the data URLs where the URLs
were — in the turn input, in earlier user messages and in tool results. A URL that cannot be used is a 400 naming
the message and part (`messages[0].content[1]`) and the reason; nothing reaches Codex then.
"""

from __future__ import annotations

import msgspec

from app.codex.turn import HistoryItem, HistoryMessage, HistoryToolResult, ImageRef
from app.errors import ApiError
from app.image_fetch import ImageFetcher, ImageRefused
from app.translate.plan import TurnPlan

MAX_REMOTE_IMAGES = 16  # per request: each can take up to PROXY_IMAGE_MAX_BYTES of memory and a fetch slot


async def inline_remote_images(fetcher: ImageFetcher, plan: TurnPlan) -> TurnPlan:
    if not plan.remote_images:
        return plan
    where: dict[str, str] = {}
    for image in plan.remote_images:
        where.setdefault(image.url, image.param)
    if len(where) > MAX_REMOTE_IMAGES:
        extra = list(where.values())[MAX_REMOTE_IMAGES]
        raise ApiError(
            400,
            f"at most {MAX_REMOTE_IMAGES} distinct image URLs are fetched per request; send the rest as data URLs",
            param=extra,
            code="too_many_image_urls",
        )
    try:
        fetched = await fetcher.fetch_all(list(where))
    except ImageRefused as exc:
        param = where.get(exc.url or "", plan.remote_images[0].param)
        raise ApiError(
            400, f"the image at {param} was not fetched: {exc.reason}", param=param, code="invalid_image_url"
        ) from None
    turn = plan.turn
    turn = msgspec.structs.replace(
        turn,
        input_images=_swap(turn.input_images, fetched),
        history=tuple(_swap_item(item, fetched) for item in turn.history),
    )
    return msgspec.structs.replace(plan, turn=turn, remote_images=())


def _swap(images: tuple[ImageRef, ...], fetched: dict[str, str]) -> tuple[ImageRef, ...]:
    return tuple(ImageRef(fetched[i.url], i.detail) if i.url in fetched else i for i in images)


def _swap_item(item: HistoryItem, fetched: dict[str, str]) -> HistoryItem:
    if isinstance(item, HistoryMessage | HistoryToolResult) and item.images:
        return msgspec.structs.replace(item, images=_swap(item.images, fetched))
    return item
