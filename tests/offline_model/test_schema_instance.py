"""The offline model's JSON-instance generator: every instance validates against its schema (jsonschema decides)."""

from __future__ import annotations

import datetime
import enum
import ipaddress
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jsonschema
import pytest
from pydantic import AnyUrl, BaseModel, Field

from app.offline_model import UnsupportedSchema, instance_for


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip_code: Annotated[str, Field(pattern=r"^\d{5}$")]


class Person(BaseModel):
    name: Annotated[str, Field(min_length=2, max_length=40)]
    age: Annotated[int, Field(ge=18, le=130)]
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    nickname: str | None = None
    address: Address
    tags: Annotated[list[str], Field(min_length=2, max_length=5)]
    colour: Colour
    kind: Literal["person"]


class Cat(BaseModel):
    pet: Literal["cat"]
    lives: int


class Dog(BaseModel):
    pet: Literal["dog"]
    good: bool


class Owner(BaseModel):
    animal: Annotated[Cat | Dog, Field(discriminator="pet")]


class Node(BaseModel):
    value: int
    children: list[Node]
    parent: Node | None


class Measurements(BaseModel):
    ratio: Annotated[float, Field(gt=0, lt=1)]
    step: Annotated[int, Field(multiple_of=7, gt=10)]
    price: Decimal
    when: datetime.datetime
    day: datetime.date
    ident: uuid.UUID
    site: AnyUrl
    scores: dict[str, int]
    pair: tuple[int, str]
    flags: Annotated[set[int], Field(min_length=3)]


class Strict(BaseModel):
    """A model as OpenAI strict mode wants it: every field required, no extra keys."""

    model_config = {"extra": "forbid"}
    title: str
    rating: int
    notes: list[str] | None


PYDANTIC = [Person, Owner, Node, Measurements, Strict, Address]

SCHEMAS: list[Any] = [
    pytest.param({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, id="object"),
    pytest.param(
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False, "minProperties": 1},
        id="minProperties-from-optional",
    ),
    pytest.param({"type": "object", "minProperties": 2, "additionalProperties": {"type": "boolean"}}, id="extra-keys"),
    pytest.param(
        {
            "type": "object",
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": False,
            "minProperties": 1,
        },
        id="patternProperties",
    ),
    pytest.param({"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True}, id="unique"),
    pytest.param(
        {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 3, "uniqueItems": True}, id="unique-enum"
    ),
    pytest.param({"type": "array", "contains": {"type": "string", "const": "x"}}, id="contains"),
    pytest.param(
        {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2}, id="prefixItems"
    ),
    pytest.param({"type": "string", "enum": ["b", "a"]}, id="enum"),
    pytest.param({"const": {"fixed": [1, 2]}}, id="const"),
    pytest.param({"type": "string", "minLength": 12}, id="minLength"),
    pytest.param({"type": "string", "maxLength": 3}, id="maxLength"),
    pytest.param({"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2,4}$"}, id="pattern"),
    pytest.param({"type": "string", "pattern": r"^(foo|bar)\.(baz)+$", "minLength": 12}, id="pattern-minLength"),
    pytest.param({"type": "string", "pattern": r"^[^a-z]+$"}, id="pattern-negated-set"),
    pytest.param({"type": "string", "pattern": r"^\w+@\w+\.com$"}, id="pattern-categories"),
    pytest.param({"type": "string", "pattern": "offline"}, id="pattern-unanchored"),
    pytest.param({"type": "string", "format": "date"}, id="date"),
    pytest.param({"type": "string", "format": "date-time"}, id="date-time"),
    pytest.param({"type": "string", "format": "email"}, id="email"),
    pytest.param({"type": "string", "format": "uri"}, id="uri"),
    pytest.param({"type": "string", "format": "uuid"}, id="uuid"),
    pytest.param({"type": "string", "format": "ipv4"}, id="ipv4"),
    pytest.param({"type": "integer", "minimum": 5, "maximum": 9}, id="int-range"),
    pytest.param({"type": "integer", "exclusiveMinimum": 5}, id="int-exclusive"),
    pytest.param({"type": "integer", "maximum": -3}, id="int-negative"),
    pytest.param({"type": "integer", "multipleOf": 4, "minimum": 5, "maximum": 20}, id="int-multipleOf"),
    pytest.param({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, id="number-open-interval"),
    pytest.param({"type": "number", "multipleOf": 0.25, "exclusiveMinimum": 1}, id="number-multipleOf"),
    pytest.param({"type": "integer", "multipleOf": 1.5, "minimum": 1}, id="integer-fractional-multipleOf"),
    pytest.param(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "integer",
            "minimum": 3,
            "exclusiveMinimum": True,
        },
        id="draft4-exclusive-bool",
    ),
    pytest.param({"type": "boolean"}, id="boolean"),
    pytest.param({"type": "null"}, id="null"),
    pytest.param({"type": ["string", "null"]}, id="type-list"),
    pytest.param({"anyOf": [{"type": "integer", "minimum": 3}, {"type": "string"}]}, id="anyOf"),
    pytest.param({"oneOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]}, id="oneOf"),
    pytest.param(
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"a": {"minimum": 10}, "b": {"type": "string"}}, "required": ["b"]},
            ]
        },
        id="allOf-merge",
    ),
    pytest.param(
        {"allOf": [{"type": "number"}, {"type": "integer", "multipleOf": 3}, {"minimum": 4}]}, id="allOf-types"
    ),
    pytest.param({"allOf": [{"type": "string", "pattern": "^a"}, {"pattern": "z$"}]}, id="allOf-patterns"),
    pytest.param(
        {
            "$defs": {"pos": {"type": "integer", "minimum": 1}},
            "type": "object",
            "properties": {"n": {"$ref": "#/$defs/pos"}},
            "required": ["n"],
        },
        id="$defs",
    ),
    pytest.param(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": {"s": {"type": "string", "minLength": 9}},
            "type": "array",
            "items": {"$ref": "#/definitions/s"},
            "minItems": 1,
        },
        id="definitions",
    ),
    pytest.param(
        {"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"type": "integer"}}, "required": ["v"]},
        id="root-ref",
    ),
    pytest.param(
        {"$defs": {"a~b/c": {"type": "boolean"}}, "$ref": "#/$defs/a~0b~1c"},
        id="ref-pointer-escapes",
    ),
    pytest.param(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["a"],
            "dependentRequired": {"a": ["b"]},
        },
        id="dependentRequired",
    ),
    pytest.param({}, id="empty"),
    pytest.param(True, id="true"),
    *[pytest.param(m.model_json_schema(), id=f"pydantic-{m.__name__}") for m in PYDANTIC],
]


def check(schema: Any, value: Any) -> None:
    """Validate with the validator `$schema` names (2020-12 by default), checking every format jsonschema can."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_validates_against_its_schema(schema: Any) -> None:
    value = instance_for(schema)

    check(schema, value)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_is_deterministic(schema: Any) -> None:
    assert instance_for(schema) == instance_for(schema)


def test_smallest_instance_uses_required_properties_and_first_choices() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "minimum": 2},
            "mode": {"enum": ["fast", "slow"]},
            "maybe": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "optional": {"type": "string"},
            "list": {"type": "array", "items": {"type": "number"}, "minItems": 2},
        },
        "required": ["name", "count", "mode", "maybe", "list"],
    }

    assert instance_for(schema) == {"name": "offline", "count": 2, "mode": "fast", "maybe": True, "list": [0, 1]}


@pytest.mark.parametrize(
    ("fmt", "parse"),
    [
        ("date", datetime.date.fromisoformat),
        ("date-time", datetime.datetime.fromisoformat),
        ("email", lambda v: v.split("@")[1] == "example.com" or pytest.fail(v)),
        ("uri", lambda v: urlsplit(v).scheme == "https" or pytest.fail(v)),
        ("uuid", uuid.UUID),
        ("ipv6", ipaddress.IPv6Address),
    ],
)
def test_formats_are_real_values_of_that_format(fmt: str, parse: Any) -> None:
    """jsonschema checks some formats only with optional packages: parse the values ourselves as well."""
    parse(instance_for({"type": "string", "format": fmt}))


def test_pydantic_models_accept_their_instances() -> None:
    for model in PYDANTIC:
        model.model_validate(instance_for(model.model_json_schema()))


def test_recursive_model_ends_at_the_first_branch_that_leaves_the_cycle() -> None:
    assert instance_for(Node.model_json_schema()) == {"value": 0, "children": [], "parent": None}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param(False, "`false`", id="false"),
        pytest.param({"$ref": "https://example.com/s.json"}, "only local", id="remote-ref"),
        pytest.param({"$ref": "#/$defs/missing"}, "does not resolve", id="dangling-ref"),
        pytest.param({"type": "integer", "minimum": 5, "maximum": 4}, "no multiple", id="empty-int-range"),
        pytest.param({"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1}, "no number", id="empty-range"),
        pytest.param({"type": "string", "minLength": 5, "maxLength": 2}, "minLength", id="lengths"),
        pytest.param({"type": "array", "minItems": 3, "maxItems": 1}, "minItems", id="items"),
        pytest.param(
            {"type": "array", "items": {"const": 1}, "minItems": 2, "uniqueItems": True},
            "distinct",
            id="unique-impossible",
        ),
        pytest.param({"allOf": [{"type": "string"}, {"type": "integer"}]}, "incompatible", id="allOf-types"),
        pytest.param(
            {"type": "object", "required": ["a"], "additionalProperties": False}, "not allowed", id="required-forbidden"
        ),
        pytest.param({"type": "string", "pattern": "(?<=a)b"}, "pattern", id="lookbehind"),
        pytest.param(
            {
                "$ref": "#/$defs/n",
                "$defs": {"n": {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "required": ["n"]}},
            },
            "recursion",
            id="endless-recursion",
        ),
    ],
)
def test_unsatisfiable_or_unsupported_schemas_say_why(schema: Any, message: str) -> None:
    with pytest.raises(UnsupportedSchema, match=message):
        instance_for(schema)
