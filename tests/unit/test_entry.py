"""What a clerk types → the API's strings (fapiao.core.entry)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.entry import (
    exclusive_unit_price,
    inclusive_unit_price,
    number_text,
    rate_code,
    unit_price_on_basis,
)
from fapiao.core.errors import InvalidValueError
from fapiao.core.money import line_amount
from fapiao.core.tax import line_tax, rate_by_code, rates_in_force

ON = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("typed", "text"),
    [
        ("1000", "1000"),
        ("1,000.00", "1000.00"),
        ("１０００", "1000"),
        ("１，０００．５０", "1000.50"),
        ("¥1,234,567.8", "1234567.8"),
        ("￥ 99 元", "99"),
        (" 12.5 ", "12.5"),
        (".5", "0.5"),
        ("3.", "3"),
        ("-1,000", "-1000"),
    ],
)
def test_number_text(typed: str, text: str) -> None:
    assert number_text(typed) == text


@pytest.mark.parametrize("typed", ["1,00", "1,0000", ",100", "1,000,00.5"])
def test_commas_only_group_thousands(typed: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        number_text(typed)
    assert error.value.code == "bad_grouping"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("6%", "0.06"),
        ("６％", "0.06"),
        ("6", "0.06"),
        ("0.06", "0.06"),
        ("13", "0.13"),
        ("1.5%", "0.015"),
        ("1.5", "0.015"),
        ("0", "0"),
        ("0%", "0"),
        ("免税", "exempt"),
        ("不征税", "not_taxable"),
        ("exempt", "exempt"),
    ],
)
def test_rate_code(typed: str, code: str) -> None:
    assert rate_code(typed, ON) == code


@pytest.mark.parametrize("typed", ["7%", "abc", "", "0.07", "17%"])
def test_unknown_rates_list_what_a_clerk_may_write(typed: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        rate_code(typed, ON)
    allowed = error.value.params["allowed"]
    assert "6%" in allowed and "免税" in allowed and "exempt" not in allowed


@pytest.mark.parametrize(
    ("inclusive", "rate", "exclusive"),
    [
        ("1060", "0.06", "1000.00"),
        ("1000", "0.06", "943.39622642"),
        ("113", "0.13", "100.00"),
        ("100", "0.13", "88.49557522"),
        ("100", "exempt", "100"),
        ("100", "0", "100"),
        ("0.01", "0.06", "0.00943396"),
    ],
)
def test_exclusive_unit_price(inclusive: str, rate: str, exclusive: str) -> None:
    assert format(exclusive_unit_price(Decimal(inclusive), rate_by_code(rate)), "f") == exclusive


@pytest.mark.parametrize(
    ("exclusive", "rate", "inclusive"),
    [
        ("1000", "0.06", "1060.00"),
        ("1000.00", "0.13", "1130.00"),
        ("943.39622642", "0.06", "1000.00000001"),  # not the exact inverse: both round to 8 places
        ("0.00943396", "0.06", "0.01"),
        ("100", "exempt", "100"),
        ("100", "0", "100"),
    ],
)
def test_inclusive_unit_price(exclusive: str, rate: str, inclusive: str) -> None:
    assert format(inclusive_unit_price(Decimal(exclusive), rate_by_code(rate)), "f") == inclusive


def test_unit_price_on_basis_converts_only_across_bases() -> None:
    rate = rate_by_code("0.06")
    price = Decimal("1060")
    assert unit_price_on_basis(price, rate, includes_tax=True, wanted_inclusive=True) is price
    assert unit_price_on_basis(price, rate, includes_tax=False, wanted_inclusive=False) is price
    assert unit_price_on_basis(price, rate, includes_tax=True, wanted_inclusive=False) == Decimal("1000")
    assert unit_price_on_basis(Decimal("1000"), rate, includes_tax=False, wanted_inclusive=True) == 1060


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
    rate=st.sampled_from([rate for rate in rates_in_force(ON) if rate.is_taxed]),
)
def test_a_price_with_tax_round_trips_to_the_fen(price: Decimal, rate: object) -> None:
    back = inclusive_unit_price(exclusive_unit_price(price, rate), rate)  # type: ignore[arg-type]
    assert abs(back - price) < Decimal("0.0000001")


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
    quantity=st.integers(min_value=1, max_value=10_000),
    rate=st.sampled_from([rate for rate in rates_in_force(ON) if rate.is_taxed]),
)
def test_converted_price_keeps_the_total_within_a_fen_or_two(
    price: Decimal, quantity: int, rate: object
) -> None:
    unit = exclusive_unit_price(price, rate)  # type: ignore[arg-type]
    assert -unit.as_tuple().exponent <= 8  # type: ignore[operator]
    amount = line_amount(Decimal(quantity), unit)
    total = amount + line_tax(amount, rate)  # type: ignore[arg-type]
    typed_total = line_amount(Decimal(quantity), price)
    # Two roundings (amount, then tax) and the 8-place unit price: at most a couple of fen apart.
    assert abs(total - typed_total) <= 2 + quantity // 1_000_000
