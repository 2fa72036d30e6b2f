"""The text rules every field shares (issue 13, findings 10, 13 and 16): no control characters;
names that show what they say; free text that is text, never the repr of an object."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError, ValidationFailed
from fapiao.core.text import FREE_TEXT, LINE_BREAKS, clean_name, clean_text, free_text


@pytest.mark.parametrize(
    "name,code",
    [
        ("\u200b\u200b\u200b", "hidden_character"),  # zero-width spaces only: looked empty, was issued
        ("\u202e司公限有易贸", "hidden_character"),  # right-to-left override
        ("\u202d北京", "hidden_character"),
        ("\u2066北京\u2069", "hidden_character"),  # isolates
        ("\u2067北京\u2069", "hidden_character"),
        ("\u2068北京\u2069", "hidden_character"),
        ("北京\u200e", "hidden_character"),  # direction marks
        ("\u061c北京", "hidden_character"),
        ("北\u00ad京", "hidden_character"),  # soft hyphen
        ("\ufeff北京", "hidden_character"),
        ("\u3164", "no_visible_character"),  # Hangul filler
        ("\u2800\u2800", "no_visible_character"),  # braille blank
        ("\u0301", "no_visible_character"),  # a combining mark on nothing
        ("   ", "blank"),
        ("北\x00京", "bad_character"),
        ("北\t京", "bad_character"),
        (["北京"], "not_a_string"),
    ],
)
def test_names_that_hide_or_reverse_are_refused(name, code):
    with pytest.raises(InvalidValueError) as caught:
        clean_name(name, max_len=100)
    assert caught.value.code == code


@pytest.mark.parametrize(
    "name",
    ["北京买方贸易有限公司", "شركة المثال", "Café ☕", "👨\u200d👩\u200d👧 家庭", "می\u200cخواهم", "A&B (1)"],
)
def test_visible_names_in_any_script(name):
    assert clean_name(f"  {name} ", max_len=100) == name


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=20))
def test_an_accepted_name_is_visible_and_plain(text):
    try:
        name = clean_name(text, max_len=100, required=False)
    except InvalidValueError:
        return
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
    assert not any(unicodedata.category(c) == "Cf" and c not in "\u200c\u200d" for c in name)
    assert not name or any(unicodedata.category(c)[0] in "LNPS" for c in name)


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x7f", "\x9b", "\ud800"])
def test_control_characters_everywhere(char):
    for allow in ("", LINE_BREAKS, FREE_TEXT):
        with pytest.raises(InvalidValueError) as caught:
            clean_text(f"a{char}b", max_len=10, allow=allow)
        assert caught.value.code == "bad_character"


def test_free_text_keeps_tab_and_line_breaks():
    assert free_text(" 一\t二\r\n三 ", "body", max_len=100) == "一\t二\r\n三"


@pytest.mark.parametrize("value", [{}, [], {"note": [1, 2]}, 1, 1.5, True])
def test_free_text_is_text_never_a_repr(value):
    with pytest.raises(ValidationFailed) as caught:
        free_text(value, "reason", max_len=100)
    assert [(e.field, e.code) for e in caught.value.errors] == [("reason", "not_a_string")]


def test_free_text_required_and_optional():
    assert free_text(None, "reason", max_len=10) == ""
    with pytest.raises(ValidationFailed) as caught:
        free_text("  ", "reason", max_len=10, required=True)
    assert caught.value.errors[0].code == "required"
