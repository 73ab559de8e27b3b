"""The plan's quota from codex's notifications (payloads as codex 0.169.0 sent them to the app)."""

from __future__ import annotations

import json

import msgspec
import pytest

from app.codex import rate_limits as rl
from app.quota import MAX_BLOCK_S, PlanQuota


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


NOW = 1_796_171_800.0
# account/rateLimits/updated as codex sent it after a provider response with x-codex-* headers.
UPDATED = {
    "rateLimits": {
        "limitId": "codex",
        "limitName": None,
        "normalModelSlug": None,
        "primary": {"usedPercent": 43, "windowDurationMins": 300, "resetsAt": 1_796_175_401},
        "secondary": {"usedPercent": 7, "windowDurationMins": 10080, "resetsAt": 1_796_261_801},
        "credits": None,
        "individualLimit": None,
        "spendControlReached": None,
        "planType": None,
        "rateLimitReachedType": None,
    }
}
ERROR = {
    "error": {"message": "You've hit your usage limit.", "codexErrorInfo": "usageLimitExceeded"},
    "willRetry": False,
    "threadId": "t",
    "turnId": "u",
}


def feed(quota: PlanQuota, method: str, params: dict) -> None:
    quota.observers()[method](msgspec.Raw(json.dumps(params).encode()))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def test_an_update_shows_both_windows(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    assert quota.view().known is False
    feed(quota, rl.UPDATED, UPDATED)
    view = quota.view()
    assert view.known and not view.usage_limit_reached
    (limit,) = view.limits
    assert limit.limit_id == "codex"
    assert limit.primary is not None and limit.secondary is not None
    assert (limit.primary.used_percent, limit.primary.window_minutes, limit.primary.resets_at) == (43, 300, 1796175401)
    assert limit.primary.resets_in_s == 1796175401 - int(NOW)
    assert limit.secondary.used_percent == 7


def test_updates_are_sparse_and_merge(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    feed(quota, rl.UPDATED, UPDATED)
    feed(quota, rl.UPDATED, {"rateLimits": {"primary": {"usedPercent": 60, "resetsAt": 1_796_175_401}}})
    (limit,) = quota.view().limits
    assert limit.primary is not None and limit.primary.used_percent == 60
    assert limit.secondary is not None and limit.secondary.used_percent == 7  # kept from the earlier update


def test_usage_limit_blocks_until_the_exhausted_windows_reset(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    full = {"usedPercent": 100, "windowDurationMins": 300, "resetsAt": int(NOW) + 120}
    feed(quota, rl.UPDATED, {"rateLimits": {**UPDATED["rateLimits"], "primary": full}})
    feed(quota, rl.ERROR, ERROR)
    assert quota.retry_after() == 120
    view = quota.view()
    assert (view.usage_limit_reached, view.blocked_until, view.retry_after_s) == (True, int(NOW) + 120, 120)
    clock.now += 119.5
    assert quota.retry_after() == 1
    clock.now += 0.5
    assert quota.retry_after() is None
    assert quota.view().usage_limit_reached is False


def test_both_windows_exhausted_wait_for_the_later_reset(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    feed(
        quota,
        rl.UPDATED,
        {
            "rateLimits": {
                "primary": {"usedPercent": 100, "resetsAt": int(NOW) + 60},
                "secondary": {"usedPercent": 100, "resetsAt": int(NOW) + 3600},
            }
        },
    )
    quota.limit_reached()
    assert quota.retry_after() == 3600


def test_no_block_without_a_known_reset_time(clock: Clock) -> None:
    """Nothing to compute Retry-After from (e.g. no rate-limit headers at all): turns keep running."""
    quota = PlanQuota(clock=clock)
    feed(quota, rl.ERROR, ERROR)
    assert quota.retry_after() is None
    feed(quota, rl.UPDATED, UPDATED)  # known windows, but none exhausted
    feed(quota, rl.ERROR, ERROR)
    assert quota.retry_after() is None


def test_other_errors_and_retried_errors_do_not_block(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    feed(quota, rl.UPDATED, {"rateLimits": {"primary": {"usedPercent": 100, "resetsAt": int(NOW) + 60}}})
    feed(quota, rl.ERROR, {**ERROR, "error": {"message": "x", "codexErrorInfo": "serverOverloaded"}})
    feed(quota, rl.ERROR, {**ERROR, "error": {"message": "x", "codexErrorInfo": {"httpConnectionFailed": {}}}})
    feed(quota, rl.ERROR, {**ERROR, "willRetry": True})  # codex retries by itself: not the end of the turn
    assert quota.retry_after() is None


def test_an_absurd_reset_time_is_capped(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    feed(quota, rl.UPDATED, {"rateLimits": {"primary": {"usedPercent": 100, "resetsAt": int(NOW) + 10**9}}})
    quota.limit_reached()
    assert quota.retry_after() == MAX_BLOCK_S


def test_garbage_notifications_are_ignored(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    quota.observers()[rl.UPDATED](msgspec.Raw(b'{"rateLimits": 12}'))
    quota.observers()[rl.ERROR](msgspec.Raw(b"[]"))
    quota.observers()[rl.ERROR](msgspec.Raw(b'{"error": {"codexErrorInfo": "usageLimitExceeded"}, "willRetry": 3}'))
    assert quota.view().known is False
    assert quota.retry_after() is None


class _Client:
    """Stands in for a leased worker's RpcClient: answers account/rateLimits/read like codex with a ChatGPT login."""

    def __init__(self, answer: dict | Exception) -> None:
        self.answer = answer
        self.calls: list[str] = []

    async def request(self, method: str, params: object, *, timeout: float, result_type: type) -> object:
        self.calls.append(method)
        if isinstance(self.answer, Exception):
            raise self.answer
        return msgspec.json.decode(json.dumps(self.answer), type=result_type)


async def test_refresh_reads_every_limit_id(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    window = {"usedPercent": 12, "windowDurationMins": 300, "resetsAt": int(NOW) + 600}
    answer = {
        "rateLimits": {"limitId": "codex", "primary": window, "planType": "pro"},
        "rateLimitsByLimitId": {
            "codex": {"limitId": "codex", "primary": window, "planType": "pro"},
            "codex_other": {"limitId": "codex_other", "secondary": {**window, "usedPercent": 3}},
        },
        "rateLimitResetCredits": None,
    }
    client = _Client(answer)
    await quota.refresh(client, 5.0)  # type: ignore[arg-type]
    view = quota.view()
    assert client.calls == [rl.READ]
    assert [limit.limit_id for limit in view.limits] == ["codex", "codex_other"]  # the main limit first
    assert view.plan_type == "pro"
    assert view.limits[0].primary is not None and view.limits[0].primary.used_percent == 12


async def test_refresh_without_a_chatgpt_login_changes_nothing(clock: Clock) -> None:
    quota = PlanQuota(clock=clock)
    await quota.refresh(_Client(RuntimeError("codex account authentication required")), 5.0)  # type: ignore[arg-type]
    assert quota.view().known is False
