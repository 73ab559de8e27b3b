"""The ChatGPT plan's own quota, as Codex reports it: the 5-hour (primary) and weekly (secondary) windows.

Codex sends `account/rateLimits/updated` after each model response that carried rate-limit information, and
answers `account/rateLimits/read` when logged in with ChatGPT; `PlanQuota` merges both into one snapshot per
limit id (updates are sparse). When a turn fails with `usageLimitExceeded`, the plan is out of quota: new
generation requests are refused at once with 429 `usage_limit_reached` and a `Retry-After` computed from the
exhausted window's reset time, instead of starting turns that can only fail. The block ends at that reset
time. When no exhausted window with a reset time is known, nothing is blocked (each turn fails as before).

Everything here runs on the event loop (the worker's reader calls the observers), so no locks are needed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import msgspec

from app.codex import rate_limits as rl
from app.codex.client import RpcClient

logger = logging.getLogger(__name__)

MAIN_LIMIT = "codex"
MAX_BLOCK_S = 8 * 24 * 3600  # a weekly window plus margin; anything longer is a bad timestamp


class WindowView(msgspec.Struct, frozen=True):
    used_percent: int
    window_minutes: int | None
    resets_at: int | None  # epoch seconds
    resets_in_s: int | None


class LimitView(msgspec.Struct, frozen=True):
    limit_id: str
    limit_name: str | None
    primary: WindowView | None
    secondary: WindowView | None


class PlanQuotaView(msgspec.Struct, frozen=True):
    """What `/healthz`, `/metrics` and `/v1/usage` show. `known` is false until Codex reported anything."""

    known: bool
    plan_type: str | None = None
    limits: list[LimitView] = msgspec.field(default_factory=list)
    has_credits: bool | None = None
    usage_limit_reached: bool = False
    blocked_until: int | None = None  # epoch seconds
    retry_after_s: int | None = None
    updated_at: int | None = None  # epoch milliseconds


def _merge(old: rl.RateLimitSnapshot | None, new: rl.RateLimitSnapshot) -> rl.RateLimitSnapshot:
    """Sparse update: fields the update leaves null keep their last value."""
    if old is None:
        return new
    return rl.RateLimitSnapshot(
        limit_id=new.limit_id or old.limit_id,
        limit_name=new.limit_name or old.limit_name,
        primary=new.primary or old.primary,
        secondary=new.secondary or old.secondary,
        credits=new.credits or old.credits,
        plan_type=new.plan_type or old.plan_type,
        rate_limit_reached_type=new.rate_limit_reached_type,
    )


def _safe(handler: Callable[[msgspec.Raw], None]) -> Callable[[msgspec.Raw], None]:
    def observe(raw: msgspec.Raw) -> None:
        try:
            handler(raw)
        except Exception:
            logger.exception("plan quota: notification not understood")

    return observe


class PlanQuota:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.limits: dict[str, rl.RateLimitSnapshot] = {}
        self.updated_at: float | None = None
        self.blocked_until: float | None = None

    # ---- inputs -------------------------------------------------------------------------------------------

    def observers(self) -> dict[str, Callable[[msgspec.Raw], None]]:
        """Notification method → handler, for the RPC client (called on the worker's reader: never raises,
        never blocks, so a bad payload can never take the reader down)."""
        return {rl.UPDATED: _safe(self._on_updated), rl.ERROR: _safe(self._on_error)}

    def _on_updated(self, raw: msgspec.Raw) -> None:
        try:
            update = rl.decode_updated(raw)
        except msgspec.DecodeError as exc:
            logger.warning("could not decode %s: %s", rl.UPDATED, exc)
            return
        self.merge(update.rate_limits)

    def _on_error(self, raw: msgspec.Raw) -> None:
        try:
            error = rl.decode_error(raw)
            info = error.info()
        except msgspec.DecodeError:
            return
        if info == "usageLimitExceeded" and not error.will_retry:
            self.limit_reached()

    def merge(self, snapshot: rl.RateLimitSnapshot, limit_id: str | None = None) -> None:
        key = limit_id or snapshot.limit_id or MAIN_LIMIT
        self.limits[key] = _merge(self.limits.get(key), snapshot)
        self.updated_at = self.clock()

    def limit_reached(self) -> None:
        """Codex reported the plan's usage limit: block until the exhausted window resets."""
        now = self.clock()
        resets = [
            w.resets_at
            for snap in self.limits.values()
            for w in (snap.primary, snap.secondary)
            if w is not None and w.used_percent >= 100 and w.resets_at is not None and w.resets_at > now
        ]
        if not resets:
            # No exhausted window with a reset time: nothing to compute a Retry-After from, and refusing
            # without one could refuse wrongly (e.g. credits still available). Turns keep running.
            logger.warning("codex reported the plan's usage limit, but no window with a reset time is known")
            return
        self.blocked_until = min(max(resets), now + MAX_BLOCK_S)
        logger.warning(
            "the plan's usage limit is reached: generation requests get 429 usage_limit_reached for %d s",
            math.ceil(self.blocked_until - now),
        )

    async def refresh(self, client: RpcClient, timeout: float) -> None:
        """Ask codex for the full snapshot (`account/rateLimits/read`, ChatGPT login only); never raises."""
        try:
            result = await client.request(
                rl.READ, rl.AccountRateLimitsReadParams(), timeout=timeout, result_type=rl.AccountRateLimitsReadResult
            )
        except Exception as exc:  # an API-key login or an older codex: the notifications still arrive
            logger.info("%s unavailable: %s", rl.READ, exc)
            return
        for limit_id, snap in (result.rate_limits_by_limit_id or {}).items():
            self.merge(snap, limit_id)
        if not result.rate_limits_by_limit_id:
            self.merge(result.rate_limits)

    # ---- outputs ------------------------------------------------------------------------------------------

    def _remaining(self) -> int | None:
        until = self.blocked_until
        if until is None:
            return None
        remaining = until - self.clock()
        return max(1, math.ceil(remaining)) if remaining > 0 else None

    def retry_after(self) -> int | None:
        """Seconds until the plan can serve again, or None when it is not blocked (event loop only)."""
        remaining = self._remaining()
        if remaining is None and self.blocked_until is not None:
            self.blocked_until = None
            logger.info("the plan's usage window has reset: serving generation requests again")
        return remaining

    def view(self) -> PlanQuotaView:
        """A consistent read-only view (also called from the usage route's worker thread)."""
        now = self.clock()
        retry = self._remaining()
        until = self.blocked_until

        def window(w: rl.RateLimitWindow | None) -> WindowView | None:
            if w is None:
                return None
            left = max(0, math.ceil(w.resets_at - now)) if w.resets_at is not None else None
            return WindowView(w.used_percent, w.window_duration_mins, w.resets_at, left)

        ordered = sorted(dict(self.limits).items(), key=lambda kv: (kv[0] != MAIN_LIMIT, kv[0]))
        plan_type = next((s.plan_type for _, s in ordered if s.plan_type), None)
        credits = next((s.credits for _, s in ordered if s.credits), None)
        return PlanQuotaView(
            known=bool(self.limits),
            plan_type=plan_type,
            limits=[LimitView(k, s.limit_name, window(s.primary), window(s.secondary)) for k, s in ordered],
            has_credits=None if credits is None else (credits.has_credits or credits.unlimited),
            usage_limit_reached=retry is not None,
            blocked_until=int(until) if retry is not None and until else None,
            retry_after_s=retry,
            updated_at=int(self.updated_at * 1000) if self.updated_at is not None else None,
        )
