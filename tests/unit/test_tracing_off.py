"""Tracing is off by default and then costs nothing: the SDK and the exporter are never imported and no middleware
is installed. (Litestar itself imports the small `opentelemetry` API package once when building an app, to look for
its own plugin, whenever that package is installed; nothing of it runs per request.)"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import sys
from app.main import create_app
from app.settings import Settings
from app.api.edge import EdgeMiddleware
from app.api.hostguard import HostGuard
app = create_app(Settings.from_env({"CODEX_HOME": sys.argv[1]}))
outer = app.asgi_handler
assert type(outer) is HostGuard and type(outer.app) is EdgeMiddleware, (type(outer), type(outer.app))
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "google")))
assert loaded == [], loaded
print("ok")
"""


def test_without_proxy_enable_otel_neither_sdk_nor_exporter_is_loaded(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home")], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
