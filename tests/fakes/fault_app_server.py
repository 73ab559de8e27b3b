"""A fake `codex app-server` for faults the real binary cannot produce on cue (style.md rule 37).

It speaks the same newline-delimited JSON-RPC on stdio as the real one (no `jsonrpc` field) and plays a normal
turn like codex 0.169.0 does (app-server-protocol.md §10): `turn/started`, `item/started`, one
`item/agentMessage/delta` per word of `echo: <text>`, `item/completed`, `thread/tokenUsage/updated`,
`turn/completed`, `thread/status/changed` → idle. Launched as
`[sys.executable, "tests/fakes/fault_app_server.py", "app-server", ...]`; every CLI argument is ignored.

Behaviour (process-wide via env `FAULT_MODE`, or for one turn via `fault:<mode>` in the user text):

- `normal` (default): behaves.
- `crash_mid_turn` / `fault:crash`: writes a stderr line, then exit(1) right after the first delta.
- `hang` / `fault:hang`: after answering the handshake (`hang`) or that `turn/start` (`fault:hang`), never writes
  again; stdin is still read and logged, EOF is ignored. SIGTERM kills it (`FAULT_IGNORE_SIGTERM=1`: only SIGKILL).
- `overloaded`: the first `FAULT_OVERLOAD_COUNT` (default 1) calls to `FAULT_OVERLOAD_METHOD` (default
  `turn/start`) get error -32001 "Server overloaded; retry later."; `fault:overloaded` rejects that one turn.
- `malformed` / `fault:malformed`: non-JSON, non-object and unknown-method lines before every response and
  between deltas.
- `oversized` / `fault:oversized`: one line of `FAULT_OVERSIZED_BYTES` (default 9 MiB) after the first delta.
- `exit_at_start`: writes `FAULT_EXIT_MESSAGE` to stderr, exits with `FAULT_EXIT_CODE` (default 1) at once.
- `slow_handshake`: answers `initialize` after `FAULT_HANDSHAKE_DELAY_MS` (default 3000).
- `server_request` / `fault:server_request`: each turn first sends `item/commandExecution/requestApproval` and
  an unknown `item/fault/unknownRequest` server request, and streams only once both are answered.
- `slow` / `fault:slow`: `FAULT_DELTAS` (default 50) deltas `FAULT_DELTA_INTERVAL_MS` (default 50) apart, which
  leaves time for `turn/interrupt`.
- `fault:silent`: that one turn starts (`turn/started`) and then says nothing — no delta, no completion — until
  `turn/interrupt` ends it as interrupted; the process and its other turns go on. It costs no thread, so one
  double can hold thousands of idle streams (bench/streams.py).
- `fault:deltas=N`: that turn streams N one-word deltas back to back (no pause): relay cost per delta.
- `fault:allocate`: after the first delta, a runaway: touches `FAULT_ALLOCATE_STEP_MB` (default 16) more MB of
  resident memory every 10 ms, up to `FAULT_ALLOCATE_MAX_MB` (default 2048), and never finishes the turn — for
  the memory watchdog and the unit's MemoryMax= (issue 13).

Every received message is appended to `FAULT_LOG` (JSON lines `{"pid", "t", "message"}`) when set, so tests can
assert e.g. that `turn/interrupt` or the answer to a server request arrived.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

MODE = os.environ.get("FAULT_MODE", "normal")
LOG = os.environ.get("FAULT_LOG")
PID = os.getpid()

_out_lock = threading.Lock()
_log_lock = threading.Lock()
_hung = threading.Event()  # once set, nothing more is written, ever


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def log(message: Any) -> None:
    if not LOG:
        return
    line = json.dumps({"pid": PID, "t": time.time(), "message": message})
    with _log_lock, open(LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def write_raw(line: str) -> None:
    if _hung.is_set():
        return
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def send(message: dict[str, Any]) -> None:
    write_raw(json.dumps(message))


def notify(method: str, params: dict[str, Any]) -> None:
    send({"method": method, "params": params})


def noise() -> None:
    """Lines a robust client must skip without losing the valid ones around them."""
    write_raw("this is not json")
    write_raw("[1, 2, 3]")
    write_raw('{"method": "fault/unknownNotification", "params": {"x": 1}}')
    write_raw("{truncated")


_hoard: list[bytes] = []


def allocate_forever() -> None:
    """Grow resident memory until something kills this process (filled bytes: every page really touched)."""
    step = env_int("FAULT_ALLOCATE_STEP_MB", 16) << 20
    limit = env_int("FAULT_ALLOCATE_MAX_MB", 2048) << 20
    sys.stderr.write("fault_app_server: allocating without bound as asked\n")
    sys.stderr.flush()
    while len(_hoard) * step < limit:
        _hoard.append(b"\x01" * step)
        time.sleep(0.01)
    hang_forever()


def start_hanging() -> None:
    """From now on write nothing; stdin is still read (and logged) but never answered, and EOF is ignored."""
    _hung.set()
    if os.environ.get("FAULT_IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def hang_forever() -> None:
    while True:
        time.sleep(3600)


class Server:
    def __init__(self) -> None:
        self.initialized = False
        self.threads: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.overloads_left = env_int("FAULT_OVERLOAD_COUNT", 1) if MODE == "overloaded" else 0
        self.overload_method = os.environ.get("FAULT_OVERLOAD_METHOD", "turn/start")
        self.active: dict[str, threading.Event] = {}  # turn id -> interrupt flag
        self.turn_threads: list[threading.Thread] = []
        self.server_replies: dict[str, threading.Event] = {}
        self.server_request_seq = 0
        self.silent: dict[str, str] = {}  # turn id -> thread id of a `fault:silent` turn

    def next_id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{PID}-{self.counter}"

    def reply(self, request_id: Any, result: dict[str, Any]) -> None:
        if MODE == "malformed":
            noise()
        send({"id": request_id, "result": result})

    def error(self, request_id: Any, code: int, message: str) -> None:
        send({"id": request_id, "error": {"code": code, "message": message}})

    # -- dispatch ---------------------------------------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        request_id = message.get("id")
        if method is None:  # a response to one of our server requests
            event = self.server_replies.get(str(request_id))
            if event is not None:
                event.set()
            return
        if request_id is None:  # client notification (initialized, ...)
            return
        params = message.get("params") or {}
        if method == "initialize":
            if self.initialized:
                return self.error(request_id, -32600, "Already initialized")
            if MODE == "slow_handshake":
                time.sleep(env_int("FAULT_HANDSHAKE_DELAY_MS", 3000) / 1000)
            self.initialized = True
            self.reply(
                request_id,
                {
                    "userAgent": "fault_app_server/0.169.0",
                    "codexHome": os.environ.get("CODEX_HOME", ""),
                    "platformFamily": "unix",
                    "platformOs": "linux",
                },
            )
            if MODE == "hang":
                start_hanging()
            return None
        if not self.initialized:
            return self.error(request_id, -32600, "Not initialized")
        if method == self.overload_method and self.overloads_left > 0:
            self.overloads_left -= 1
            return self.error(request_id, -32001, "Server overloaded; retry later.")
        handler = getattr(self, "on_" + method.replace("/", "_"), None)
        if handler is None:
            return self.error(request_id, -32601, f"method not found: {method}")
        return handler(request_id, params)

    # -- methods ----------------------------------------------------------------------------------------------------

    def on_thread_start(self, request_id: Any, params: dict[str, Any]) -> None:
        thread_id = self.next_id("thread")
        self.threads[thread_id] = {"total": {"input": 0, "output": 0}}
        thread = {
            "id": thread_id,
            "ephemeral": bool(params.get("ephemeral")),
            "status": {"type": "idle"},
            "turns": [],
            "preview": "",
            "cliVersion": "0.169.0",
        }
        self.reply(
            request_id,
            {
                "thread": thread,
                "model": params.get("model") or "fault-model",
                "modelProvider": "fault",
                "cwd": params.get("cwd") or os.getcwd(),
            },
        )
        notify("thread/started", {"thread": thread})

    def on_thread_inject_items(self, request_id: Any, params: dict[str, Any]) -> None:
        self.reply(request_id, {})

    def on_thread_unsubscribe(self, request_id: Any, params: dict[str, Any]) -> None:
        known = self.threads.pop(params.get("threadId", ""), None) is not None
        self.reply(request_id, {"status": "unsubscribed" if known else "notLoaded"})

    def on_thread_delete(self, request_id: Any, params: dict[str, Any]) -> None:
        self.threads.pop(params.get("threadId", ""), None)
        self.reply(request_id, {})

    def on_model_list(self, request_id: Any, params: dict[str, Any]) -> None:
        model = {
            "id": "fault-model",
            "model": "fault-model",
            "displayName": "Fault model",
            "description": "",
            "hidden": False,
            "isDefault": True,
            "defaultReasoningEffort": "medium",
            "inputModalities": ["text"],
            "supportedReasoningEfforts": [{"reasoningEffort": "medium", "description": "default"}],
        }
        self.reply(request_id, {"data": [model], "nextCursor": None})

    def on_account_read(self, request_id: Any, params: dict[str, Any]) -> None:
        self.reply(request_id, {"account": None, "requiresOpenaiAuth": False})

    def on_turn_interrupt(self, request_id: Any, params: dict[str, Any]) -> None:
        turn_id = params.get("turnId", "")
        flag = self.active.get(turn_id)
        if flag is not None:
            flag.set()  # the turn thread emits turn/completed(interrupted)
        self.reply(request_id, {})
        silent = self.silent.pop(turn_id, None)
        if silent is not None:
            self.finish(silent, turn_id, "interrupted")

    def on_turn_start(self, request_id: Any, params: dict[str, Any]) -> None:
        thread_id = params.get("threadId", "")
        if thread_id not in self.threads:
            return self.error(request_id, -32600, f"thread not found: {thread_id}")
        text = " ".join(i.get("text", "") for i in params.get("input", []) if i.get("type") == "text")
        fault = MODE
        deltas = 0
        for word in text.split():
            if word.startswith("fault:deltas="):
                fault, deltas = "deltas", int(word[13:])
            elif word.startswith("fault:"):
                fault = {"crash": "crash_mid_turn"}.get(word[6:], word[6:])
        if fault == "overloaded" and MODE != "overloaded":
            return self.error(request_id, -32001, "Server overloaded; retry later.")
        turn_id = self.next_id("turn")
        self.reply(request_id, {"turn": {"id": turn_id, "status": "inProgress", "items": [], "error": None}})
        if fault == "hang":
            start_hanging()
            return None
        if fault == "silent":
            self.silent[turn_id] = thread_id
            notify("thread/status/changed", {"threadId": thread_id, "status": {"type": "active"}})
            notify(
                "turn/started", {"threadId": thread_id, "turn": {"id": turn_id, "status": "inProgress", "items": []}}
            )
            return None
        flag = threading.Event()
        self.active[turn_id] = flag
        worker = threading.Thread(
            target=self.play_turn, args=(thread_id, turn_id, text, fault, flag, deltas), daemon=True
        )
        self.turn_threads.append(worker)
        worker.start()
        return None

    # -- a turn -----------------------------------------------------------------------------------------------------

    def server_request(self, method: str, params: dict[str, Any]) -> threading.Event:
        self.server_request_seq += 1
        request_id = f"srv-{self.server_request_seq}"
        event = threading.Event()
        self.server_replies[request_id] = event
        send({"id": request_id, "method": method, "params": params})
        return event

    def play_turn(
        self, thread_id: str, turn_id: str, text: str, fault: str, interrupted: threading.Event, deltas: int = 0
    ) -> None:
        base = {"threadId": thread_id, "turnId": turn_id}
        notify("thread/status/changed", {"threadId": thread_id, "status": {"type": "active"}})
        notify("turn/started", {"threadId": thread_id, "turn": {"id": turn_id, "status": "inProgress", "items": []}})
        if fault == "server_request":
            waits = [
                self.server_request(
                    "item/commandExecution/requestApproval",
                    {**base, "itemId": "cmd-1", "command": "rm -rf /", "cwd": "/"},
                ),
                self.server_request("item/fault/unknownRequest", {**base, "what": "unknown"}),
            ]
            for wait in waits:
                while not wait.wait(0.05):
                    if interrupted.is_set():
                        return self.finish(thread_id, turn_id, "interrupted")
        item_id = f"msg-{turn_id}"
        reply = "echo: " + " ".join(w for w in text.split() if not w.startswith("fault:"))
        words = reply.split(" ")
        if fault == "slow":
            words = [f"w{i} " for i in range(env_int("FAULT_DELTAS", 50))]
        elif fault == "deltas":
            words = [f"w{i} " for i in range(deltas)]
        interval = env_int("FAULT_DELTA_INTERVAL_MS", 50) / 1000 if fault == "slow" else 0
        notify("item/started", {**base, "item": {"type": "agentMessage", "id": item_id, "text": ""}})
        sent = ""
        for i, word in enumerate(words):
            if interrupted.is_set():
                return self.finish(thread_id, turn_id, "interrupted")
            delta = word if i == 0 or fault in ("slow", "deltas") else " " + word
            notify("item/agentMessage/delta", {**base, "itemId": item_id, "delta": delta})
            sent += delta
            if fault == "crash_mid_turn":
                sys.stderr.write("fault_app_server: crashing mid-turn as asked\n")
                sys.stderr.flush()
                os._exit(1)
            if fault == "allocate":
                allocate_forever()
            if fault == "malformed":
                noise()
            if fault == "oversized" and i == 0:
                write_raw(
                    '{"method":"fault/huge","params":{"blob":"'
                    + "x" * env_int("FAULT_OVERSIZED_BYTES", 9 << 20)
                    + '"}}'
                )
            if interval and interrupted.wait(interval):
                return self.finish(thread_id, turn_id, "interrupted")
        notify("item/completed", {**base, "item": {"type": "agentMessage", "id": item_id, "text": sent}})
        totals = self.threads.get(thread_id, {"total": {"input": 0, "output": 0}})["total"]
        last_in, last_out = len(text.split()) + 10, len(sent.split())
        totals["input"] += last_in
        totals["output"] += last_out
        notify(
            "thread/tokenUsage/updated",
            {
                **base,
                "tokenUsage": {
                    "total": breakdown(totals["input"], totals["output"]),
                    "last": breakdown(last_in, last_out),
                    "modelContextWindow": 258400,
                },
            },
        )
        return self.finish(thread_id, turn_id, "completed")

    def finish(self, thread_id: str, turn_id: str, status: str) -> None:
        self.active.pop(turn_id, None)
        notify(
            "turn/completed",
            {"threadId": thread_id, "turn": {"id": turn_id, "status": status, "items": [], "error": None}},
        )
        notify("thread/status/changed", {"threadId": thread_id, "status": {"type": "idle"}})


def breakdown(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "totalTokens": input_tokens + output_tokens,
        "inputTokens": input_tokens,
        "cachedInputTokens": 0,
        "outputTokens": output_tokens,
        "reasoningOutputTokens": 0,
    }


def main() -> int:
    if MODE == "exit_at_start":
        sys.stderr.write(os.environ.get("FAULT_EXIT_MESSAGE", "fault_app_server: exiting at start as asked") + "\n")
        sys.stderr.flush()
        return env_int("FAULT_EXIT_CODE", 1)
    server = Server()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            log({"unparseable": line[:200]})
            continue
        log(message)
        if _hung.is_set():
            continue
        server.handle(message)
    # stdin closed: like codex, finish politely (unless hung, which ignores EOF)
    if _hung.is_set():
        hang_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
