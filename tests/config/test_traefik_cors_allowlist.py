"""One allowlist, three enforcers: cors-origins.txt vs Traefik's CORS middleware, the Worker and the app.

Deployment-specific web origins are not in the file: Traefik adds https://$API_HOST and
CORS_EXTRA_ORIGIN from its env file; those two template slots are the only allowed extras.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import REPO
from tests.edge.harness import cors_allowlist
from tests.edge.traefik_config import DYNAMIC_DIR

pytestmark = pytest.mark.config

TRAEFIK_TEMPLATE_SLOTS = {'https://{{ env "API_HOST" }}', '{{ env "CORS_EXTRA_ORIGIN" }}'}


def _strip_jsonc(text: str) -> str:
    """JSONC → JSON: drop // line comments outside strings, then trailing commas."""
    out = []
    for line in text.splitlines():
        in_string = False
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_string = not in_string
            if not in_string and line.startswith("//", i):
                line = line[:i]
                break
        out.append(line)
    return re.sub(r",(\s*[}\]])", r"\1", "\n".join(out))


def test_allowlist_is_well_formed() -> None:
    origins = cors_allowlist()
    assert len(origins) == len(set(origins)), "duplicate origin"
    for origin in origins:
        assert re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s]+", origin), f"{origin!r} is not a bare origin"
    assert {"app://obsidian.md", "capacitor://localhost", "http://localhost", "https://localhost"} <= set(origins)


def test_traefik_cors_middleware_matches_allowlist() -> None:
    raw = yaml.safe_load((DYNAMIC_DIR / "cors.yml").read_text())
    configured = raw["http"]["middlewares"]["cors"]["headers"]["accessControlAllowOriginList"]
    fixed = [o for o in configured if "{{" not in o]
    slots = {o for o in configured if "{{" in o}
    assert fixed == cors_allowlist()
    assert slots == TRAEFIK_TEMPLATE_SLOTS


def test_worker_allowed_origins_match_allowlist() -> None:
    wrangler = REPO / "cloudflare-worker" / "wrangler.jsonc"
    config = json.loads(_strip_jsonc(wrangler.read_text()))
    assert config["vars"]["ALLOWED_ORIGINS"].split(",") == cors_allowlist()


def test_app_deployed_origins_come_from_allowlist() -> None:
    """The app reads PROXY_CORS_ALLOWED_ORIGINS; Ansible's app role sets it. It must be the allowlist
    (literally, or generated from cors-origins.txt by a lookup), never `*` or a hand-kept copy."""
    defaults = yaml.safe_load((REPO / "ansible" / "roles" / "app" / "defaults" / "main.yml").read_text())
    value = str(defaults["app_cors_allowed_origins"])
    if "cors-origins.txt" in value:
        return  # generated from the file at deploy time
    assert [o.strip() for o in value.split(",")] == cors_allowlist()
