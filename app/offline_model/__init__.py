"""The built-in offline model: a scripted local Responses-API server the real `codex app-server` talks to.

`make run` points codex at it when CODEX_HOME holds no login; the tests use it as their default backend.
See docs/offline-model.md for the reply catalogue, the convention any client can use (tool calls, tool outputs,
output schemas, reasoning), prompt directives and how codex maps provider failures.
"""

from app.offline_model.replies import (
    Disconnect,
    Echo,
    Fail,
    FunctionCall,
    Hang,
    Reasoning,
    Reply,
    StreamError,
    Text,
    ToolCalls,
    Usage,
    plan_headers,
    split_text,
    word_count,
)
from app.offline_model.schema_instance import UnsupportedSchema, instance_for
from app.offline_model.server import API_KEY_ENV, MODEL_ID, PROVIDER_ID, OfflineModel
from app.offline_model.wire import ContentPart, InputItem, ReasoningParams, RecordedRequest, TextFormat, ToolSpec

__all__ = [
    "API_KEY_ENV",
    "MODEL_ID",
    "PROVIDER_ID",
    "ContentPart",
    "Disconnect",
    "Echo",
    "Fail",
    "FunctionCall",
    "Hang",
    "InputItem",
    "OfflineModel",
    "Reasoning",
    "ReasoningParams",
    "RecordedRequest",
    "Reply",
    "StreamError",
    "Text",
    "TextFormat",
    "ToolCalls",
    "ToolSpec",
    "UnsupportedSchema",
    "Usage",
    "instance_for",
    "plan_headers",
    "split_text",
    "word_count",
]
