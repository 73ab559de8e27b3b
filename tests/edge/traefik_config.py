"""Offline model of the Traefik dynamic files: render their env templates, merge them, check references.

Traefik renders each dynamic file as a Go template before parsing the YAML. The files use only
``'{{ env "NAME" }}'`` inside single-quoted scalars (style.md §Traefik), so this renderer is a plain
substitution; anything else left between braces fails the render instead of slipping through.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

TRAEFIK_DIR = REPO / "traefik"
DYNAMIC_DIR = TRAEFIK_DIR / "dynamic"
ENV_FILES = {"prod": TRAEFIK_DIR / "env" / "prod.env", "dev": TRAEFIK_DIR / "env" / "dev.env"}
SCHEMA_PATH = REPO / "tests" / "data" / "traefik-v3-file-provider.json"
_ENV_CALL = re.compile(r'\{\{\s*env\s+"([A-Z0-9_]+)"\s*\}\}')


def env_names(text: str) -> set[str]:
    return set(_ENV_CALL.findall(text))


def render(text: str, env: dict[str, str]) -> str:
    missing = env_names(text) - env.keys()
    if missing:
        raise KeyError(f"template reads unset env vars: {sorted(missing)}")
    rendered = _ENV_CALL.sub(lambda m: env[m.group(1)], text)
    if "{{" in rendered or "}}" in rendered:
        raise ValueError("unsupported template construct left after rendering")
    return rendered


def load_rendered(directory: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """File name -> parsed document, after rendering."""
    return {p.name: yaml.safe_load(render(p.read_text(), env)) for p in sorted(directory.glob("*.yml"))}


def merge(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge like the file provider does; a name defined twice is an error (Traefik would drop both)."""
    merged: dict[str, dict[str, Any]] = {"routers": {}, "middlewares": {}, "services": {}, "tls_options": {}}
    for name, doc in documents.items():
        http = (doc or {}).get("http", {})
        sections = [(k, http.get(k, {})) for k in ("routers", "middlewares", "services")]
        sections.append(("tls_options", (doc or {}).get("tls", {}).get("options", {})))
        for section, items in sections:
            for key, value in items.items():
                if key in merged[section]:
                    raise ValueError(f"{section} {key!r} defined twice (again in {name})")
                merged[section][key] = value
    return merged


def reference_errors(merged: dict[str, dict[str, Any]]) -> list[str]:
    """Every middleware, service and TLS option a router or chain names must exist (or be @internal)."""
    errors = []

    def check_middleware(owner: str, name: str) -> None:
        if not name.endswith("@internal") and name not in merged["middlewares"]:
            errors.append(f"{owner} references missing middleware {name!r}")

    for name, router in merged["routers"].items():
        for mw in router.get("middlewares", []):
            check_middleware(f"router {name}", mw)
        service = router.get("service", "")
        if not service.endswith("@internal") and service not in merged["services"]:
            errors.append(f"router {name} references missing service {service!r}")
        option = (router.get("tls") or {}).get("options")
        if option and option not in merged["tls_options"]:
            errors.append(f"router {name} references missing TLS option {option!r}")
    for name, mw in merged["middlewares"].items():
        for inner in (mw.get("chain") or {}).get("middlewares", []):
            check_middleware(f"chain {name}", inner)
    return errors


def flatten(merged: dict[str, dict[str, Any]], middlewares: list[str]) -> list[str]:
    """The effective middleware order once chains are expanded."""
    out: list[str] = []
    for name in middlewares:
        chain = (merged["middlewares"].get(name) or {}).get("chain")
        out.extend(flatten(merged, chain["middlewares"]) if chain else [name])
    return out


def schema() -> dict[str, Any]:
    """The vendored SchemaStore schema plus the 3.7 fields it does not know yet.

    Each addition is something the real Traefik 3.7.15 accepts, proven by the live edge tests (the
    routers using these middlewares load enabled and behave):
    - forwardAuth.maxResponseBodySize (3.x; unset makes 3.7 warn on every reload),
    - rateLimit.redis (3.4+, the shared-bucket backend),
    - rateLimit.burst as a string: templated values render as YAML strings and Traefik's decoder
      converts them, exactly as SchemaStore already allows for `average` and `period`.
    """
    s = json.loads(SCHEMA_PATH.read_text())
    defs = s["definitions"]
    defs["forwardAuthMiddleware"]["properties"]["maxResponseBodySize"] = {"type": "integer"}
    rate = defs["rateLimitMiddleware"]["properties"]
    rate["burst"] = {"oneOf": [{"type": "string", "pattern": r"^[0-9]+$"}, {"type": "number"}]}
    rate["redis"] = {
        "type": "object",
        "properties": {
            "endpoints": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "username": {"type": "string"},
            "password": {"type": "string"},
            "db": {"type": "integer"},
            "poolSize": {"type": "integer"},
            "minIdleConns": {"type": "integer"},
            "maxActiveConns": {"type": "integer"},
            "readTimeout": {"type": "string"},
            "writeTimeout": {"type": "string"},
            "dialTimeout": {"type": "string"},
        },
        "required": ["endpoints"],
        "additionalProperties": False,
    }
    return s
