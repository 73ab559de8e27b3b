"""The fast in-process seam: the real app (routes, pipeline, translation, encoders) on scripted turn events.

`create_app(settings, turns=ScriptedTurns())` replaces the Codex pool with a script, so a test drives the whole
HTTP surface through Litestar's test client — or the official `openai` SDK on top of it — in milliseconds and
reads back the exact `TurnRequest` the pipeline built. The real codex path is covered by the tests under
tests/api and tests/codex; this seam is for the many shape, format and error cases in between.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openai import AsyncOpenAI

from app.codex.turn import (
    HistoryMessage,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallReady,
    ToolCallsRequested,
    TurnEvent,
    TurnFinished,
    TurnRequest,
    Usage,
)
from app.main import create_app
from app.settings import Settings

KEY = "seam-key-" + "s" * 24
USAGE = Usage(input_tokens=7, output_tokens=3, total_tokens=10)


class Pause(msgspec.Struct, frozen=True):
    """A scripted silence (seconds) between two events, for timeout and keepalive cases."""

    seconds: float


Step = TurnEvent | Pause


def text(*deltas: str, usage: Usage = USAGE) -> list[Step]:
    return [*(TextDelta(d) for d in deltas), TurnFinished(status="completed", usage=usage)]


def calls(*calls: ToolCall, before: Sequence[str] = (), usage: Usage = USAGE) -> list[Step]:
    """Optional text, then one batch of tool calls and the tool-call finish, as the real session yields them."""
    return [
        *(TextDelta(d) for d in before),
        ToolCallsRequested(tuple(calls)),
        TurnFinished(status="completed", usage=usage, reason="tool_calls"),
    ]


def burst(*timed: tuple[ToolCall, float], before: Sequence[str] = (), usage: Usage = USAGE) -> list[Step]:
    """Calls as the real session reports them: each as the model completes it (at the given monotonic time),
    then the whole batch when the model response ends."""
    return [
        *(TextDelta(d) for d in before),
        *(ToolCallReady(call, at) for call, at in timed),
        ToolCallsRequested(tuple(call for call, _ in timed)),
        TurnFinished(status="completed", usage=usage, reason="tool_calls"),
    ]


def reasoning_then_text(summary: str, *deltas: str) -> list[Step]:
    return [ReasoningDelta(summary), *text(*deltas)]


class ScriptedTurn:
    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = deque(steps)
        self.released = asyncio.Event()

    async def next_event(self) -> TurnEvent | None:
        while self._steps:
            step = self._steps.popleft()
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                continue
            return step
        return None

    def poll(self) -> TurnEvent | None:
        """The next scripted event when no pause comes first (like events codex already sent)."""
        if self._steps and not isinstance(self._steps[0], Pause):
            return self._steps.popleft()  # type: ignore[return-value]
        return None

    def release(self) -> None:
        self.released.set()


class ScriptedTurns:
    """A `TurnSource` playing scripts in order (default: echo the input); records every request and turn."""

    def __init__(self) -> None:
        self._scripts: deque[list[Step]] = deque()
        self.requests: list[TurnRequest] = []
        self.turns: list[ScriptedTurn] = []

    def script(self, *scripts: list[Step]) -> None:
        self._scripts.extend(scripts)

    async def open(self, req: TurnRequest) -> ScriptedTurn:
        self.requests.append(req)
        turn = ScriptedTurn(self._scripts.popleft() if self._scripts else text(f"echo: {req.input_text}"))
        self.turns.append(turn)
        return turn

    @property
    def last(self) -> TurnRequest:
        return self.requests[-1]

    def left(self) -> int:
        return len(self._scripts)


def settings(tmp: Path, **overrides: object) -> Settings:
    base = Settings(codex_home=str(tmp / "home"), api_key=KEY, usage_log=str(tmp / "usage.ndjson"))
    return msgspec.structs.replace(base, **overrides)


class Seam(msgspec.Struct):
    turns: ScriptedTurns
    http: AsyncTestClient
    sdk: AsyncOpenAI
    app: Litestar


@asynccontextmanager
async def seam(tmp: Path, **overrides: object) -> AsyncIterator[Seam]:
    turns = ScriptedTurns()
    app = create_app(settings(tmp, **overrides), turns=turns)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        sdk = AsyncOpenAI(base_url="http://127.0.0.1/v1", api_key=KEY, http_client=client, max_retries=0)
        yield Seam(turns=turns, http=client, sdk=sdk, app=app)


def history_texts(req: TurnRequest) -> list[tuple[str, str]]:
    return [(i.role, i.text) for i in req.history if isinstance(i, HistoryMessage)]
