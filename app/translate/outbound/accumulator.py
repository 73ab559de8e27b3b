"""The one record of a response's output, fed by turn events, read by every encoder (stream and non-stream).

Output is a list of items in the order the model produced them — reasoning, message text, tool calls — each
with its own id and index, so a Responses stream and the final object (or a chat body) cannot disagree.
"""

from __future__ import annotations

import secrets
from typing import TypeVar

import msgspec

from app.codex.turn import ToolCall


class _TextOut(msgspec.Struct):
    index: int
    id: str
    parts: list[str] = msgspec.field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class MessageOut(_TextOut):
    """Assistant message text."""


class ReasoningOut(_TextOut):
    """A reasoning summary."""


class ToolCallOut(msgspec.Struct):
    index: int
    id: str
    call: ToolCall
    ordinal: int  # position among the response's tool calls (chat `tool_calls[].index`)


OutputItem = MessageOut | ReasoningOut | ToolCallOut
T = TypeVar("T", MessageOut, ReasoningOut)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class OutputAccumulator:
    def __init__(self) -> None:
        self.items: list[OutputItem] = []

    @property
    def current(self) -> OutputItem | None:
        return self.items[-1] if self.items else None

    def text(self, delta: str) -> tuple[MessageOut, bool]:
        """Append to the open message, or open one (True) when the last item is something else."""
        return self._append(MessageOut, "msg", delta)

    def reasoning(self, delta: str) -> tuple[ReasoningOut, bool]:
        return self._append(ReasoningOut, "rs", delta)

    def _append(self, kind: type[T], prefix: str, delta: str) -> tuple[T, bool]:
        item = self.current
        if isinstance(item, kind):
            item.parts.append(delta)
            return item, False
        opened = kind(index=len(self.items), id=new_id(prefix), parts=[delta])
        self.items.append(opened)
        return opened, True

    def tool_calls(self, calls: tuple[ToolCall, ...]) -> list[ToolCallOut]:
        first = len(self.calls)
        added = [
            ToolCallOut(index=len(self.items) + k, id=new_id("fc"), call=call, ordinal=first + k)
            for k, call in enumerate(calls)
        ]
        self.items.extend(added)
        return added

    def empty_message(self) -> MessageOut:
        """An empty message item: a completed answer always has one, even when the model said nothing."""
        item = MessageOut(index=len(self.items), id=new_id("msg"))
        self.items.append(item)
        return item

    @property
    def text_value(self) -> str:
        return "".join(i.text for i in self.items if isinstance(i, MessageOut))

    @property
    def reasoning_value(self) -> str:
        return "".join(i.text for i in self.items if isinstance(i, ReasoningOut))

    @property
    def calls(self) -> list[ToolCallOut]:
        return [i for i in self.items if isinstance(i, ToolCallOut)]

    @property
    def messages(self) -> list[MessageOut]:
        return [i for i in self.items if isinstance(i, MessageOut)]
