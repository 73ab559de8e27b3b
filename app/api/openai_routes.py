"""The OpenAI-compatible routes: chat completions, legacy completions, responses, models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec
from litestar import Request, Response, get, head, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from app.api import bounds, limits
from app.api.context import ApiContext
from app.api.images import inline_remote_images
from app.api.pipeline import decode_body, execute, plan_or_error
from app.errors import ApiError, model_not_found, not_ready
from app.openai.chat import ChatCompletionRequest, CompletionRequest
from app.openai.models import Model, ModelList
from app.openai.responses import ResponsesRequest
from app.settings import OUTPUT_MODE_SPELLINGS, Settings
from app.translate.inbound.chat import plan_chat, plan_completion
from app.translate.inbound.responses import plan_responses
from app.translate.outbound.chat import ChatEncoder
from app.translate.outbound.completions import CompletionsEncoder
from app.translate.outbound.obsidian import with_output_mode
from app.translate.outbound.responses import ResponsesEncoder
from app.translate.outbound.sse import EncoderFactory
from app.translate.plan import OutputMode, ToolStreamPolicy, TurnPlan

JSON = "application/json"
B = TypeVar("B")


def _ctx(state: State) -> ApiContext:
    return state.api


async def _generate(
    request: Request,
    state: State,
    body_type: type[B],
    plan: Callable[[B, ApiContext, OutputMode], TurnPlan],
    encoder: EncoderFactory,
    default_mode: OutputMode,
) -> Response[bytes] | Stream:
    """The one generation path: auth → per-key limits → bounds → decode → plan (validation) → fetch remote
    images → execute in the request's wire format and output mode."""
    ctx = _ctx(state)
    key = ctx.authenticate(request)
    ctx.maintenance.check()
    mode = output_mode(request, default_mode)

    async def run() -> Response[bytes] | Stream:
        raw = await request.body()
        bounds.check_raw(raw, ctx.settings)  # nesting depth and array sizes, before the (recursive) decoder runs
        body = decode_body(raw, body_type)
        bounds.check_request(body, ctx.settings)  # items, content parts, tools, text bytes
        planned = _outbound(plan_or_error(plan, body, ctx, mode), ctx.settings)
        planned = await inline_remote_images(ctx.images, planned)
        return await execute(ctx, request, planned, with_output_mode(encoder))

    return await limits.guarded(ctx.limiter, ctx.backend.quota, key, run)


def output_mode(request: Request, default: OutputMode) -> OutputMode:
    """`x-proxy-output-mode` (the older implementation's spellings), else the route's configured default."""
    raw = request.headers.get("x-proxy-output-mode")
    if raw is None or not raw.strip():
        return default
    mode = OUTPUT_MODE_SPELLINGS.get(raw.strip().lower())
    if mode is None:
        raise ApiError(
            400,
            f"x-proxy-output-mode must be openai-json or obsidian-xml; received {raw.strip()[:40]!r}",
            param="x-proxy-output-mode",
            code="invalid_value",
        )
    return mode


def _outbound(plan: TurnPlan, s: Settings) -> TurnPlan:
    """The server's output settings: stop-after-tools, and whether reasoning is shown (not for summary none)."""
    policy = ToolStreamPolicy(
        stop_after_tools=s.stop_after_tools,
        mode=s.stop_after_tools_mode,
        grace_ms=s.stop_after_tools_grace_ms,
        max_calls=s.tool_block_max,
        suppress_tail=s.suppress_tail_after_tools,
    )
    expose = s.expose_reasoning and plan.summary != "none"
    return msgspec.structs.replace(plan, tool_stream=policy, expose_reasoning=expose)


def _plan_chat(body: ChatCompletionRequest, ctx: ApiContext, mode: OutputMode) -> TurnPlan:
    return plan_chat(
        body,
        ctx.resolve_model,
        ignore_client_system_prompt=ctx.settings.ignore_client_system_prompt,
        default_stream=ctx.settings.default_stream,
        output_mode=mode,
        fetch_images=ctx.settings.fetch_image_urls,
    )


def _plan_completion(body: CompletionRequest, ctx: ApiContext, mode: OutputMode) -> TurnPlan:
    return plan_completion(body, ctx.resolve_model, default_stream=False)


def _plan_responses(body: ResponsesRequest, ctx: ApiContext, mode: OutputMode) -> TurnPlan:
    return plan_responses(
        body,
        ctx.resolve_model,
        ignore_client_system_prompt=ctx.settings.ignore_client_system_prompt,
        output_mode=mode,
        fetch_images=ctx.settings.fetch_image_urls,
    )


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request, state: State) -> Response[bytes] | Stream:
    mode = _ctx(state).settings.output_mode
    return await _generate(request, state, ChatCompletionRequest, _plan_chat, ChatEncoder, mode)


@head("/v1/chat/completions", status_code=200)
async def chat_completions_head(request: Request, state: State) -> Response[None]:
    ctx = _ctx(state)
    ctx.authenticate(request)
    ctx.maintenance.check()
    return Response(None, media_type=JSON)


@post("/v1/completions", status_code=200)
async def completions(request: Request, state: State) -> Response[bytes] | Stream:
    return await _generate(request, state, CompletionRequest, _plan_completion, CompletionsEncoder, "openai-json")


@post("/v1/responses", status_code=200)
async def responses(request: Request, state: State) -> Response[bytes] | Stream:
    mode = _ctx(state).settings.responses_output_mode
    return await _generate(request, state, ResponsesRequest, _plan_responses, ResponsesEncoder, mode)


@head("/v1/responses", status_code=200)
async def responses_head(request: Request, state: State) -> Response[None]:
    ctx = _ctx(state)
    ctx.authenticate(request)
    ctx.maintenance.check()
    if not ctx.backend.ready:
        raise not_ready(ctx.backend.not_ready_reason())
    return Response(None, media_type=JSON)


def _models_gate(ctx: ApiContext, request: Request) -> None:
    if ctx.settings.protect_models:
        ctx.authenticate(request)


@get(["/v1/models", "/v1/models/"])
async def list_models(request: Request, state: State) -> Response[ModelList]:
    ctx = _ctx(state)
    _models_gate(ctx, request)
    body = ModelList(data=[Model(id=m) for m in ctx.model_ids()])
    return Response(body, media_type=JSON, headers={"Cache-Control": "public, max-age=60"})


@head(["/v1/models", "/v1/models/"])
async def head_models(request: Request, state: State) -> Response[None]:
    _models_gate(_ctx(state), request)
    return Response(None, media_type=JSON)


@get("/v1/models/{model_id:str}")
async def get_model(request: Request, state: State, model_id: FromPath[str]) -> Response[Model]:
    ctx = _ctx(state)
    _models_gate(ctx, request)
    if ctx.resolve_model(model_id) is None:
        raise model_not_found(model_id)
    return Response(Model(id=model_id), media_type=JSON)


ROUTES = [chat_completions, chat_completions_head, completions, list_models, head_models, get_model]
RESPONSES_ROUTES = [responses, responses_head]
