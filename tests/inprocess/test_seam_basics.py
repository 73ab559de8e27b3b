"""The seam itself: text through chat and responses, stream and non-stream, with the SDK as client."""

from __future__ import annotations

from tests.seam import Seam, text


async def test_chat_non_stream_text(s: Seam) -> None:
    s.turns.script(text("hel", "lo"))
    out = await s.sdk.chat.completions.create(model="codev-5", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "hello"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None and out.usage.total_tokens == 10
    assert s.turns.last.input_text == "hi"


async def test_chat_stream_text(s: Seam) -> None:
    s.turns.script(text("a", "b"))
    stream = await s.sdk.chat.completions.create(
        model="codev-5", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_responses_stream_and_body_agree(s: Seam) -> None:
    s.turns.script(text("x", "y"), text("x", "y"))
    body = await s.sdk.responses.create(model="codev-5", input="hi")
    async with s.sdk.responses.stream(model="codev-5", input="hi") as stream:
        final = await stream.get_final_response()
    assert body.output_text == final.output_text == "xy"
