"""The pure bridge between OpenAI wire structs (app.openai) and Codex turns (app.codex.turn). No I/O.

Where things are:
- `plan.py`: `TurnPlan` (one request, fully validated) and `RequestInvalid` (a 400/404 naming the parameter).
- `inbound/`: one module per API turning a request into a `TurnPlan` — `chat.py` (chat + legacy completions),
  `responses.py` — on shared pieces: `checks.py` (model, effort, n, limits, content parts), `history.py`
  (messages, tool calls and tool results → Codex history items, in order, pairs checked), `tools.py`
  (**OpenAI tool declarations / tool_choice → Codex `dynamicTools`**) and `structured.py`
  (`response_format` / `text.format` → `outputSchema`).
- `outbound/`: `accumulator.py` (the one record of a response's output items, for stream and non-stream),
  `contract.py` (checks the finished output against what the client asked: schema, required tool call),
  and one encoder per API — `chat.py` (**`ToolCallsRequested` → `tool_calls`**), `completions.py`,
  `responses.py` (**→ `function_call` output items**).
"""
