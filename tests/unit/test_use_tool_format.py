"""The `<use_tool>` format (app/translate/use_tool.py): Copilot's reading rules, and render → parse round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.translate.use_tool import parse, render_block, split_results

KIND = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def args_of(text: str, kinds: dict[str, dict[str, str]] | None = None) -> list[tuple[str, object]]:
    parsed = parse(text, kinds)
    assert parsed is not None
    return [(b.name, json.loads(b.arguments)) for b in parsed.blocks]


def test_the_canonical_block_has_one_element_per_parameter() -> None:
    assert render_block("localSearch", '{"query": "piano", "salientTerms": ["piano"]}') == (
        '<use_tool>\n<name>localSearch</name>\n<query>piano</query>\n<salientTerms>["piano"]</salientTerms>\n</use_tool>'
    )


def test_a_call_without_arguments_is_just_its_name() -> None:
    assert render_block("getFileTree", "{}") == "<use_tool>\n<name>getFileTree</name>\n</use_tool>"


def test_arguments_that_are_not_an_object_of_xml_names_go_in_one_args_element() -> None:
    block = render_block("t", '{"not a tag": 1}')
    assert "<args>" in block
    assert args_of(block) == [("t", {"not a tag": 1})]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<q>text</q>", {"q": "text"}),
        ("<q>  padded  </q>", {"q": "padded"}),
        ('<terms>["a", "b"]</terms>', {"terms": ["a", "b"]}),
        ('<range>{"start": 1}</range>', {"range": {"start": 1}}),
        ("<terms><item>a</item><item>b</item></terms>", {"terms": ["a", "b"]}),
        ("<range><start>1</start><end>2</end></range>", {"range": {"start": "1", "end": "2"}}),
        ("<n>0</n>", {"n": "0"}),  # Copilot reads undeclared scalars as strings
        ("<bad>[not json</bad>", {"bad": "[not json"}),
        ('<args>{"q": "x", "n": 1}</args>', {"q": "x", "n": 1}),  # the older Copilot form
    ],
)
def test_parameters_are_read_as_copilot_reads_them(body: str, expected: dict) -> None:
    assert args_of(f"<use_tool><name>t</name>{body}</use_tool>") == [("t", expected)]


def test_declared_types_turn_scalars_back_into_numbers_and_booleans() -> None:
    text = "<use_tool><name>t</name><n>0</n><f>1.5</f><b>true</b><s>7</s></use_tool>"
    kinds = {"t": {"n": "integer", "f": "number", "b": "boolean", "s": "string"}}
    assert args_of(text, kinds) == [("t", {"n": 0, "f": 1.5, "b": True, "s": "7"})]


def test_prose_around_blocks_is_kept_and_a_block_without_a_name_is_not_a_call() -> None:
    parsed = parse("Before.\n<use_tool><name>a</name></use_tool>\nAfter.")
    assert parsed is not None and parsed.prose == "Before.\n\nAfter."
    assert parse("<use_tool><q>x</q></use_tool>") is None
    assert parse("no blocks here") is None


def test_textual_results_split_in_call_order() -> None:
    text = "Tool 'a' result: 1\n\nTool 'b' result: two\n\nlines"
    assert split_results(["a", "b"], text) == ["1", "two\n\nlines"]
    assert split_results(["a", "b"], "Tool 'a' result: 1") is None
    assert split_results(["b", "a"], text) is None


def unambiguous(value: str) -> bool:
    """Copilot trims parameter text (so top-level strings are generated trimmed), and a value that itself contains
    `&lt;/` or `&lt;use_tool` without any `<` reads like an escaped one: the two limits docs/chat.md names."""
    return not ("<" not in value and ("&lt;/" in value or "&lt;use_tool" in value))


JSON_SCALARS = st.one_of(st.integers(-(10**6), 10**6), st.booleans(), st.text(max_size=20).filter(unambiguous))
TRICKY = ["</x>", "a</use_tool>b", "<b>bold</b>", "&amp; &lt;", "x<y", "<item>1</item>", "<use_tool>", "[1, 2]", "7"]
STRINGS = st.one_of(st.text(max_size=40), st.sampled_from(TRICKY), st.lists(st.sampled_from(TRICKY)).map(" ".join))
STRINGS = STRINGS.filter(lambda v: v == v.strip() and unambiguous(v))
VALUES = st.one_of(
    STRINGS,
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.lists(JSON_SCALARS, max_size=4),
    st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), JSON_SCALARS, max_size=3),
)
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(lambda k: k not in ("args", "arguments"))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_render_then_parse_gives_the_arguments_back(args: dict[str, object]) -> None:
    kinds = {"tool": {key: KIND[type(value)] for key, value in args.items()}}
    block = render_block("tool", json.dumps(args))
    assert block.count("<use_tool>") == 1 and block.endswith("</use_tool>")
    assert args_of(f"text first\n\n{block}", kinds) == [("tool", args)]
