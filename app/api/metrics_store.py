"""The app's counters (one process, one event loop: plain dicts, no locks). Rendered by app.api.metrics."""

from __future__ import annotations

from collections import Counter, defaultdict

from app.codex.turn import Usage


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.duration_sum: dict[str, float] = defaultdict(float)
        self.tokens: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, f"{status // 100}xx")] += 1
        self.duration_sum[route] += seconds

    def observe_turn(self, outcome: str, usage: Usage | None) -> None:
        self.turns[outcome] += 1
        if usage is not None:
            self.tokens["input"] += usage.input_tokens
            self.tokens["cached_input"] += usage.cached_input_tokens
            self.tokens["output"] += usage.output_tokens
            self.tokens["reasoning_output"] += usage.reasoning_output_tokens
