"""Domain errors and the exception handlers that turn them into OpenAI error envelopes.

Only these handlers build error bodies: every error, including Litestar's own (404 route, 405, 413, validation)
and unexpected exceptions, leaves the app as `{"error":{"message","type","param","code"}}` with JSON content type.
"""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.codex.turn import CodexError
from app.login_state import is_auth_failure
from app.openai.errors import ErrorDetail, ErrorEnvelope

logger = logging.getLogger(__name__)

LOGIN_HINT = (
    "The server's Codex login is missing, expired or revoked, so it cannot answer model requests. "
    "The operator must log the service in again (`make login`, or `ansible-playbook login.yml --limit <host>`, "
    "which run `codex login --device-auth` for the server's Codex home); /readyz on the host says more."
)


class ApiError(Exception):
    """An error with its HTTP status and OpenAI envelope fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(error=ErrorDetail(message=self.message, type=self.type, param=self.param, code=self.code))


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        type="authentication_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer realm=api"},
    )


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def not_ready(reason: str) -> ApiError:
    """503 while no Codex worker can take the request; the reason names the fix (see /readyz)."""
    return ApiError(
        503,
        f"No Codex worker is ready: {reason}",
        type="server_error",
        code="worker_not_ready",
        headers={"Retry-After": "2"},
    )


def login_required() -> ApiError:
    """503 when the backend has no usable Codex login (never the offline model in its place; issue 10)."""
    return ApiError(503, LOGIN_HINT, type="server_error", code="codex_login_required", headers={"Retry-After": "30"})


def timeout_error(message: str, code: str) -> ApiError:
    return ApiError(504, message, type="timeout_error", code=code)


_RETRY_AFTER = {"Retry-After": "30"}


def from_codex(err: CodexError) -> ApiError:
    """Map a codex failure (codexErrorInfo, JSON-RPC error, lost worker) to the right HTTP status and code."""
    info = err.info or ""
    msg = err.message or "codex reported an error"
    if err.rpc_code == -32001 or info == "serverOverloaded":
        return ApiError(
            503,
            "The model backend is overloaded; retry shortly.",
            type="server_error",
            code="server_overloaded",
            headers=_RETRY_AFTER,
        )
    if info == "contextWindowExceeded":
        return ApiError(400, msg, code="context_length_exceeded", param="messages")
    if info in ("usageLimitExceeded", "rateLimitExceeded"):
        return ApiError(
            429,
            msg,
            type="rate_limit_error",
            code="usage_limit_exceeded" if info == "usageLimitExceeded" else "rate_limit_exceeded",
            headers=_RETRY_AFTER,
        )
    if info == "sessionBudgetExceeded":
        return ApiError(429, msg, type="insufficient_quota", code="insufficient_quota")
    if is_auth_failure(err):
        return login_required()
    if info == "modelNotFound":
        return ApiError(404, msg, code="model_not_found", param="model")
    if "not supported when using Codex with a ChatGPT account" in msg:
        return ApiError(404, msg, code="model_not_found", param="model")
    if info in ("badRequest", "cyberPolicy", "misalignmentPolicyViolation", "inferenceHookDenied"):
        return ApiError(400, msg, code="invalid_request" if info == "badRequest" else "content_policy_violation")
    if info == "workerLost":
        return ApiError(
            502, "The Codex worker serving this request exited; retry.", type="server_error", code="worker_exited"
        )
    if err.http_status == 429:
        return ApiError(429, msg, type="rate_limit_error", code="rate_limit_exceeded", headers=_RETRY_AFTER)
    if err.http_status in (408, 504):
        return timeout_error(msg, "upstream_timeout")
    return ApiError(502, msg, type="server_error", code="upstream_error")


# ---- Litestar exception handlers -----------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()


def error_response(err: ApiError) -> Response[bytes]:
    return Response(
        _ENCODER.encode(err.envelope()), status_code=err.status, media_type="application/json", headers=err.headers
    )


def handle_api_error(_: Request, exc: ApiError) -> Response[bytes]:
    return error_response(exc)


def handle_http_exception(_: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        return error_response(ApiError(400, str(exc.detail) or "invalid request", code="invalid_request"))
    codes = {
        401: ("authentication_error", "invalid_api_key"),
        404: ("invalid_request_error", "not_found"),
        405: ("invalid_request_error", "method_not_allowed"),
        413: ("invalid_request_error", "request_entity_too_large"),
        415: ("invalid_request_error", "unsupported_media_type"),
    }
    err_type, code = codes.get(status, ("server_error" if status >= 500 else "invalid_request_error", "http_error"))
    message = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(status, str(exc.detail))
    headers = dict(exc.headers or {})
    return error_response(ApiError(status, message, type=err_type, code=code, headers=headers))


def handle_unexpected(request: Request, exc: Exception) -> Response[bytes]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error", type="server_error", code="internal_error")
    )


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
