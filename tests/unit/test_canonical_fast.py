"""canonical_bytes writes plain values with the standard library's encoder: byte for byte what
rfc8785 writes, on generated values (any strings, controls and non-BMP characters included)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.canonical import canonical_bytes
from fapiao.core.errors import InvalidValueError

SAFE = 2**53 - 1
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-SAFE, SAFE) | texts
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_fast_path_writes_rfc8785_bytes(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code point order here
        {"text": 'tab\tnul\x00del\x7f line\u2028 quote" back\\ é 发票 \U0001f600'},
        {"deep": [[[{"k": [1, -1, 0, True, False, None]}]]]},
    ],
)
def test_edge_values_agree_with_rfc8785(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "code"),
    [({"n": 2**53}, "not_canonical"), ({"s": "\ud800"}, "not_canonical"), ({"f": 1.5}, "float_in_entry")],
)
def test_what_rfc8785_cannot_write_is_still_refused(value, code):
    with pytest.raises(InvalidValueError) as raised:
        canonical_bytes(value)
    assert raised.value.code == code
