"""Per-app state the handlers share: settings, backend, key store, edge trust, stream guard."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from litestar import Request

from app import model_ids
from app.api import request_note
from app.api.limits import KeyLimiter
from app.api.maintenance import Maintenance
from app.api.metrics_store import Metrics
from app.backend import ModelBackend
from app.codex.turn import TurnSource
from app.errors import ApiError, unauthorized
from app.image_fetch import GuardedBackend, ImageFetcher, parse_allowlist
from app.model_ids import ResolvedModel
from app.settings import Settings
from app.usage import UsageLog
from authd.keys import USAGE_ALL, KeyStore, parse_bearer

logger = logging.getLogger(__name__)


class StreamGuard:
    """Counts open SSE responses; `PROXY_SSE_MAX_CONCURRENCY` (0 = off) caps them with a 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> None:
        if self.limit and self.active >= self.limit:
            raise ApiError(
                429,
                "too many concurrent streams",
                type="rate_limit_error",
                code="concurrency_exceeded",
                # The connection is closed after the refusal: an idle keep-alive connection would still hold one of
                # the process's PROXY_MAX_CONNECTIONS slots (issue 15).
                headers={"Retry-After": "1", "Connection": "close"},
            )
        self.active += 1

    def release(self) -> None:
        self.active -= 1


class ApiContext:
    def __init__(self, settings: Settings, turns: TurnSource | None = None) -> None:
        self.settings = settings
        self.backend = ModelBackend(settings, turns)
        keys_file = Path(settings.api_keys_file) if settings.api_keys_file else None
        self.keys = KeyStore(settings.api_key or None, keys_file)
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]
        self.streams = StreamGuard(settings.sse_max_concurrency)
        self.metrics = Metrics()
        self.usage = UsageLog(
            settings.usage_log_path,
            max_bytes=settings.usage_log_max_bytes,
            max_files=settings.usage_log_max_files,
            on_append=request_note.note_usage,
        )
        self.aliases = dict(settings.model_aliases)
        self.limiter = KeyLimiter(settings, self.keys, self.usage, self.backend.quota)
        self.images = ImageFetcher(
            max_bytes=settings.image_max_bytes,
            timeout_s=settings.image_fetch_timeout_ms / 1000,
            concurrency=settings.image_fetch_concurrency,
            backend=GuardedBackend(parse_allowlist(settings.image_fetch_test_allowlist)),
        )
        self.maintenance = Maintenance(
            settings.maintenance_mode, settings.maintenance_path, settings.maintenance_retry_after_s
        )

    def may_read_all_usage(self, name: str) -> bool:
        """`usage:all` in the keys file (or the single-key setup): may read every key's usage records."""
        return USAGE_ALL in self.keys.policy(name).scopes

    def authenticate(self, request: Request) -> str:
        """Defence in depth behind authd: the same key set, compared in constant time. Returns the key name."""
        self.keys.reload_if_changed()
        token = parse_bearer(request.headers.getall("authorization", []))
        name = self.keys.lookup(token) if token is not None else None
        if name is None:
            raise unauthorized()
        edge_user = request.headers.get("x-auth-user")
        if edge_user is not None and (edge_user != name or not self.from_trusted_proxy(request)):
            # authd names the same key the app just resolved, so a different name, or one from an untrusted
            # address, is somebody choosing their identity (issue 13): ignored, the key's own name is recorded.
            logger.warning(
                "ignored X-Auth-User %r from %s: %s",
                edge_user[:64],
                request.client.host if request.client else "?",
                "not a trusted proxy" if not self.from_trusted_proxy(request) else f"the key is {name!r}",
            )
        request.scope.setdefault("state", {})["auth_user"] = name
        return name

    def from_trusted_proxy(self, request: Request) -> bool:
        client = request.client.host if request.client else None
        if not client:
            return False
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def resolve_model(self, model: str) -> ResolvedModel | None:
        return model_ids.resolve(
            model,
            default_model=self.settings.codex_model,
            account_models=self.backend.account_models,
            aliases=self.aliases,
        )

    def model_ids(self) -> list[str]:
        ids = model_ids.advertised(self.settings.env)
        return ids + [m for m in self.backend.account_models if m not in ids]
