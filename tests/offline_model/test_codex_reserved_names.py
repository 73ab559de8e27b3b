"""Why the proxy moves some client tools into its own namespace: codex 0.169.0 silently drops top-level dynamic
tools named `exec_command` / `shell_command` (reserved) or `request_user_input` (its built-in), but accepts them
inside a namespace (app.codex.protocol.RESERVED_TOOL_NAMES, app.codex.turn.codex_tools)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from app.codex import protocol as p
from app.codex.turn import codex_tools
from app.offline_model import OfflineModel
from tests.offline_model.conftest import AppServer, app_server, codex_home

pytestmark = pytest.mark.codex


@pytest.fixture
async def codex(tmp_path) -> AsyncIterator[tuple[AppServer, OfflineModel]]:
    async with OfflineModel() as model, app_server(model, codex_home(tmp_path / "home")) as server:
        yield server, model


def spec(name: str) -> dict:
    return {"type": "function", "name": name, "description": f"client {name}", "inputSchema": {"type": "object"}}


@pytest.mark.parametrize("name", sorted(p.RESERVED_TOOL_NAMES))
async def test_a_reserved_name_is_dropped_at_the_top_level_and_offered_inside_the_proxys_namespace(codex, name):
    server, model = codex
    client_tool = p.DynamicFunctionTool(name, f"client {name}", p.Raw(b'{"type":"object"}'))
    wrapped = [json.loads(p.ENCODER.encode(t)) for t in codex_tools((client_tool,))]
    await server.turn("hi", dynamicTools=[spec(name)])
    await server.turn("hi", dynamicTools=wrapped)
    top, inside = model.requests
    assert f"client {name}" not in {s.description for s in top.tool_specs}, "codex now keeps the name: drop the rule"
    assert f"{p.CLIENT_NAMESPACE}.{name}" in inside.functions
    assert inside.functions[f"{p.CLIENT_NAMESPACE}.{name}"].description == f"client {name}"
