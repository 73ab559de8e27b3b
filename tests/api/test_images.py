"""Images sent as data URLs reach the model through the real codex app-server (chat and responses)."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest

pytestmark = pytest.mark.codex


def png_data_url(width: int = 4, height: int = 4) -> str:
    """A valid PNG (codex decodes images and drops ones it cannot read)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x00\x80\xff" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def images_seen_by_model(model) -> list[str]:
    body = json.loads(model.requests[-1].raw)
    return [
        part["image_url"]
        for item in body["input"]
        if item.get("type") == "message"
        for part in item.get("content", [])
        if part.get("type") == "input_image"
    ]


def test_chat_image_reaches_the_model(http, model):
    url = png_data_url()
    content = [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": url}}]
    r = http.post("/v1/chat/completions", json={"model": "codev-5", "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "echo: describe"
    assert images_seen_by_model(model) == [url]


def test_responses_images_in_history_and_input_reach_the_model(http, model):
    first, second = png_data_url(2, 2), png_data_url(3, 3)
    items = [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "one"}, {"type": "input_image", "image_url": first}],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "seen"}]},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "two"}, {"type": "input_image", "image_url": second}],
        },
    ]
    r = http.post("/v1/responses", json={"model": "codev-5", "input": items})
    assert r.status_code == 200, r.text
    assert images_seen_by_model(model) == [first, second]
