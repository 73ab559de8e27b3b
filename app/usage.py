"""Per-request usage records: appended to an NDJSON file, summed on demand for `/v1/usage`.

One line per generation request that passed validation (completed, failed, timed out, cancelled, or rejected
because no worker could take it) with the exact token counts Codex
reported — never estimates, never prompt or completion text. The file lives in the private Codex home by
default (0600), survives restarts, and unparsable lines (a torn write after a crash) are skipped, not fatal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

logger = logging.getLogger(__name__)

Group = Literal["hour", "day"]


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    ts: int  # epoch milliseconds
    request_id: str
    route: str
    model: str
    key: str
    stream: bool
    outcome: str  # completed | failed | timeout | cancelled | worker_lost | interrupted | rejected
    duration_ms: int
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class Totals(msgspec.Struct):
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def add(self, r: UsageRecord) -> None:
        self.requests += 1
        self.input_tokens += r.input_tokens
        self.cached_input_tokens += r.cached_input_tokens
        self.output_tokens += r.output_tokens
        self.reasoning_tokens += r.reasoning_tokens
        self.total_tokens += r.total_tokens


class Bucket(msgspec.Struct):
    start: str
    totals: Totals


class UsageSummary(msgspec.Struct):
    start: int
    end: int
    totals: Totals
    by_model: dict[str, Totals]
    by_key: dict[str, Totals]
    buckets: list[Bucket] | None = None
    object_: Literal["usage.summary"] = msgspec.field(default="usage.summary", name="object")


class UsageEvents(msgspec.Struct):
    data: list[UsageRecord]
    object_: Literal["list"] = msgspec.field(default="list", name="object")


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(UsageRecord)


class UsageLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: UsageRecord) -> None:
        """One O_APPEND write per record (atomic for lines this short); a failing disk never fails a request."""
        line = _ENCODER.encode(record) + b"\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("usage log %s not writable: %s", self.path, exc)

    def records(self) -> Iterator[UsageRecord]:
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            for line in f:
                try:
                    yield _DECODER.decode(line)
                except msgspec.DecodeError:
                    continue

    def summary(self, start: int, end: int, group: Group | None) -> UsageSummary:
        totals = Totals()
        by_model: dict[str, Totals] = {}
        by_key: dict[str, Totals] = {}
        buckets: dict[str, Totals] = {}
        for r in self.records():
            if not start <= r.ts < end:
                continue
            totals.add(r)
            by_model.setdefault(r.model, Totals()).add(r)
            by_key.setdefault(r.key, Totals()).add(r)
            if group is not None:
                buckets.setdefault(bucket_start(r.ts, group), Totals()).add(r)
        return UsageSummary(
            start=start,
            end=end,
            totals=totals,
            by_model=by_model,
            by_key=by_key,
            buckets=[Bucket(start=k, totals=v) for k, v in sorted(buckets.items())] if group else None,
        )

    def tail(self, limit: int) -> list[UsageRecord]:
        return list(deque(self.records(), maxlen=limit))


def bucket_start(ts_ms: int, group: Group) -> str:
    """UTC floor of the timestamp to the hour or day, ISO 8601."""
    t = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    t = t.replace(minute=0, second=0, microsecond=0)
    if group == "day":
        t = t.replace(hour=0)
    return t.isoformat().replace("+00:00", "Z")


def parse_time(value: str | None, default: int) -> int:
    """Epoch milliseconds (digits) or ISO 8601; None → default. Raises ValueError on anything else."""
    if value is None or value == "":
        return default
    if value.isdigit():
        return int(value)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)
