"""The app factory: one Litestar app per Settings, no env reads at import, no deprecation warnings."""

from __future__ import annotations

from litestar import Litestar

from app.main import create_app
from app.settings import Settings


def test_factory_builds_without_warnings(tmp_path):
    # pytest runs with filterwarnings=error: a deprecated handler signature would fail here.
    app = create_app(Settings(codex_home=str(tmp_path / "home")))
    assert isinstance(app, Litestar)
    paths = {route.path for route in app.routes}
    assert {"/v1/chat/completions", "/v1/responses", "/v1/models", "/healthz", "/readyz", "/metrics"} <= paths


def test_disabled_routes_are_not_mounted(tmp_path):
    app = create_app(Settings(codex_home=str(tmp_path / "home"), enable_responses=False, enable_metrics=False))
    paths = {route.path for route in app.routes}
    assert "/v1/responses" not in paths
    assert "/metrics" not in paths
