"""Stop-after-tools for structured calls: which of the model's calls a response returns, when, and the tail.

The older implementation's controls keep their names and meaning (docs/chat.md, "Stop after tools"), applied to
the calls Codex reports instead of to XML the model printed:

- Off (the default): a response returns every call of the model response, together, when it ends.
- Enforced (`PROXY_STOP_AFTER_TOOLS=true`, `PROXY_TOOL_BLOCK_MAX>0` or `PROXY_STOP_AFTER_TOOLS_MODE=first`): each
  call is sent as soon as the model has written it, and the policy decides when no more are let through —
  `first` after the first call, `burst` at the first gap longer than `PROXY_STOP_AFTER_TOOLS_GRACE_MS` between two
  calls, and never more than `PROXY_TOOL_BLOCK_MAX` calls. Text the model writes after its first call is dropped.
  The response still ends when the model response does, so its usage stays Codex's exact count.
- `PROXY_SUPPRESS_TAIL_AFTER_TOOLS=true` drops text written after the first call in either case.

A batch that arrives without per-call events (a scripted turn) is one burst: `first` and the cap still apply.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.codex.turn import ToolCall
from app.translate.plan import ToolStreamPolicy


class ToolStream:
    """One response's view of the policy; the relay asks it about every call and every text delta."""

    def __init__(self, policy: ToolStreamPolicy) -> None:
        self.policy = policy
        self.early = policy.enforced  # calls go out as they complete
        self.kept: list[ToolCall] = []
        self.dropped = 0  # calls the policy held back (the response was cut)
        self.seen_call = False
        self._closed = False
        self._streamed = False
        self._last_at: float | None = None

    def ready(self, call: ToolCall, at: float) -> bool:
        """The model completed `call`; True when it goes out now."""
        self.seen_call = True
        if not self.early:
            return False
        self._streamed = True
        return self._admit(call, at)

    def batch(self, calls: Sequence[ToolCall]) -> list[ToolCall]:
        """The model response ended with `calls`; the ones to send now (none if they already went out)."""
        self.seen_call = True
        if self._streamed:
            return []
        if not self.policy.enforced:
            self.kept = list(calls)
            return self.kept
        return [call for call in calls if self._admit(call, None)]

    def drops_text(self) -> bool:
        """Text from here on is the tail after a call and is not sent."""
        return self.seen_call and (self.policy.suppress_tail or self.policy.enforced)

    def _admit(self, call: ToolCall, at: float | None) -> bool:
        policy = self.policy
        if (
            not self._closed
            and policy.mode == "burst"
            and at is not None
            and self._last_at is not None
            and at - self._last_at > policy.grace_ms / 1000
        ):
            self._closed = True  # the burst ended before this call
        if self._closed:
            self.dropped += 1
            return False
        self.kept.append(call)
        self._last_at = at
        if policy.mode == "first" or (policy.max_calls and len(self.kept) >= policy.max_calls):
            self._closed = True
        return True
