"""The JSON body reader (issue 13, findings 9 and 15): nesting and size are bounded before parsing;
whatever bytes arrive, the answer is a document or a ValidationFailed — never a RecursionError."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fapiao.core.errors import ValidationFailed
from fapiao.core.json_input import MAX_DEPTH, nesting_depth, parse_json


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    return 0


# Strings full of what a bracket scanner must not be fooled by, and any printable text.
texts = st.text(st.sampled_from('[]{}"\\/ a,:é'), max_size=12) | st.text(
    st.characters(exclude_categories=("Cc", "Cs")), max_size=12
)
documents = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=40,
)


def codes(failure: ValidationFailed) -> set[tuple[str, str]]:
    return {(error.field, error.code) for error in failure.errors}


@settings(max_examples=400, deadline=None)
@given(documents)
@example({"": []})
@example([{"a": [{"\\": '[\\"]'}]}])
@example(["[", "]]", ['"[', {"}": "{"}]])
def test_the_depth_measured_on_the_bytes_is_the_documents_depth(document):
    data = json.dumps(document, ensure_ascii=False).encode()
    assert nesting_depth(data, limit=1000) == depth_of(document)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_a_document_within_the_bound_reads_back_as_itself(document):
    assert parse_json(json.dumps(document, ensure_ascii=False).encode()) == document


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=3000), st.sampled_from(["[]", "{}"]))
def test_anything_deeper_than_the_bound_is_refused(depth, pair):
    data = "[" * depth + "]" * depth if pair == "[]" else '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)
    with pytest.raises(ValidationFailed) as caught:
        parse_json(data.encode())
    assert codes(caught.value) == {("body", "too_deep")}


# Bytes built from the characters that matter to a bracket scanner, and any bytes at all.
scanner_text = st.text(st.sampled_from('[]{}"\\,:1 a\x00é'), max_size=300)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(scanner_text.map(str.encode), st.binary(max_size=300)))
@example(b"[" * 100_000)
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'"' + b"[" * 100_000)
@example(b'["\\"]' + b"[" * 5000)
@example(b"\xff\xfe[]")
def test_any_bytes_give_a_document_or_a_validation_failure(data):
    try:
        parse_json(data)
    except ValidationFailed as failure:
        assert failure.errors and all(error.code for error in failure.errors)


@pytest.mark.parametrize(
    "data,code",
    [
        (b"[" * 1000 + b"]" * 1000, "too_deep"),
        (b"[" * 100_000, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b"[}", "malformed_json"),
        (b'{"kind": NaN}', "malformed_json"),
        (b'{"kind": "ordinary", ', "malformed_json"),
        (b"\xff", "malformed_json"),
        (b"1" * 5000, "malformed_json"),  # beyond Python's integer-string limit
    ],
)
def test_refusals_name_the_body(data, code):
    with pytest.raises(ValidationFailed) as caught:
        parse_json(data)
    assert codes(caught.value) == {("body", code)}


def test_brackets_inside_strings_do_not_count():
    text = "[" * 100_000 + '\\"' + "{" * 1000
    assert parse_json(json.dumps({"remark": text}).encode()) == {"remark": text}


def test_the_bound_itself_is_accepted():
    data = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert depth_of(parse_json(data.encode())) == MAX_DEPTH


@pytest.mark.parametrize(
    "body",
    [
        b'"' + b'\\"' * 4_000_000,  # an unterminated string of escaped quotes: no quadratic scan
        b"[" + b'"",' * 2_500_000 + b'""]',
        b"[]" * 4_000_000,
        b"[" * 31 + b"[]" * 4_000_000 + b"]" * 31,
    ],
    ids=["escaped-quotes", "many-strings", "many-pairs", "deep-and-wide"],
)
def test_eight_megabytes_of_hostile_shapes_are_read_quickly(body):
    started = time.perf_counter()
    with contextlib.suppress(ValidationFailed):
        parse_json(body)
    assert time.perf_counter() - started < 5


# --- control characters -------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f", "\x85", "\x9f", "\ud800"])
def test_control_characters_are_refused_where_they_are(char):
    document = {"buyer": {"name": f"a{char}b"}, "lines": [{"name": "ok"}, {"name": char}]}
    with pytest.raises(ValidationFailed) as caught:
        parse_json(json.dumps(document).encode())
    assert codes(caught.value) == {("buyer.name", "bad_character"), ("lines.1.name", "bad_character")}


def test_a_control_character_in_a_key_is_refused_at_its_object():
    with pytest.raises(ValidationFailed) as caught:
        parse_json(json.dumps({"buyer": {"na\x00me": "x"}}).encode())
    assert codes(caught.value) == {("buyer", "bad_character")}


def test_tab_line_feed_and_carriage_return_pass_the_reader():
    document = {"body": "一\t二\r\n三"}
    assert parse_json(json.dumps(document).encode()) == document


def test_at_most_twenty_problems_are_listed():
    with pytest.raises(ValidationFailed) as caught:
        parse_json(json.dumps(["\x00"] * 1000).encode())
    assert len(caught.value.errors) == 20
