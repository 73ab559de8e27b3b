"""The per-key limiter in-process, on a fake clock: request rate, fair concurrency share, token budget, plan gate."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import msgspec
import pytest

from app.api.limits import KeyLimiter, TokenBucket, openai_duration
from app.codex import rate_limits as rl
from app.errors import ApiError
from app.quota import PlanQuota
from app.settings import Settings
from app.usage import UsageLog, UsageRecord
from authd.keys import KeyStore


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0ms"), (0.02, "20ms"), (1, "1s"), (59.2, "1m0s"), (360, "6m0s"), (3723, "1h2m3s")],
)
def test_openai_duration_format(seconds: float, text: str) -> None:
    assert openai_duration(seconds) == text


def test_token_bucket_bursts_then_refills_at_rpm_per_minute() -> None:
    bucket = TokenBucket(3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(0.0) == pytest.approx(20.0)  # 60 s / 3 per request
    assert bucket.take(10.0) == pytest.approx(10.0)
    assert bucket.take(20.0) is None
    assert bucket.remaining(20.0) == 0
    assert bucket.reset_in(20.0) == pytest.approx(60.0)


def keys_file(tmp_path: Path, entries: list[dict]) -> Path:
    for e in entries:
        e.setdefault("sha256", hashlib.sha256(e["name"].encode()).hexdigest())
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": entries}))
    return path


def limiter(
    tmp_path: Path, entries: list[dict] | None, clock: Clock, quota: PlanQuota | None = None, **settings: object
) -> KeyLimiter:
    fields: dict[str, object] = {"worker_count": 1, "worker_max_concurrency": 4, "worker_queue_timeout_ms": 200}
    s = Settings(**{**fields, **settings})  # type: ignore[arg-type]
    store = KeyStore("the-env-key", keys_file(tmp_path, entries) if entries is not None else None)
    usage = UsageLog(tmp_path / "usage.ndjson", clock=clock)
    return KeyLimiter(s, store, usage, quota or PlanQuota(clock=clock), clock=clock, wall=clock)


async def test_each_key_has_its_own_request_bucket(tmp_path: Path) -> None:
    clock = Clock()
    unlimited = {"max_concurrent": 0}
    lim = limiter(
        tmp_path,
        [{"name": "a", "limits": {"requests_per_minute": 2, **unlimited}}, {"name": "b", "limits": unlimited}],
        clock,
    )
    first = await lim.admit("a")
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    await lim.admit("a")
    with pytest.raises(ApiError) as refused:
        await lim.admit("a")
    err = refused.value
    assert (err.status, err.code, err.headers["Retry-After"]) == (429, "rate_limit_exceeded", "30")
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    other = await lim.admit("b")  # the default 600/min, untouched by a's burst
    assert (other.headers["x-ratelimit-limit-requests"], other.headers["x-ratelimit-remaining-requests"]) == (
        "600",
        "599",
    )
    clock.now += 30
    assert (await lim.admit("a")).headers["x-ratelimit-remaining-requests"] == "0"


async def test_a_single_key_is_not_capped_below_the_pool(tmp_path: Path) -> None:
    lim = limiter(tmp_path, None, Clock())
    held = [await lim.admit("default") for _ in range(10)]  # the pool's own queue decides (worker_busy)
    assert len(held) == 10 and lim.in_flight("default") == 0


async def test_several_keys_get_a_fair_share_of_the_pool(tmp_path: Path) -> None:
    # Two file keys + the env key = 3 usable keys on 4 slots: a share of 1 each (4 // 3).
    lim = limiter(tmp_path, [{"name": "a"}, {"name": "b"}, {"name": "old", "disabled": True}], Clock())
    slot = await lim.admit("a")
    with pytest.raises(ApiError) as refused:
        await lim.admit("a")
    assert (refused.value.code, refused.value.headers["Retry-After"]) == ("concurrency_exceeded", "1")
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "599"  # the refused one was given back
    await lim.admit("b")  # another key is served at once
    slot.release()
    slot.release()  # idempotent
    assert lim.in_flight("a") == 0


async def test_a_key_at_its_share_waits_for_its_own_slot(tmp_path: Path) -> None:
    lim = limiter(tmp_path, [{"name": "a", "limits": {"max_concurrent": 1}}], Clock(), worker_queue_timeout_ms=5000)
    slot = await lim.admit("a")
    waiting = asyncio.create_task(lim.admit("a"))
    await asyncio.sleep(0)
    assert not waiting.done()
    slot.release()
    second = await asyncio.wait_for(waiting, 5)
    assert lim.in_flight("a") == 1
    second.release()


async def test_explicit_and_env_concurrency_limits(tmp_path: Path) -> None:
    lim = limiter(tmp_path, [{"name": "a", "limits": {"max_concurrent": 0}}, {"name": "b"}], Clock())
    for _ in range(6):
        await lim.admit("a")  # 0 = unlimited for this key
    env = limiter(tmp_path, None, Clock(), key_max_concurrent=2)
    await env.admit("default")
    await env.admit("default")
    with pytest.raises(ApiError):
        await env.admit("default")


async def test_token_budget_uses_todays_exact_usage(tmp_path: Path) -> None:
    clock = Clock(1_796_000_000.0)
    lim = limiter(tmp_path, [{"name": "a", "limits": {"tokens_per_day": 100}}], clock)
    first = await lim.admit("a")
    assert (first.headers["x-ratelimit-limit-tokens"], first.headers["x-ratelimit-remaining-tokens"]) == ("100", "100")
    lim.usage.append(
        UsageRecord(
            ts=int(clock.now * 1000), request_id="r", route="/v1/chat/completions", model="m", key="a",
            stream=False, outcome="completed", duration_ms=1, total_tokens=100,
        )
    )  # fmt: skip
    with pytest.raises(ApiError) as refused:
        await lim.admit("a")
    assert refused.value.code == "tokens_exceeded"
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "0"
    seconds_left = 86_400 - int(clock.now) % 86_400
    assert int(refused.value.headers["Retry-After"]) == seconds_left
    lim.usage.close()


async def test_the_plans_usage_limit_is_checked_first(tmp_path: Path) -> None:
    clock = Clock(1_796_000_000.0)
    quota = PlanQuota(clock=clock)
    snapshot = {"rateLimits": {"primary": {"usedPercent": 100, "windowDurationMins": 300, "resetsAt": 1_796_000_090}}}
    quota.observers()[rl.UPDATED](msgspec.Raw(json.dumps(snapshot).encode()))
    quota.limit_reached()
    lim = limiter(tmp_path, [{"name": "a", "limits": {"requests_per_minute": 1, "max_concurrent": 0}}], clock, quota)
    with pytest.raises(ApiError) as refused:
        await lim.admit("a")
    assert (refused.value.code, refused.value.headers["Retry-After"]) == ("usage_limit_reached", "90")
    clock.now += 90
    admitted = await lim.admit("a")  # the refusal did not spend the key's one request
    assert admitted.headers["x-ratelimit-remaining-requests"] == "0"
