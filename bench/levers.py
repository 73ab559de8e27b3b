"""Server settings as levers on the relay's CPU (issue 15, item 2): each variant against the shipped settings.

Every variant is the same app and the same fault double; only how it is served changes — the event loop, Granian's
task implementation, runtime mode and threads, HTTP/1 buffer size, HTTP/1-only, backpressure — or how much it
logs. Each repetition runs the shipped configuration and every variant on the same cells back to back, and the
report shows variant ÷ shipped per repetition, so machine load cancels out of the ratio.

The shipped configuration is what `python -m app` passes to Granian (`app.__main__.granian_options`); variants
run the same factory through Granian's own command line with one option changed.
"""

from __future__ import annotations

import msgspec

from app.__main__ import granian_options
from app.settings import Settings
from bench.common import PY


class Variant(msgspec.Struct, frozen=True):
    name: str
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    what: str = ""


def shipped_flags(settings: Settings) -> list[str]:
    """Granian's command line equivalent to what `python -m app` runs (so variants differ in one option)."""
    o = granian_options(settings)
    flags = [
        "--interface", str(o["interface"]),
        "--factory",
        "--workers", "1",
        "--no-ws",
        "--no-access-log",
        "--loop", str(o["loop"]),
        "--task-impl", str(o["task_impl"]),
        "--http", str(o["http"]),
        "--runtime-mode", str(o["runtime_mode"]),
        "--runtime-threads", str(o["runtime_threads"]),
        "--backpressure", str(o["backpressure"]),
        "--backlog", str(o["backlog"]),
        "--http1-buffer-size", str(o["http1_settings"].max_buffer_size),
    ]  # fmt: skip
    return flags


def argv(settings: Settings, variant: Variant, port: int) -> list[str]:
    flags = shipped_flags(settings)
    for i in range(0, len(variant.flags), 2):
        name, value = variant.flags[i], variant.flags[i + 1]
        if name in flags:
            flags[flags.index(name) + 1] = value
        else:
            flags += [name, value]
    return [PY, "-m", "granian", *flags, "--host", "127.0.0.1", "--port", str(port), "app.main:create_app"]


def variants(settings: Settings) -> list[Variant]:
    o = granian_options(settings)
    other_loop = "asyncio" if str(o["loop"]) in ("uvloop", "auto") else "uvloop"
    other_mode = "mt" if str(o["runtime_mode"]) == "st" else "st"
    other_http = "auto" if str(o["http"]) == "1" else "1"
    return [
        Variant("shipped", what="what `python -m app` runs"),
        Variant(f"loop {other_loop}", ("--loop", other_loop), what="the other event loop"),
        Variant(f"runtime-mode {other_mode}", ("--runtime-mode", other_mode), what="Granian's Rust runtime"),
        Variant("runtime-threads 2", ("--runtime-mode", "mt", "--runtime-threads", "2"), what="two Rust threads"),
        Variant(f"http {other_http}", ("--http", other_http), what="HTTP/1 only vs auto (HTTP/1 + HTTP/2)"),
        Variant("http1-buffer 64 KiB", ("--http1-buffer-size", str(64 * 1024)), what="smaller HTTP/1 buffer"),
        Variant("backpressure 128", ("--backpressure", "128"), what="a low connection cap"),
        Variant("log WARNING", env=(("PROXY_LOG_LEVEL", "WARNING"),), what="no access line per request"),
    ]
