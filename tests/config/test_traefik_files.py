"""Offline gates for traefik/: schema, references, the ordering rules, env names, yamllint.

The live gates (every router enabled in a running Traefik, a missing middleware disables its router)
are in tests/edge/test_routers.py.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from tests.conftest import free_port, wait_for
from tests.edge.harness import Proc, base_env, read_env_file, require_traefik
from tests.edge.traefik_config import (
    DYNAMIC_DIR,
    ENV_FILES,
    TRAEFIK_DIR,
    env_names,
    flatten,
    load_rendered,
    merge,
    reference_errors,
    render,
    schema,
)

pytestmark = pytest.mark.config

DYNAMIC_FILES = sorted(p.name for p in DYNAMIC_DIR.glob("*.yml"))


@pytest.fixture(params=sorted(ENV_FILES), ids=lambda e: f"env={e}")
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    return read_env_file(ENV_FILES[request.param])


@pytest.fixture(params=["memory", "redis"], ids=lambda b: f"ratelimit={b}")
def merged(request: pytest.FixtureRequest, env: dict[str, str]) -> dict:
    return merge(load_rendered(DYNAMIC_DIR, {**env, "RATE_LIMIT_BACKEND": request.param}))


@pytest.mark.parametrize("name", DYNAMIC_FILES)
def test_dynamic_file_validates_against_schema(name: str, env: dict[str, str]) -> None:
    document = yaml.safe_load(render((DYNAMIC_DIR / name).read_text(), env))
    jsonschema.Draft7Validator(schema()).validate(document)


def test_schema_rejects_an_unknown_field(env: dict[str, str]) -> None:
    """The schema gate is strict: a typo'd option (Traefik would drop the whole file update) fails it."""
    document = yaml.safe_load(render((DYNAMIC_DIR / "forward-auth.yml").read_text(), env))
    document["http"]["middlewares"]["forward-auth"]["forwardAuth"]["authResponseHeader"] = ["X-Auth-User"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema()).validate(document)


def test_every_reference_resolves(merged: dict) -> None:
    assert reference_errors(merged) == []


@pytest.mark.parametrize(
    ("section", "name"),
    [("middlewares", "forward-auth"), ("middlewares", "cors"), ("services", "codex-app"), ("middlewares", "chain-api")],
)
def test_reference_check_catches_a_missing_definition(merged: dict, section: str, name: str) -> None:
    broken = copy.deepcopy(merged)
    del broken[section][name]
    assert any(repr(name) in error for error in reference_errors(broken))


def test_models_access_values_name_existing_chains(env: dict[str, str]) -> None:
    for access in ("public", "protected"):
        assert reference_errors(merge(load_rendered(DYNAMIC_DIR, {**env, "MODELS_ACCESS": access}))) == []


def test_api_chain_order(merged: dict) -> None:
    """CORS before forwardAuth (preflights carry no key; 401s need ACAO); rate limit before forwardAuth
    (floods of bad keys cost authd nothing); identity stripped before forwardAuth sets it."""
    order = flatten(merged, merged["routers"]["codex-api"]["middlewares"])
    assert order[0] == "cors"
    assert order[-1] == "forward-auth"
    assert order.index("strip-identity") < order.index("forward-auth")
    assert any(m.startswith("ratelimit-") for m in order[: order.index("forward-auth")])
    assert "security-headers" in order


def test_preflight_chain_has_cors_last_and_no_auth(merged: dict) -> None:
    router = merged["routers"]["codex-preflight"]
    order = flatten(merged, router["middlewares"])
    assert order[-1] == "cors"
    assert "forward-auth" not in order
    assert "security-headers" in order
    assert router["service"] == "noop@internal"
    assert router["priority"] > max(
        r.get("priority", 0) for n, r in merged["routers"].items() if n != "codex-preflight"
    )


def test_protected_models_use_forward_auth(env: dict[str, str]) -> None:
    merged = merge(load_rendered(DYNAMIC_DIR, {**env, "MODELS_ACCESS": "protected"}))
    assert "forward-auth" in flatten(merged, merged["routers"]["codex-models"]["middlewares"])
    public = merge(load_rendered(DYNAMIC_DIR, {**env, "MODELS_ACCESS": "public"}))
    assert "forward-auth" not in flatten(public, public["routers"]["codex-models"]["middlewares"])


def test_forward_auth_settings(merged: dict) -> None:
    fa = merged["middlewares"]["forward-auth"]["forwardAuth"]
    assert fa["authRequestHeaders"] == ["Authorization"]
    assert fa["authResponseHeaders"] == ["X-Auth-User"]
    assert "forwardBody" not in fa
    assert fa["address"].endswith("/verify")
    assert fa["address"].startswith("http://127.0.0.1:")


def test_no_compress_and_loopback_upstreams(merged: dict) -> None:
    assert not [n for n, mw in merged["middlewares"].items() if "compress" in mw]
    for service in merged["services"].values():
        for server in service["loadBalancer"]["servers"]:
            assert server["url"].startswith("http://127.0.0.1:")


def test_cors_allow_headers_cover_sdk_headers(merged: dict) -> None:
    cors = merged["middlewares"]["cors"]["headers"]
    allowed = set(cors["accessControlAllowHeaders"])
    required = {"authorization", "content-type", "user-agent", "openai-beta", "openai-organization", "openai-project"}
    stainless = {f"x-stainless-{s}" for s in ("arch", "lang", "os", "package-version", "retry-count", "runtime")}
    assert required | stainless | {"x-stainless-runtime-version", "x-stainless-timeout"} <= allowed
    assert cors["accessControlMaxAge"] == 600
    assert cors.get("accessControlAllowCredentials") is not True  # bearer keys, never cookies
    assert "*" not in cors["accessControlAllowOriginList"]


@pytest.mark.parametrize("env_name", sorted(ENV_FILES))
def test_env_files_define_exactly_the_names_the_templates_read(env_name: str) -> None:
    used = set().union(*(env_names(p.read_text()) for p in DYNAMIC_DIR.glob("*.yml")))
    defined = set(read_env_file(ENV_FILES[env_name]))
    assert used == defined


def test_yamllint_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "yamllint"), "-s", "-c", str(TRAEFIK_DIR / ".yamllint"), str(TRAEFIK_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_static_config_is_accepted_by_traefik(tmp_path: Path) -> None:
    """Traefik has no validate mode; an unknown static key makes it exit rc 1 at once. Start the shipped
    static file (ports and paths moved to the test's) and require it to serve /ping."""
    static = yaml.safe_load((TRAEFIK_DIR / "traefik.yml").read_text())
    ports = {name: free_port() for name in static["entryPoints"]}
    for name, port in ports.items():
        static["entryPoints"][name]["address"] = f"127.0.0.1:{port}"
    static["providers"]["file"]["directory"] = str(tmp_path / "dynamic")
    (tmp_path / "dynamic").mkdir()
    static["accessLog"]["filePath"] = str(tmp_path / "access.json")
    config = tmp_path / "traefik.yml"
    config.write_text(yaml.safe_dump(static))
    proc = Proc("traefik-static", [str(require_traefik()), f"--configFile={config}"], base_env(), tmp_path)
    try:

        def pinged() -> bool:
            proc.assert_alive()
            return httpx.get(f"http://127.0.0.1:{ports['ping']}/ping", timeout=1).status_code == 200

        wait_for(pinged, timeout=15, what="Traefik /ping with the shipped static config")
        # The API is not enabled in production: nothing answers /api on any entry point.
        assert httpx.get(f"http://127.0.0.1:{ports['ping']}/api/rawdata", timeout=2).status_code == 404
    finally:
        proc.stop()
    assert '"level":"error"' not in proc.log()


def test_static_config_keeps_api_and_dashboard_off() -> None:
    static = yaml.safe_load((TRAEFIK_DIR / "traefik.yml").read_text())
    assert "api" not in static
    assert static["accessLog"]["format"] == "json"
    assert static["accessLog"]["addInternals"] is True
    assert static["providers"]["file"]["watch"] is True
