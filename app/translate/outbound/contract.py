"""The finished output against what the client asked for, before anything is returned as a success.

A reply that breaks the contract is an error, never a 200: structured output that is not JSON or does not match
the schema (checked with a maintained JSON Schema validator), and a text answer where `tool_choice` demanded a
tool call. The pipeline sends the error as an OpenAI envelope (non-stream) or the stream's error event.
"""

from __future__ import annotations

import msgspec
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from app.codex.turn import TurnFinished
from app.translate.outbound.accumulator import OutputAccumulator
from app.translate.plan import OutputContract


class Violation(msgspec.Struct, frozen=True):
    message: str
    code: str
    param: str | None = None


def check(contract: OutputContract, acc: OutputAccumulator, finished: TurnFinished) -> Violation | None:
    if contract.tool_choice in ("required", "function") and finished.reason != "tool_calls":
        wanted = f"the tool `{contract.required_tool}`" if contract.required_tool else "a tool"
        return Violation(
            f"tool_choice required the model to call {wanted}, but it answered without a tool call; "
            "retry, or send tool_choice 'auto' to accept text answers",
            "tool_choice_not_followed",
            "tool_choice",
        )
    if finished.reason == "tool_calls" or (contract.schema is None and not contract.json_object):
        return None
    text = acc.text_value
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return Violation(
            f"the model's answer is not valid JSON, as {contract.schema_param} requires: {text[:200]!r}",
            "invalid_structured_output",
            contract.schema_param,
        )
    if contract.json_object:
        if not isinstance(value, dict):
            return Violation(
                "the model's answer is JSON but not an object, as json_object requires",
                "invalid_structured_output",
                contract.schema_param,
            )
        return None
    assert contract.schema is not None
    schema = msgspec.json.decode(contract.schema)
    validator = validator_for(schema)(schema)
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return Violation(
        f"the model's answer does not match the schema at {error.json_path}: {error.message}",
        "invalid_structured_output",
        contract.schema_param,
    )
