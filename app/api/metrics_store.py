"""The app's counters (one process, one event loop: plain dicts, no locks). Rendered by app.api.metrics.

Every label value comes from a finite set fixed here or by the app's own code, never from the client: the HTTP
method is one of `METHODS` or `other`, the status a family `1xx`…`5xx` or `other`, the route a handler's path
template or `unmatched` (app.api.edge). Issue 13: labelling by the raw method let anyone without a key grow the
process and /metrics by sending random 60 KB method names to the public /healthz route.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from app.codex.turn import Usage

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUS_FAMILIES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    """`0` (no response was started: the client left, or the app failed before answering) counts as `other`."""
    return STATUS_FAMILIES.get(status // 100, "other")


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.duration_sum: dict[str, float] = defaultdict(float)
        self.tokens: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method_label(method), status_label(status))] += 1
        self.duration_sum[route] += seconds

    def observe_turn(self, outcome: str, usage: Usage | None) -> None:
        self.turns[outcome] += 1
        if usage is not None:
            self.tokens["input"] += usage.input_tokens
            self.tokens["cached_input"] += usage.cached_input_tokens
            self.tokens["output"] += usage.output_tokens
            self.tokens["reasoning_output"] += usage.reasoning_output_tokens
