"""Structured output: chat `response_format` / responses `text.format` → `turn/start.outputSchema` + the check.

`json_schema` sends the client's schema to Codex as the turn's output schema (codex forwards it to the model as
`text.format` json_schema, strict) and the final text is validated against it before it is returned
(app.translate.outbound.contract). `json_object` has no schema Codex could pass on in strict mode, so the model
is told to answer with one JSON object and the text is checked to be one. The schema itself is checked here
with the JSON Schema meta-schema, so a broken schema is the client's 400, not a failed turn.
"""

from __future__ import annotations

import re

import msgspec
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from app.openai.chat import ResponseFormat
from app.openai.responses import TextFormat, TextFormatEcho
from app.translate.plan import RequestInvalid

SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
JSON_OBJECT_INSTRUCTION = "Answer with one JSON object and nothing else: no prose, no Markdown code fence."
_OBJECT = msgspec.json.Decoder(dict[str, object])


class Structured(msgspec.Struct, frozen=True):
    output_schema: msgspec.Raw | None = None
    json_object: bool = False
    param: str = "response_format"
    echo: TextFormatEcho = msgspec.field(default_factory=TextFormatEcho)

    @property
    def instruction(self) -> str | None:
        return JSON_OBJECT_INSTRUCTION if self.json_object else None


def _schema(raw: msgspec.Raw, param: str) -> msgspec.Raw:
    if not raw or bytes(raw).strip() == b"null":
        raise RequestInvalid("a json_schema format needs its `schema`", param)
    try:
        schema = _OBJECT.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise RequestInvalid("the schema must be a JSON object (a JSON Schema)", param) from None
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise RequestInvalid(f"the schema is not a valid JSON Schema: {exc.message}", param) from None
    return raw


def _name(name: str | None, param: str) -> str:
    if name is not None and not SCHEMA_NAME.fullmatch(name):
        raise RequestInvalid(f"the format name must match ^[a-zA-Z0-9_-]{{1,64}}$; received {name!r}", param)
    return name or "response"


def _plan(
    kind: str, name: str | None, schema: msgspec.Raw, strict: bool | None, param: str, schema_param: str
) -> Structured:
    if kind == "text":
        return Structured()
    if kind == "json_object":
        return Structured(json_object=True, param=param, echo=TextFormatEcho(type="json_object"))
    if kind == "json_schema":
        checked = _schema(schema, schema_param)
        echo = TextFormatEcho(
            type="json_schema",
            name=_name(name, f"{param}.name"),
            schema=checked,
            strict=strict if strict is not None else msgspec.UNSET,
        )
        return Structured(output_schema=checked, param=param, echo=echo)
    raise RequestInvalid(f"{param} type {kind!r} is not supported; use text, json_object or json_schema", param)


def chat_format(fmt: ResponseFormat | None) -> Structured:
    if fmt is None:
        return Structured()
    spec = fmt.json_schema
    if fmt.type == "json_schema" and spec is None:
        raise RequestInvalid("a json_schema format needs its `json_schema` object", "response_format.json_schema")
    return _plan(
        fmt.type,
        spec.name if spec else None,
        spec.schema if spec else msgspec.Raw(),
        spec.strict if spec else None,
        "response_format",
        "response_format.json_schema.schema",
    )


def responses_format(fmt: TextFormat | None) -> Structured:
    if fmt is None:
        return Structured()
    return _plan(fmt.type, fmt.name, fmt.schema, fmt.strict, "text.format", "text.format.schema")
