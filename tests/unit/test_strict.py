"""Whole numbers and dates typed as text (issue 13, finding 14): ASCII digits only, bounded ranges;
any text gives a value in range or an InvalidValueError — never ValueError or OverflowError."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError
from fapiao.core.strict import (
    EARLIEST_DATE,
    LATEST_DATE,
    parse_iso_date,
    parse_whole_number,
    whole_number_or_none,
)


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_a_number_in_range_reads_back(value):
    assert parse_whole_number(str(value), minimum=0, maximum=10**6) == value
    assert parse_whole_number(f" 00{value} ", minimum=0, maximum=10**6) == value


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=30) | st.text(st.sampled_from("0123456789²①١٣٠+-_ ."), max_size=30))
@example("²")
@example("①")
@example("٣")
@example("+1")
@example("1_000")
@example("9" * 5000)
@example("")
def test_any_text_is_a_number_in_range_or_refused(text):
    try:
        value = parse_whole_number(text, minimum=1, maximum=36_500)
    except InvalidValueError as error:
        assert error.code in {"not_a_whole_number", "out_of_range"}
    else:
        assert 1 <= value <= 36_500
        assert text.strip().isascii() and text.strip().isdigit()


@pytest.mark.parametrize(
    "text,code",
    [
        ("999999", "out_of_range"),
        ("0", "out_of_range"),
        ("9" * 5000, "out_of_range"),
        ("²", "not_a_whole_number"),
        ("①", "not_a_whole_number"),
        ("١٢", "not_a_whole_number"),  # Arabic-Indic digits
        ("-1", "not_a_whole_number"),
        ("1e3", "not_a_whole_number"),
        (None, "not_a_whole_number"),
    ],
)
def test_refused_numbers(text, code):
    with pytest.raises(InvalidValueError) as caught:
        parse_whole_number(text, minimum=1, maximum=36_500)
    assert caught.value.code == code


def test_or_none_for_hidden_fields():
    assert whole_number_or_none("12") == 12
    assert whole_number_or_none("²") is None
    assert whole_number_or_none("9" * 30) is None


@settings(max_examples=500, deadline=None)
@given(st.dates(min_value=EARLIEST_DATE, max_value=LATEST_DATE))
def test_a_date_in_range_reads_back(day):
    assert parse_iso_date(day.isoformat()) == day


@settings(max_examples=2000, deadline=None)
@given(
    st.text(max_size=20)
    | st.text(st.sampled_from("0123456789-W²T: "), max_size=20)
    | st.dates().map(date.isoformat)
)
@example("9999-12-31")
@example("0001-01-01")
@example("2026-02-30")
@example("20261128")
@example("2026-W48-1")
@example("2026-11-28T00:00")
def test_any_text_is_a_date_in_range_or_refused(text):
    try:
        day = parse_iso_date(text)
    except InvalidValueError as error:
        assert error.code in {"bad_date", "date_out_of_range"}
    else:
        assert EARLIEST_DATE <= day <= LATEST_DATE
        assert day.isoformat() == text.strip()


@pytest.mark.parametrize(
    "text,code",
    [
        ("9999-12-31", "date_out_of_range"),
        ("0001-01-01", "date_out_of_range"),
        ("1899-12-31", "date_out_of_range"),
        ("2026-02-30", "bad_date"),
        ("20261128", "bad_date"),
        ("2026-W48-1", "bad_date"),
        ("２０２６-１１-２８", "bad_date"),  # callers normalise full-width digits first, if they wish
    ],
)
def test_refused_dates(text, code):
    with pytest.raises(InvalidValueError) as caught:
        parse_iso_date(text)
    assert caught.value.code == code
