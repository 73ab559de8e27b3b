"""A deterministic JSON instance for a JSON Schema: what the offline model answers when an output schema is set.

Why hand-rolled: the offline model must answer structured-output requests without a login and without a
dependency the app does not already ship, and tests must be able to predict the answer exactly. The generator
builds the *smallest* reasonable value (required properties only, `minItems` items, the first `enum` value, the
first `anyOf`/`oneOf` branch) so it stays valid under the constraints it understands; docs/offline-model.md lists
them. Anything it cannot satisfy raises `UnsupportedSchema` (the model then says so in text) rather than
producing an instance that would not validate.
"""

from __future__ import annotations

import json
import math
import re
import re._parser as sre  # type: ignore[import-not-found]  # the stdlib regex parser (3.11+), for `pattern`
from fractions import Fraction
from typing import Any

Schema = dict[str, Any] | bool

_MAX_DEPTH = 64  # nesting of generated values; a recursive schema that cannot bottom out ends here
_SHALLOW = 6  # past this depth, unions and type lists prefer a branch that ends the recursion (null, no $ref)
_DEFAULT_STRING = "offline"
_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "offline@example.com",
    "idn-email": "offline@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/offline",
    "iri": "https://example.com/offline",
    "uri-reference": "https://example.com/offline",
    "iri-reference": "https://example.com/offline",
    "uri-template": "https://example.com/{offline}",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "json-pointer": "/offline",
    "relative-json-pointer": "0/offline",
    "regex": "offline",
}
_LOWER = ("minimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER = ("maximum", "maxLength", "maxItems", "maxProperties", "maxContains")


class UnsupportedSchema(ValueError):
    """The schema uses something the generator cannot satisfy (an unresolvable `$ref`, `false`, a regex it cannot
    invert, contradictory bounds). The message says which."""


def instance_for(schema: Schema) -> Any:
    """A deterministic value that satisfies `schema` (JSON Schema draft 4 to 2020-12 subset; see module doc)."""
    return _Generator(schema).value(schema, 0, 0)


def dumps(value: Any) -> str:
    """The text the offline model sends: compact-with-spaces JSON, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False)


class _Generator:
    def __init__(self, root: Schema) -> None:
        self._root = root
        self._trail: list[str] = []  # the `$ref`s resolved on the way to the value being built

    # -- schema normalisation ---------------------------------------------------------------------------------

    def _resolve(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            raise UnsupportedSchema(f"$ref {ref!r}: only local references (#/...) are supported")
        node: Any = self._root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise UnsupportedSchema(f"$ref {ref!r}: anchors are not supported, use a JSON pointer")
        for token in pointer.split("/")[1:] if pointer else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise UnsupportedSchema(f"$ref {ref!r} does not resolve")
        if not isinstance(node, (dict, bool)):
            raise UnsupportedSchema(f"$ref {ref!r} does not point at a schema")
        return node

    def flatten(self, schema: Schema, depth: int) -> dict[str, Any]:
        """The schema with `$ref`, `allOf`, `anyOf` and `oneOf` folded into one keyword dict (the chosen branch)."""
        if depth > _MAX_DEPTH:
            raise UnsupportedSchema("schema recursion does not end (no branch without a $ref cycle)")
        if schema is True:
            return {}
        if schema is False:
            raise UnsupportedSchema("the schema `false` has no instance")
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"not a schema: {schema!r}")
        s = dict(schema)
        if "$ref" in s:
            ref = str(s.pop("$ref"))
            self._trail.append(ref)
            target = self.flatten(self._resolve(ref), depth + 1)
            s = _merge(target, self.flatten(s, depth))
        if "allOf" in s:
            parts = [self.flatten(p, depth + 1) for p in s.pop("allOf")]
            s = _merge(self.flatten(s, depth), *parts)
        for key in ("anyOf", "oneOf"):
            if key in s:
                branches = s.pop(key)
                if not branches:
                    raise UnsupportedSchema(f"empty {key}")
                s = _merge(self.flatten(s, depth), self.flatten(self._pick_branch(branches, depth), depth + 1))
        return s

    # -- values -----------------------------------------------------------------------------------------------

    def _pick_branch(self, branches: list[Schema], depth: int) -> Schema:
        """The first branch, unless it re-enters a `$ref` already being built (a recursive model's `parent: X | None`)
        and another branch does not: then that one, so recursion ends at once. Deep down, anything that ends it."""
        active = [f'"$ref": {json.dumps(ref)}' for ref in self._trail]
        for branch in branches:
            text = json.dumps(branch)
            if not any(a in text for a in active):
                return branch
        if depth > _SHALLOW:
            for branch in branches:
                if isinstance(branch, dict) and (branch.get("type") == "null" or "$ref" not in json.dumps(branch)):
                    return branch
        return branches[0]

    def value(self, schema: Schema, variant: int, depth: int) -> Any:
        """The instance of `schema`; `variant` > 0 asks for a different value of the same shape (uniqueItems)."""
        mark = len(self._trail)
        try:
            return self._value(schema, variant, depth)
        finally:
            del self._trail[mark:]

    def _value(self, schema: Schema, variant: int, depth: int) -> Any:
        s = self.flatten(schema, depth)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            options = s["enum"]
            if not options:
                raise UnsupportedSchema("empty enum")
            return options[variant % len(options)]
        kind = _type_of(s, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return variant % 2 == 0
        if kind in ("integer", "number"):
            return _number(s, integer=kind == "integer", variant=variant)
        if kind == "string":
            return _string(s, variant)
        if kind == "array":
            return self._array(s, depth)
        if kind == "object":
            return self._object(s, variant, depth)
        raise UnsupportedSchema(f"unknown type {kind!r}")

    def _array(self, s: dict[str, Any], depth: int) -> list[Any]:
        items_keyword: Schema | list[Schema] = s.get("items", True)
        if "prefixItems" in s:  # 2020-12 tuples
            prefix: list[Schema] = s["prefixItems"]
            rest: Schema = items_keyword if not isinstance(items_keyword, list) else True
        elif isinstance(items_keyword, list):  # draft 4 - 2019-09 tuples
            prefix, rest = items_keyword, s.get("additionalItems", True)
        else:
            prefix, rest = [], items_keyword
        count = int(s.get("minItems", 0))
        contains = s.get("contains")
        if contains is not None:
            count = max(count, int(s.get("minContains", 1)))
        if "maxItems" in s and count > int(s["maxItems"]):
            raise UnsupportedSchema("minItems is larger than maxItems")
        items: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else rest
            if contains is not None and i < int(s.get("minContains", 1)):
                item_schema = {"allOf": [item_schema, contains]}
            for variant in range(i, i + 64):
                value = self.value(item_schema, variant, depth + 1)
                key = json.dumps(value, sort_keys=True)
                if not s.get("uniqueItems") or key not in seen:
                    break
            else:
                raise UnsupportedSchema("cannot find enough distinct items for uniqueItems")
            seen.add(key)
            items.append(value)
        return items

    def _object(self, s: dict[str, Any], variant: int, depth: int) -> dict[str, Any]:
        properties: dict[str, Schema] = s.get("properties", {})
        keys = list(dict.fromkeys(s.get("required", [])))
        dependent: dict[str, list[str]] = s.get("dependentRequired", {})
        for key in list(keys):
            keys += [k for k in dependent.get(key, []) if k not in keys]
        minimum = int(s.get("minProperties", 0))
        for key in properties:
            if len(keys) >= minimum:
                break
            if key not in keys:
                keys.append(key)
        n = 1
        while len(keys) < minimum:
            if s.get("additionalProperties") is False and not s.get("patternProperties"):
                raise UnsupportedSchema("minProperties needs more keys than the schema allows")
            key = self._extra_key(s, n)
            n += 1
            if key not in keys:
                keys.append(key)
        out: dict[str, Any] = {}
        for key in keys:
            out[key] = self.value(self._property_schema(s, key), variant, depth + 1)
        return out

    def _extra_key(self, s: dict[str, Any], n: int) -> str:
        patterns = list(s.get("patternProperties", {}))
        if patterns and s.get("additionalProperties") is False:
            return _string({"pattern": patterns[0]}, n)
        return f"key{n}"

    def _property_schema(self, s: dict[str, Any], key: str) -> Schema:
        properties: dict[str, Schema] = s.get("properties", {})
        if key in properties:
            return properties[key]
        for pattern, sub in s.get("patternProperties", {}).items():
            if re.search(pattern, key):
                return sub
        extra = s.get("additionalProperties", True)
        if extra is False:
            raise UnsupportedSchema(f"required property {key!r} is not allowed by additionalProperties: false")
        return extra


def _type_of(s: dict[str, Any], depth: int) -> str:
    kind = s.get("type")
    if isinstance(kind, list):
        if not kind:
            raise UnsupportedSchema("empty type list")
        if depth > _SHALLOW and "null" in kind:
            return "null"
        return str(kind[0])
    if isinstance(kind, str):
        return kind
    if any(k in s for k in ("properties", "required", "additionalProperties", "patternProperties", "minProperties")):
        return "object"
    if any(k in s for k in ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")):
        return "array"
    if any(k in s for k in ("minLength", "maxLength", "pattern", "format")):
        return "string"
    if any(k in s for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "null"  # `{}` / `true`: anything is valid; null is the smallest thing to say


# ---------------------------------------------------------------------------------------------------------------------
# allOf merging


def _merge(*schemas: dict[str, Any]) -> dict[str, Any]:
    """Intersect keyword dicts (all already flattened): bounds tighten, `required` unions, `properties` combine."""
    out: dict[str, Any] = {}
    for s in schemas:
        for key, value in s.items():
            if key not in out:
                out[key] = value
                continue
            mine = out[key]
            if key == "properties":
                merged = dict(mine)
                for name, sub in value.items():
                    merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
                out[key] = merged
            elif key == "required":
                out[key] = list(dict.fromkeys([*mine, *value]))
            elif key == "type":
                out[key] = _common_types(mine, value)
            elif key == "enum":
                out[key] = [v for v in mine if v in value]
            elif key in _LOWER:
                out[key] = max(mine, value)
            elif key in _UPPER:
                out[key] = min(mine, value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                out[key] = max(mine, value) if key == "exclusiveMinimum" else min(mine, value)
            elif key == "multipleOf":
                out[key] = _lcm(Fraction(str(mine)), Fraction(str(value)))
            elif key in ("items", "additionalProperties", "contains") and isinstance(mine, dict | bool):
                out[key] = False if mine is False or value is False else {"allOf": [mine, value]}
            elif key == "pattern":
                out["_patterns"] = [*out.get("_patterns", []), value]
            # every other keyword: the first one wins (annotations, formats, ...)
    if "enum" in out and not out["enum"]:
        raise UnsupportedSchema("allOf leaves no enum value")
    return out


def _common_types(a: str | list[str], b: str | list[str]) -> list[str]:
    """The types both allow (an integer is also a number)."""
    left = a if isinstance(a, list) else [a]
    right = b if isinstance(b, list) else [b]
    both: list[str] = []
    for t in left:
        if t in right:
            both.append(t)
        elif (t == "integer" and "number" in right) or (t == "number" and "integer" in right):
            both.append("integer")
    both = list(dict.fromkeys(both))
    if not both:
        raise UnsupportedSchema(f"allOf combines incompatible types {left} and {right}")
    return both


def _lcm(a: Fraction, b: Fraction) -> float | int:
    num = math.lcm(a.numerator * b.denominator, b.numerator * a.denominator)
    value = Fraction(num, a.denominator * b.denominator)
    return int(value) if value.denominator == 1 else float(value)


# ---------------------------------------------------------------------------------------------------------------------
# numbers


def _number(s: dict[str, Any], *, integer: bool, variant: int) -> int | float:
    lo, lo_open = _bound(s, "minimum", "exclusiveMinimum")
    hi, hi_open = _bound(s, "maximum", "exclusiveMaximum")
    step = Fraction(str(s["multipleOf"])) if "multipleOf" in s else (Fraction(1) if integer else None)
    if step is not None and step <= 0:
        raise UnsupportedSchema("multipleOf must be positive")

    def ok(x: Fraction) -> bool:
        if lo is not None and (x < lo or (lo_open and x == lo)):
            return False
        if hi is not None and (x > hi or (hi_open and x == hi)):
            return False
        return not integer or x.denominator == 1

    if step is None:
        # a plain number: 0 when allowed, else just inside the bounds; variants step away from there
        if ok(Fraction(0)):
            start = Fraction(0)
        elif lo is not None:
            start = lo if not lo_open else (lo + 1 if hi is None or lo + 1 < hi else (lo + hi) / 2)
        else:
            assert hi is not None
            start = hi if not hi_open else hi - 1
        for x in (start + variant, start - variant, start + Fraction(variant, 1000), start):
            if ok(x):
                return _plain(x)
        raise UnsupportedSchema("no number fits between the bounds")
    # multiples of `step`: the one nearest to 0 inside the bounds, or the variant-th one after it
    origin = Fraction(0)
    if lo is not None and lo > 0:
        origin = lo
    elif hi is not None and hi < 0:
        origin = hi
    direction = 1 if origin >= 0 else -1
    n = math.ceil(origin / step) if direction > 0 else math.floor(origin / step)
    valid: list[Fraction] = []
    for i in range(10_000):
        x = (n + direction * i) * step
        if ok(x):
            valid.append(x)
            if len(valid) > variant:
                break
        elif (direction > 0 and hi is not None and x > hi) or (direction < 0 and lo is not None and x < lo):
            break
    if not valid:
        raise UnsupportedSchema("no multiple of multipleOf fits between the bounds")
    return _plain(valid[min(variant, len(valid) - 1)])


def _bound(s: dict[str, Any], inclusive: str, exclusive: str) -> tuple[Fraction | None, bool]:
    """A bound and whether it is open; handles draft 4 (`exclusiveMinimum: true` next to `minimum`) and draft 6+."""
    value = s.get(inclusive)
    flag = s.get(exclusive)
    if isinstance(flag, bool):
        return (Fraction(str(value)), flag) if value is not None else (None, False)
    if flag is not None:
        open_bound = Fraction(str(flag))
        if value is not None:
            closed = Fraction(str(value))
            tighter = open_bound >= closed if inclusive == "minimum" else open_bound <= closed
            return (open_bound, True) if tighter else (closed, False)
        return open_bound, True
    return (Fraction(str(value)), False) if value is not None else (None, False)


def _plain(x: Fraction) -> int | float:
    return int(x) if x.denominator == 1 else float(x)


# ---------------------------------------------------------------------------------------------------------------------
# strings


def _string(s: dict[str, Any], variant: int) -> str:
    patterns = [p for p in [s.get("pattern"), *s.get("_patterns", [])] if p is not None]
    lo = int(s.get("minLength", 0))
    hi = int(s["maxLength"]) if "maxLength" in s else None
    if hi is not None and lo > hi:
        raise UnsupportedSchema("minLength is larger than maxLength")
    base = _FORMATS.get(str(s.get("format")), _DEFAULT_STRING)
    if variant:
        base = _variant_of(base, variant, s.get("format"))

    def fits(text: str) -> bool:
        return lo <= len(text) and (hi is None or len(text) <= hi) and all(re.search(p, text) for p in patterns)

    # a format's value is never padded (that would break the format); the regex gives more candidates
    candidates = [base if s.get("format") in _FORMATS else _fit_length(base, lo, hi)]
    per_pattern = [_from_regex(pattern, lo, variant) for pattern in patterns]
    for options in per_pattern:
        candidates += options
    if len(per_pattern) > 1:  # several patterns (allOf): one string from each, joined, often satisfies all
        candidates.append("".join(options[0] for options in per_pattern if options))
    for text in candidates:
        if fits(text):
            return text
    if patterns:
        raise UnsupportedSchema(f"cannot build a string matching pattern {patterns[0]!r} within the length bounds")
    raise UnsupportedSchema(f"format {s.get('format')!r} does not fit the length bounds")


def _variant_of(base: str, variant: int, fmt: object) -> str:
    if fmt == "date":
        return f"2026-01-{1 + variant % 28:02d}"
    if fmt == "date-time":
        return f"2026-01-{1 + variant % 28:02d}T00:00:00Z"
    if fmt in ("email", "idn-email"):
        return f"offline{variant}@example.com"
    if fmt in ("uri", "iri", "uri-reference", "iri-reference"):
        return f"{base}{variant}"
    if fmt == "uuid":
        return f"00000000-0000-4000-8000-{variant:012d}"
    if fmt in _FORMATS:
        return base
    return f"{base}{variant}"


def _fit_length(text: str, lo: int, hi: int | None) -> str:
    if len(text) < lo:
        text += "x" * (lo - len(text))
    if hi is not None and len(text) > hi:
        text = text[:hi]
    return text


def _from_regex(pattern: str, min_length: int, variant: int) -> list[str]:
    """Strings built from the regex's structure: the fewest repetitions first, then more (to reach minLength)."""
    try:
        parsed = sre.parse(pattern)
    except re.error as exc:
        raise UnsupportedSchema(f"pattern {pattern!r} is not a regex Python understands: {exc}") from None
    out: list[str] = []
    for extra in range(min_length + 2):
        try:
            text = _RegexWriter(extra, variant).write(parsed)
        except _CannotWrite:
            break
        if text not in out:
            out.append(text)
        if len(text) >= min_length:
            break
    return out


class _CannotWrite(Exception):
    pass


class _RegexWriter:
    """Writes one string the parsed regex matches: first alternatives, `extra` more repetitions than the minimum."""

    _PREFERRED = "aA0 _-x."

    def __init__(self, extra: int, variant: int) -> None:
        self._extra = extra
        self._variant = variant
        self._groups: dict[int, str] = {}

    def write(self, parsed: Any) -> str:
        return "".join(self._node(op, arg) for op, arg in parsed)

    def _node(self, op: Any, arg: Any) -> str:
        c = sre
        if op is c.LITERAL:
            return chr(arg)
        if op is c.NOT_LITERAL:
            return next(ch for ch in self._PREFERRED if ord(ch) != arg)
        if op is c.ANY:
            return "a"
        if op is c.IN:
            return self._in(arg)
        if op is c.CATEGORY:
            return self._in([(c.CATEGORY, arg)])
        if op is c.BRANCH:
            alternatives = arg[1]
            return self.write(alternatives[self._variant % len(alternatives)])
        if op is c.SUBPATTERN:
            group, _add, _del, sub = arg
            text = self.write(sub)
            if group is not None:
                self._groups[group] = text
            return text
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            count = low + self._extra
            if high is not c.MAXREPEAT:
                count = min(count, high)
            return "".join(self.write(sub) for _ in range(count))
        if op is c.GROUPREF:
            return self._groups.get(arg, "")
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            return ""  # anchors and lookarounds consume nothing; the final re.search check decides
        raise _CannotWrite(str(op))

    def _in(self, items: list[tuple[Any, Any]]) -> str:
        c = sre
        negate = bool(items) and items[0][0] is c.NEGATE
        members = items[1:] if negate else items
        if not negate:
            op, arg = members[0]
            if op is c.LITERAL:
                return chr(arg)
            if op is c.RANGE:
                return chr(arg[0])
            if op is c.CATEGORY:
                for ch in self._PREFERRED + "!#":
                    if _in_category(ch, arg):
                        return ch
            raise _CannotWrite("character set")
        for ch in self._PREFERRED + "bcdefgh!#~":
            if not any(_member(ch, op, arg) for op, arg in members):
                return ch
        raise _CannotWrite("negated character set")


def _member(ch: str, op: Any, arg: Any) -> bool:
    c = sre
    if op is c.LITERAL:
        return ord(ch) == arg
    if op is c.RANGE:
        return arg[0] <= ord(ch) <= arg[1]
    if op is c.CATEGORY:
        return _in_category(ch, arg)
    return True  # unknown member kinds: assume it matches, so a negated set avoids this character


def _in_category(ch: str, category: Any) -> bool:
    c = sre
    checks = {
        c.CATEGORY_DIGIT: ch.isdigit(),
        c.CATEGORY_NOT_DIGIT: not ch.isdigit(),
        c.CATEGORY_SPACE: ch.isspace(),
        c.CATEGORY_NOT_SPACE: not ch.isspace(),
        c.CATEGORY_WORD: ch.isalnum() or ch == "_",
        c.CATEGORY_NOT_WORD: not (ch.isalnum() or ch == "_"),
    }
    return checks.get(category, False)
