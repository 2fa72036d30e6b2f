"""The fast path of ``canonical_bytes`` writes exactly what ``rfc8785`` writes."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.canonical import _plain, canonical_bytes
from fapiao.core.errors import InvalidValueError

SAFE = 2**53 - 1
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
leaves = st.none() | st.booleans() | st.integers(-SAFE, SAFE) | text
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_keys, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_fast_path_equals_rfc8785(value: object) -> None:
    assert _plain(value)
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\u00e9": 1, "e": 2},  # a non-ASCII key: rfc8785 sorts it
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code-point order
        {"big": 2**60},
    ],
)
def test_what_the_fast_path_cannot_promise_goes_through_rfc8785(value: object) -> None:
    assert not _plain(value)
    if isinstance(value, dict) and "big" in value:
        with pytest.raises(InvalidValueError):
            canonical_bytes(value)
    else:
        assert canonical_bytes(value) == rfc8785.dumps(value)


def test_controls_and_lone_surrogates() -> None:
    assert canonical_bytes({"a": '\x00\x1f\x7f\b\t\n\f\r"\\\u2028'}) == rfc8785.dumps(
        {"a": '\x00\x1f\x7f\b\t\n\f\r"\\\u2028'}
    )
    with pytest.raises(InvalidValueError):
        canonical_bytes({"a": "\ud800"})
    with pytest.raises(InvalidValueError, match="float"):
        canonical_bytes({"a": 1.5})
