"""Images in user messages travel as data URLs; anything Codex cannot take is refused by name."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.codex.turn import ImageRef
from app.model_ids import ResolvedModel
from app.openai import chat as c
from app.openai import responses as r
from app.translate.inbound.chat import plan_chat
from app.translate.inbound.responses import plan_responses
from app.translate.plan import RequestInvalid, TurnPlan

PNG = "data:image/png;base64,iVBORw0KGgo="
ENC = msgspec.json.Encoder()


def resolver(model: str) -> ResolvedModel | None:
    return ResolvedModel(requested=model, model="gpt-5.2", effort=None)


def chat(messages: list[dict[str, Any]]) -> TurnPlan:
    req = msgspec.json.decode(ENC.encode({"model": "m", "messages": messages}), type=c.ChatCompletionRequest)
    return plan_chat(req, resolver, ignore_client_system_prompt=True, default_stream=False)


def responses(items: list[dict[str, Any]]) -> TurnPlan:
    req = msgspec.json.decode(ENC.encode({"model": "m", "input": items}), type=r.ResponsesRequest)
    return plan_responses(req, resolver, ignore_client_system_prompt=True)


@pytest.mark.parametrize(
    ("image_url", "detail"),
    [
        ({"url": PNG}, None),
        ({"url": PNG, "detail": "high"}, "high"),
        ({"url": PNG, "detail": "low"}, None),
        (PNG, None),
    ],
    ids=["object", "detail", "low-is-codex-default", "string"],
)
def test_chat_image_parts_become_turn_images(image_url, detail):
    plan = chat(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": image_url}],
            }
        ]
    )
    assert (plan.turn.input_text, plan.turn.input_images) == ("what?", (ImageRef(PNG, detail),))


def test_images_in_earlier_user_turns_stay_in_history():
    plan = chat(
        [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
            {"role": "assistant", "content": "a red square"},
            {"role": "user", "content": "and now?"},
        ]
    )
    assert plan.turn.history[0].images == (ImageRef(PNG),)
    assert plan.turn.input_images == ()


def test_responses_input_image_parts_become_turn_images():
    plan = responses(
        [{"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": PNG}]}]
    )
    assert plan.turn.input_images == (ImageRef(PNG),)


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}]}],
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}]}],
            "messages[0].content[0]",
        ),
        (
            [
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
                {"role": "user", "content": "x"},
            ],
            "messages[0].content[0]",
        ),
    ],
    ids=["remote-url", "not-an-image", "system-image"],
)
def test_images_codex_cannot_take_are_refused(messages, param):
    with pytest.raises(RequestInvalid) as info:
        chat(messages)
    assert info.value.param == param


def test_responses_file_ids_are_refused():
    with pytest.raises(RequestInvalid) as info:
        responses([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}])
    assert info.value.param == "input[0].content[0]"
