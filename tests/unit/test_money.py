"""Money and decimals: strict parsing, formatting, explicit half-up rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError
from fapiao.core.money import (
    MAX_MONEY_FEN,
    MAX_QUANTITY,
    format_decimal,
    format_money,
    line_amount,
    parse_decimal,
    parse_money,
    yuan_to_fen,
)

money_fen = st.integers(min_value=-MAX_MONEY_FEN, max_value=MAX_MONEY_FEN)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1060.00", 106000),
        ("1000", 100000),
        ("0.5", 50),
        ("0.05", 5),
        ("0", 0),
        ("0.00", 0),
        ("007.10", 710),
        ("999999999999.99", MAX_MONEY_FEN),
    ],
)
def test_parse_money_accepts_plain_decimal_strings(text: str, fen: int) -> None:
    assert parse_money(text) == fen


def test_parse_money_negative_only_when_allowed() -> None:
    assert parse_money("-1060.00", allow_negative=True) == -106000
    assert parse_money("-0.05", allow_negative=True) == -5
    assert parse_money("-0", allow_negative=True) == 0
    with pytest.raises(InvalidValueError) as caught:
        parse_money("-1")
    assert caught.value.code == "negative"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1000, "not_a_string"),
        (10.5, "not_a_string"),
        (True, "not_a_string"),
        (None, "not_a_string"),
        (Decimal("1"), "not_a_string"),
        ("", "empty"),
        ("1e3", "exponent"),
        ("1E-2", "exponent"),
        ("-2.5e+3", "exponent"),
        ("NaN", "not_a_number"),
        ("nan", "not_a_number"),
        ("Infinity", "not_a_number"),
        ("-inf", "not_a_number"),
        ("sNaN", "not_a_number"),
        ("+5", "bad_format"),
        (" 5", "bad_format"),
        ("5 ", "bad_format"),
        (".5", "bad_format"),
        ("5.", "bad_format"),
        ("1,000.00", "bad_format"),
        ("¥5", "bad_format"),
        ("１２", "bad_format"),  # full-width digits are not ASCII digits
        ("0x10", "bad_format"),
        ("1_000", "bad_format"),
        ("1.001", "too_many_decimals"),
        ("1.000", "too_many_decimals"),
        ("1000000000000", "too_large"),
        ("999999999999.999", "too_many_decimals"),
        ("9" * 5000, "too_large"),
        ("-1", "negative"),
    ],
)
def test_parse_money_rejects(value: object, code: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_money(value)
    assert caught.value.code == code


def test_too_many_decimals_names_the_places() -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_money("1.234")
    assert caught.value.params == {"places": 2}
    assert caught.value.message == "Use at most {places} decimal places."
    assert str(caught.value) == "Use at most 2 decimal places."


def test_too_large_negative_money() -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_money("-1000000000000.00", allow_negative=True)
    assert caught.value.code == "too_large"
    assert caught.value.params == {"max": "999999999999.99"}


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (106000, "1060.00"),
        (-5, "-0.05"),
        (0, "0.00"),
        (1, "0.01"),
        (-100, "-1.00"),
        (MAX_MONEY_FEN, "999999999999.99"),
    ],
)
def test_format_money(fen: int, text: str) -> None:
    assert format_money(fen) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal("1")),
        ("1000.00", Decimal("1000.00")),
        ("0.00000001", Decimal("0.00000001")),
        ("2.5", Decimal("2.5")),
    ],
)
def test_parse_decimal_keeps_scale(text: str, expected: Decimal) -> None:
    parsed = parse_decimal(text)
    assert parsed == expected
    assert format_decimal(parsed) == text


@pytest.mark.parametrize(
    ("value", "kwargs", "code"),
    [
        (1.5, {}, "not_a_string"),
        (3, {}, "not_a_string"),
        ("0", {}, "not_positive"),
        ("0.000", {}, "not_positive"),
        ("-1", {}, "not_positive"),
        ("0.000000001", {}, "too_many_decimals"),
        ("1.5", {"places": 0}, "too_many_decimals"),
        ("1000000000000.00000001", {}, "too_large"),
        ("11", {"maximum": Decimal(10)}, "too_large"),
        ("-11", {"positive": False, "maximum": Decimal(10)}, "too_large"),
        ("1e-8", {}, "exponent"),
        ("Infinity", {}, "not_a_number"),
        ("+1", {}, "bad_format"),
    ],
)
def test_parse_decimal_rejects(value: object, kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        parse_decimal(value, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_parse_decimal_maximum_is_inclusive_and_signs_when_not_positive() -> None:
    assert parse_decimal("1000000000000") == MAX_QUANTITY
    assert parse_decimal("-2.5", positive=False) == Decimal("-2.5")
    assert format_decimal(parse_decimal("-0.00", positive=False)) == "0.00"  # never "-0.00"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1000.00"), "1000.00"),
        (Decimal("1"), "1"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-0.5"), "-0.5"),
    ],
)
def test_format_decimal_plain_notation(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


def test_format_decimal_refuses_nan() -> None:
    with pytest.raises(ValueError):
        format_decimal(Decimal("NaN"))


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [
        ("0.005", 1),
        ("0.0049999", 0),
        ("0.015", 2),
        ("0.025", 3),  # half-up, not banker's rounding (which would give 2)
        ("-0.005", -1),
        ("-0.025", -3),
        ("1060", 106000),
        ("88.8", 8880),
    ],
)
def test_yuan_to_fen_rounds_half_up(yuan: str, fen: int) -> None:
    assert yuan_to_fen(Decimal(yuan)) == fen


def test_line_amount_is_exact_for_big_operands() -> None:
    # 10^12 × 999999999999.99999999 has far more than 28 digits; no silent precision loss.
    assert line_amount(Decimal("0.00000001"), Decimal("0.5")) == 0
    assert line_amount(Decimal("3"), Decimal("0.005")) == 2
    big = line_amount(Decimal("123456789.12345678"), Decimal("8765.43210987"))
    exact = Decimal("123456789.12345678") * Decimal("8765.43210987")  # default context: approximate
    assert abs(Decimal(big) - exact * 100) <= Decimal("0.5")
    numerator = 12345678912345678 * 876543210987  # both scaled by 10^8
    assert big == (numerator * 100 + 10**16 // 2) // 10**16  # half-up in integer arithmetic


@given(money_fen)
def test_money_round_trip(fen: int) -> None:
    assert parse_money(format_money(fen), allow_negative=True) == fen


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=MAX_QUANTITY, places=8, allow_nan=False))
def test_decimal_round_trip(value: Decimal) -> None:
    assert parse_decimal(format_decimal(value)) == value
    assert format_decimal(parse_decimal(format_decimal(value))) == format_decimal(value)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False))
def test_yuan_to_fen_within_half_a_fen_and_symmetric(value: Decimal) -> None:
    fen = yuan_to_fen(value)
    assert abs(Decimal(fen) - value * 100) <= Decimal("0.5")
    assert yuan_to_fen(-value) == -fen


@given(st.text(max_size=30))
def test_parse_money_never_raises_anything_else(text: str) -> None:
    try:
        fen = parse_money(text, allow_negative=True)
    except InvalidValueError:
        return
    assert isinstance(fen, int)
    assert abs(fen) <= MAX_MONEY_FEN
