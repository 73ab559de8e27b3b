"""Per-key limits and the plan's quota gate, applied around every generation request.

For each authenticated key name (state in memory, per process):
- **requests per minute**: a token bucket holding up to `rpm` requests, refilled at `rpm / 60` per second
  (so a key may burst its whole minute at once, then gets one request per `60 / rpm` s);
- **concurrent requests**: with one key, the pool's capacity (`PROXY_WORKER_COUNT * WORKER_MAX_CONCURRENCY`,
  so nothing changes: the pool's own queue answers `worker_busy`); with several usable keys, a fair share
  `capacity // keys` (at least 1), so one key can never hold every worker slot and another key's request
  finds a free slot at once. A key at its share waits up to `WORKER_QUEUE_TIMEOUT_MS` for one of its own
  requests to finish, then gets 429 `concurrency_exceeded`. A slot is held until the response is fully sent;
- **tokens per day** (UTC): the exact totals the usage ledger recorded today; unlimited by default.

Exceeding one answers 429 with the OpenAI envelope (`rate_limit_exceeded`, `concurrency_exceeded`,
`tokens_exceeded`), `Retry-After`, and on every generation response — successful or not — OpenAI's headers
`x-ratelimit-{limit,remaining,reset}-requests` (and `-tokens` when the key has a token budget). One key's
burst never touches another key's state. Before any of that, a plan whose usage limit Codex reported gets
429 `usage_limit_reached` until its window resets (app.quota).

The hook is `guarded()`, called from the generation handler around decode → plan → execute.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Response

from app.api import request_note
from app.errors import ApiError
from app.quota import PlanQuota
from app.settings import Settings
from app.usage import DAY_MS, UsageLog
from authd.keys import KeyPolicy, KeyStore


def openai_duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _seconds_to_utc_midnight(now: float) -> float:
    now_ms = now * 1000
    return ((now_ms // DAY_MS + 1) * DAY_MS - now_ms) / 1000


class TokenBucket:
    """`capacity` requests, refilled continuously at `capacity / 60` per second."""

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.tokens = float(capacity)
        self.updated = now

    def _refill(self, now: float) -> None:
        rate = self.capacity / 60
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def resize(self, capacity: int, now: float) -> None:
        self._refill(now)
        self.capacity = capacity
        self.tokens = min(self.tokens, capacity)

    def take(self, now: float) -> float | None:
        """Consume one request: None when taken, else the seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) * 60 / self.capacity

    def give_back(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1)

    def remaining(self, now: float) -> int:
        self._refill(now)
        return math.floor(self.tokens)

    def reset_in(self, now: float) -> float:
        """Seconds until the bucket is full again."""
        self._refill(now)
        return (self.capacity - self.tokens) * 60 / self.capacity


class _KeyState:
    __slots__ = ("bucket", "in_flight", "waiters")

    def __init__(self) -> None:
        self.bucket: TokenBucket | None = None
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class EffectiveLimits:
    __slots__ = ("max_concurrent", "requests_per_minute", "tokens_per_day")

    def __init__(self, rpm: int, concurrent: int | None, tokens: int) -> None:
        self.requests_per_minute = rpm  # 0 = unlimited
        self.max_concurrent = concurrent  # None = not enforced here (the pool's queue applies)
        self.tokens_per_day = tokens  # 0 = unlimited


class Admission:
    """One admitted request: the headers for its response and its concurrency slot (released exactly once)."""

    def __init__(self, limiter: KeyLimiter, name: str, headers: dict[str, str], holds_slot: bool) -> None:
        self.limiter = limiter
        self.name = name
        self.headers = headers
        self._holds_slot = holds_slot

    def release(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self.limiter._release(self.name)


class KeyLimiter:
    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        usage: UsageLog,
        quota: PlanQuota,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.usage = usage
        self.quota = quota
        self.clock = clock
        self.wall = wall
        self.capacity = settings.pool_capacity
        self.queue_timeout = settings.worker_queue_timeout_ms / 1000
        self._state: dict[str, _KeyState] = {}

    def limits_for(self, policy: KeyPolicy) -> EffectiveLimits:
        s, own = self.settings, policy.limits
        rpm = own.requests_per_minute if own.requests_per_minute is not None else s.key_requests_per_minute
        tokens = own.tokens_per_day if own.tokens_per_day is not None else s.key_tokens_per_day
        concurrent: int | None
        if own.max_concurrent is not None:
            concurrent = own.max_concurrent or None
        elif s.key_max_concurrent:
            concurrent = s.key_max_concurrent
        else:
            keys = self.keys.usable_count()
            concurrent = max(1, self.capacity // keys) if keys > 1 else None
        return EffectiveLimits(rpm, concurrent, tokens)

    def _key(self, name: str) -> _KeyState:
        state = self._state.get(name)
        if state is None:
            state = self._state[name] = _KeyState()
        return state

    def headers(self, name: str, limits: EffectiveLimits) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for `name` right now (a limit that is unlimited is left out)."""
        out: dict[str, str] = {}
        now = self.clock()
        bucket = self._key(name).bucket
        if limits.requests_per_minute and bucket is not None:
            out["x-ratelimit-limit-requests"] = str(limits.requests_per_minute)
            out["x-ratelimit-remaining-requests"] = str(bucket.remaining(now))
            out["x-ratelimit-reset-requests"] = openai_duration(bucket.reset_in(now))
        if limits.tokens_per_day:
            used = self.usage.tokens_today(name)
            out["x-ratelimit-limit-tokens"] = str(limits.tokens_per_day)
            out["x-ratelimit-remaining-tokens"] = str(max(0, limits.tokens_per_day - used))
            out["x-ratelimit-reset-tokens"] = openai_duration(_seconds_to_utc_midnight(self.wall()))
        return out

    def _bucket(self, name: str, rpm: int) -> TokenBucket | None:
        state = self._key(name)
        if not rpm:
            state.bucket = None
            return None
        now = self.clock()
        if state.bucket is None:
            state.bucket = TokenBucket(rpm, now)
        elif state.bucket.capacity != rpm:
            state.bucket.resize(rpm, now)
        return state.bucket

    async def admit(self, name: str) -> Admission:
        """Check the plan, the token budget, the request rate and the concurrency share, in that order.

        Raises ApiError 429 (with Retry-After and the rate-limit headers) when one is exceeded."""
        limits = self.limits_for(self.keys.policy(name))
        bucket = self._bucket(name, limits.requests_per_minute)

        retry = self.quota.retry_after()
        if retry is not None:
            raise self._refuse(
                name,
                limits,
                "usage_limit",
                f"The ChatGPT plan behind this API has reached its usage limit; it resets in {retry} s.",
                "usage_limit_reached",
                retry,
            )
        if limits.tokens_per_day:
            used = self.usage.tokens_today(name)
            if used >= limits.tokens_per_day:
                wait = math.ceil(_seconds_to_utc_midnight(self.wall()))
                raise self._refuse(
                    name,
                    limits,
                    "tokens_exceeded",
                    f"Key `{name}` has used its {limits.tokens_per_day} tokens for today (UTC); "
                    f"the budget resets at 00:00 UTC.",
                    "tokens_exceeded",
                    wait,
                )
        if bucket is not None:
            wait_s = bucket.take(self.clock())
            if wait_s is not None:
                raise self._refuse(
                    name,
                    limits,
                    "rate_limited",
                    f"Rate limit reached for key `{name}`: {limits.requests_per_minute} requests per minute.",
                    "rate_limit_exceeded",
                    math.ceil(wait_s),
                )
        holds_slot = False
        if limits.max_concurrent is not None:
            try:
                await self._acquire(name, limits.max_concurrent)
            except ApiError:
                if bucket is not None:
                    bucket.give_back()  # not served: the request does not count against the rate
                raise self._refuse(
                    name,
                    limits,
                    "concurrency_exceeded",
                    f"Key `{name}` already has {limits.max_concurrent} requests in progress "
                    f"(its share of {self.capacity} worker slots); retry when one finishes.",
                    "concurrency_exceeded",
                    1,
                ) from None
            holds_slot = True
        return Admission(self, name, self.headers(name, limits), holds_slot)

    def _refuse(
        self, name: str, limits: EffectiveLimits, outcome: str, message: str, code: str, retry_after: int
    ) -> ApiError:
        note = request_note.current()
        if note is not None:
            note.outcome = outcome
        headers = {**self.headers(name, limits), "Retry-After": str(max(1, retry_after))}
        return ApiError(429, message, type="rate_limit_error", code=code, headers=headers)

    async def _acquire(self, name: str, limit: int) -> None:
        state = self._key(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_timeout
        while state.in_flight >= limit:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ApiError(429, "concurrency")
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), remaining)
            finally:
                with contextlib.suppress(ValueError):
                    state.waiters.remove(waiter)
        state.in_flight += 1

    def _release(self, name: str) -> None:
        state = self._key(name)
        state.in_flight -= 1
        while state.waiters:
            waiter = state.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def in_flight(self, name: str) -> int:
        state = self._state.get(name)
        return state.in_flight if state else 0


async def guarded(
    limiter: KeyLimiter, quota: PlanQuota, name: str, run: Callable[[], Awaitable[Response[Any]]]
) -> Response[Any]:
    """Admit `name`'s request, run it, and put the rate-limit headers on whatever it answers.

    The concurrency slot is released when the response has been fully sent (the edge middleware runs the
    request's end-of-response callbacks; a stream holds its slot until it ends)."""
    admission = await limiter.admit(name)
    note = request_note.current()
    if note is not None:
        note.on_finish.append(admission.release)
    try:
        try:
            response = await run()
        except ApiError as exc:
            exc.headers = {**admission.headers, **exc.headers}
            if exc.status == 429 and exc.code == USAGE_LIMIT_EXCEEDED:
                _plan_retry_after(quota, exc.headers)
            raise
    finally:
        if note is None:
            admission.release()
    for header, value in admission.headers.items():
        response.headers.setdefault(header, value)
    body = response.content
    if response.status_code == 429 and isinstance(body, bytes) and USAGE_LIMIT_EXCEEDED.encode() in body:
        _plan_retry_after(quota, response.headers)
    return response


USAGE_LIMIT_EXCEEDED = "usage_limit_exceeded"  # app.errors' code for the turn that hit the plan's limit


def _plan_retry_after(quota: PlanQuota, headers: dict[str, str]) -> None:
    """The turn that hit the plan's usage limit: Retry-After from the window's reset, not a fixed 30 s."""
    retry = quota.retry_after()
    if retry is not None:
        headers["Retry-After"] = str(retry)
