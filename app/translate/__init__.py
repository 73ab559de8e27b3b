"""The pure bridge between OpenAI wire structs (app.openai) and Codex turns (app.codex.turn). No I/O.

Where things are:
- `plan.py`: `TurnPlan` (one request, fully validated) and `RequestInvalid` (a 400/404 naming the parameter).
- `use_tool.py`: Obsidian Copilot's `<use_tool>` text format, rendered (outbound) and parsed (inbound).
- `inbound/`: one module per API turning a request into a `TurnPlan` — `chat.py` (chat + legacy completions),
  `responses.py` — on shared pieces: `checks.py` (model, effort, n, limits, content parts), `history.py`
  (messages, tool calls and tool results → Codex history items, in order, pairs checked), `tools.py`
  (**OpenAI tool declarations / tool_choice → Codex `dynamicTools`**), `structured.py`
  (`response_format` / `text.format` → `outputSchema`) and `xml_history.py` (obsidian-xml: `<use_tool>` history
  and Copilot's textual results → real calls and results).
- `outbound/`: `accumulator.py` (the one record of a response's output items, for stream and non-stream),
  `contract.py` (checks the finished output against what the client asked: schema, required tool call),
  and one encoder per API — `chat.py` (**`ToolCallsRequested` → `tool_calls`**), `completions.py`,
  `responses.py` (**→ `function_call` output items**); `obsidian.py` wraps an encoder for obsidian-xml (the calls
  also as `<use_tool>` blocks), `tool_stream.py` is the stop-after-tools policy the relay applies.
"""
