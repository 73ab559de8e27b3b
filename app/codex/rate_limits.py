"""Protocol structs for the plan's rate limits (codex-cli 0.169.0, `app/codex/schema/v2`).

`account/rateLimits/read` (ChatGPT login only; with any other auth codex answers -32600 "codex account
authentication required to read rate limits") and the `account/rateLimits/updated` notification, which codex
sends whenever a model response carried rate-limit information — the ChatGPT backend's `x-codex-primary-*` /
`x-codex-secondary-*` response headers. Verified with the real binary: codex parses those headers from a
custom provider too, so the offline model can emulate them. Kept apart from `protocol.py` so the plan-quota
feature touches that file only to stop opting out of the notification.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw, Struct


class _Camel(Struct, rename="camel", omit_defaults=True):
    pass


class _FrozenCamel(Struct, rename="camel", omit_defaults=True, frozen=True):
    pass


class RateLimitWindow(_FrozenCamel, frozen=True):
    used_percent: int = 0
    window_duration_mins: int | None = None
    resets_at: int | None = None  # epoch seconds


class CreditsSnapshot(_FrozenCamel, frozen=True):
    has_credits: bool = False
    unlimited: bool = False
    balance: str | None = None


class RateLimitSnapshot(_FrozenCamel, frozen=True):
    """Sparse in notifications: a null field means "not in this update", never "cleared"."""

    limit_id: str | None = None
    limit_name: str | None = None
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None
    credits: CreditsSnapshot | None = None
    plan_type: str | None = None
    rate_limit_reached_type: str | None = None


class AccountRateLimitsUpdated(_Camel):
    rate_limits: RateLimitSnapshot


class AccountRateLimitsReadParams(_Camel):
    """`account/rateLimits/read` takes no parameters."""


class AccountRateLimitsReadResult(_Camel):
    rate_limits: RateLimitSnapshot
    rate_limits_by_limit_id: dict[str, RateLimitSnapshot] | None = None


class _ErrorInfo(_Camel):
    codex_error_info: Raw = Raw()


class ErrorNotificationInfo(_Camel):
    """Just enough of the `error` notification to recognise `usageLimitExceeded`."""

    error: _ErrorInfo
    will_retry: bool = False

    def info(self) -> str | None:
        raw = self.error.codex_error_info
        if not raw:
            return None
        value = msgspec.json.decode(raw)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value:
            return str(next(iter(value)))
        return None


UPDATED = "account/rateLimits/updated"
ERROR = "error"
READ = "account/rateLimits/read"
decode_updated = msgspec.json.Decoder(AccountRateLimitsUpdated).decode
decode_error = msgspec.json.Decoder(ErrorNotificationInfo).decode
