"""The authd verifier behind Litestar, only to measure what the framework costs (bench/authd.py).

Same Verifier and responses as authd/server.py; not shipped or used in production.
"""

from __future__ import annotations

from litestar import Litestar, Request, Response, route
from litestar.enums import HttpMethod

from authd.server import Verifier, load_store
from authd.settings import Settings

_ALL = [HttpMethod.GET, HttpMethod.POST, HttpMethod.HEAD, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]


def create_app() -> Litestar:
    settings = Settings.from_env()
    verifier = Verifier(settings, load_store(settings))

    def answer(request: Request) -> Response[bytes]:
        status, headers, body = verifier.handle(
            request.method, request.url.path, request.headers.getall("authorization", [])
        )
        return Response(content=body, status_code=status, headers=dict(headers), media_type=None)

    @route(["/verify", "/healthz"], http_method=[*_ALL, HttpMethod.OPTIONS], sync_to_thread=False)
    def verify(request: Request) -> Response[bytes]:
        return answer(request)

    return Litestar(route_handlers=[verify], openapi_config=None, logging_config=None)
