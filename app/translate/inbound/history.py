"""A conversation, in order, as Codex history items: the one place both APIs build `TurnRequest` history.

Entries arrive in the client's order; the transcript keeps them as typed items (messages, the model's earlier
tool calls, the client's tool results) that map 1:1 onto `thread/inject_items`. The last user message becomes
the turn input; when the conversation ends with tool results instead, the turn continues from them with no new
input, so the model sees each result as a tool output — never as text pretending to be the user.

Client system/developer text at the start becomes Codex developer instructions; later ones stay developer
messages at their place in the history (both dropped with PROXY_IGNORE_CLIENT_SYSTEM_PROMPT=true).
"""

from __future__ import annotations

import msgspec

from app.codex.turn import HistoryItem, HistoryMessage, HistoryToolCall, HistoryToolResult, ImageRef
from app.translate.plan import RemoteImage, RequestInvalid


class _OpenCall(msgspec.Struct):
    param: str
    name: str
    answered: bool = False


class CallParam(msgspec.Struct, frozen=True):
    """Where a history tool call sits in the request, for the error that names it."""

    item: str
    id: str
    arguments: str


class TurnInput(msgspec.Struct, frozen=True, kw_only=True):
    """The transcript split the way Codex takes it."""

    text: str
    images: tuple[ImageRef, ...]
    history: tuple[HistoryItem, ...]
    developer_instructions: str | None


class Transcript:
    def __init__(self, *, ignore_system: bool, input_param: str) -> None:
        self.ignore_system = ignore_system
        self.input_param = input_param
        self.instructions: list[str] = []
        self.items: list[HistoryItem] = []
        self.remote_images: list[RemoteImage] = []  # http(s) images anywhere in the conversation, to fetch
        self._calls: dict[str, _OpenCall] = {}

    # -- entries, in the client's order --

    def system(self, text: str) -> None:
        if self.ignore_system or not text.strip():
            return
        if not self.items:
            self.instructions.append(text)
        else:
            self.items.append(HistoryMessage("developer", text))

    def user(self, text: str, images: tuple[ImageRef, ...], remote: tuple[RemoteImage, ...] = ()) -> None:
        self.remote_images += remote
        self.items.append(HistoryMessage("user", text, images))

    def assistant(self, text: str) -> None:
        if text:  # clients send an empty assistant message next to its tool calls (Obsidian Copilot)
            self.items.append(HistoryMessage("assistant", text))

    def call(self, call_id: str | None, name: str, arguments: str, namespace: str | None, param: CallParam) -> None:
        if not call_id:
            raise RequestInvalid("a tool call in the history needs its id", param.id)
        if call_id in self._calls:
            raise RequestInvalid(f"tool call id {call_id!r} appears twice in the history", param.id)
        try:
            msgspec.json.decode(arguments or "{}")
        except msgspec.DecodeError:
            raise RequestInvalid(
                f"the arguments of tool call {call_id!r} are not valid JSON; send them as the model wrote them",
                param.arguments,
            ) from None
        self._calls[call_id] = _OpenCall(param=param.item, name=name)
        self.items.append(HistoryToolCall(call_id, name, arguments or "{}", namespace))

    def result(
        self,
        call_id: str | None,
        text: str,
        images: tuple[ImageRef, ...],
        id_param: str,
        remote: tuple[RemoteImage, ...] = (),
    ) -> None:
        if not call_id:
            raise RequestInvalid("a tool result needs the id of the call it answers", id_param)
        call = self._calls.get(call_id)
        if call is None:
            raise RequestInvalid(
                f"tool result for {call_id!r} has no matching tool call earlier in the conversation", id_param
            )
        if call.answered:
            raise RequestInvalid(f"tool call {call_id!r} already has a result", id_param)
        call.answered = True
        self.remote_images += remote
        self.items.append(HistoryToolResult(call_id, text, images))

    def call_id_for(self, name: str) -> str | None:
        """The open call a legacy `function` message answers: the latest unanswered call of that name."""
        for call_id, call in reversed(self._calls.items()):
            if call.name == name and not call.answered:
                return call_id
        return None

    # -- the result --

    def turn_input(self) -> TurnInput:
        for call_id, call in self._calls.items():
            if not call.answered:
                raise RequestInvalid(
                    f"tool call {call_id!r} has no result; send the tool's output after it", call.param
                )
        if not self.items:
            raise RequestInvalid("the conversation needs a user message", self.input_param)
        last = self.items[-1]
        instructions = "\n\n".join(self.instructions) or None
        if isinstance(last, HistoryMessage) and last.role == "user":
            return TurnInput(
                text=last.text,
                images=last.images,
                history=tuple(self.items[:-1]),
                developer_instructions=instructions,
            )
        if isinstance(last, HistoryToolResult):
            return TurnInput(text="", images=(), history=tuple(self.items), developer_instructions=instructions)
        raise RequestInvalid("the last message must be from the user or a tool result", self.input_param)
