"""Rates as dated data, strict rate codes, per-line tax rounding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError
from fapiao.core.money import MAX_MONEY_FEN
from fapiao.core.tax import (
    EXEMPT,
    NOT_TAXABLE,
    RATE_RULES,
    Rate,
    RateKind,
    line_tax,
    rate_by_code,
    rate_label,
    rates_in_force,
    resolve_rate,
)

TODAY = date(2026, 11, 27)


def codes_on(on: date) -> set[str]:
    return {rate.code for rate in rates_in_force(on)}


def test_current_rates_under_the_vat_law() -> None:
    assert codes_on(TODAY) == {
        "0.13", "0.09", "0.06", "0", "0.05", "0.03", "0.015", "0.01", "0.005", "exempt", "not_taxable",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("on", "present", "absent"),
    [
        (date(2018, 4, 30), {"0.17", "0.11", "0.06", "0"}, {"0.16", "0.1", "0.13", "0.09"}),
        (date(2018, 5, 1), {"0.16", "0.1", "0.06"}, {"0.17", "0.11", "0.13", "0.09"}),
        (date(2019, 3, 31), {"0.16", "0.1"}, {"0.13", "0.09"}),
        (date(2019, 4, 1), {"0.13", "0.09", "0.06", "0"}, {"0.16", "0.1", "0.17", "0.11"}),
        (date(2017, 6, 30), {"0.17", "0.13", "0.11"}, {"0.1"}),
        (date(2017, 7, 1), {"0.17", "0.11"}, {"0.13"}),
        (date(2020, 2, 29), {"0.03", "0.05", "0.015"}, {"0.01", "0.005"}),
        (date(2020, 3, 1), {"0.01"}, {"0.005"}),
        (date(2020, 5, 1), {"0.01", "0.005"}, set()),
        (date(2027, 12, 31), {"0.005"}, set()),
        (date(2028, 1, 1), {"0.13", "0.01"}, {"0.005"}),
        (date(2016, 4, 30), {"0.03"}, {"0.05", "0.015"}),
        (date(2026, 1, 1), {"0.13", "0.09", "0.06", "0", "0.03"}, set()),
    ],
)
def test_rates_follow_their_effective_dates(on: date, present: set[str], absent: set[str]) -> None:
    codes = codes_on(on)
    assert present <= codes
    assert not absent & codes
    assert {"exempt", "not_taxable"} <= codes


def test_resolve_rate_returns_the_rate() -> None:
    six = resolve_rate("0.06", TODAY)
    assert six == Rate("0.06", Decimal("0.06"), RateKind.TAX_RATE)
    assert resolve_rate("0.03", TODAY).kind is RateKind.LEVY_RATE
    assert resolve_rate("exempt", TODAY) is EXEMPT
    assert resolve_rate("not_taxable", TODAY) is NOT_TAXABLE
    assert resolve_rate("0.17", date(2018, 1, 1)).value == Decimal("0.17")


@pytest.mark.parametrize(
    "value", ["0.060", "6%", "0.00", "0.0", "0.10", "6", "EXEMPT", " 0.06", "0.07", "", "0.013"]
)
def test_only_canonical_codes(value: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        resolve_rate(value, TODAY)
    assert caught.value.code == "unsupported_rate"
    assert "0.06" in caught.value.params["allowed"].split(", ")
    assert "0.17" not in caught.value.params["allowed"].split(", ")


@pytest.mark.parametrize("value", [0.06, 6, None, True, Decimal("0.06")])
def test_rate_must_be_a_string(value: object) -> None:
    with pytest.raises(InvalidValueError) as caught:
        resolve_rate(value, TODAY)
    assert caught.value.code == "not_a_string"


@pytest.mark.parametrize(
    ("value", "on"),
    [("0.17", TODAY), ("0.16", date(2019, 4, 1)), ("0.09", date(2019, 3, 31)), ("0.005", date(2028, 1, 1))],
)
def test_rate_not_in_force(value: str, on: date) -> None:
    with pytest.raises(InvalidValueError) as caught:
        resolve_rate(value, on)
    assert caught.value.code == "rate_not_in_force"
    assert caught.value.params["rate"] == value
    assert caught.value.params["date"] == on.isoformat()
    assert value not in caught.value.params["allowed"].split(", ")


def test_every_code_is_canonical_and_means_one_rate() -> None:
    by_code: dict[str, Rate] = {}
    for rule in RATE_RULES:
        rate = rule.rate
        assert by_code.setdefault(rate.code, rate) == rate
        if rate.kind in (RateKind.TAX_RATE, RateKind.LEVY_RATE):
            assert rate.code == format(rate.value.normalize(), "f")  # no trailing zeros
            assert rate.value == Decimal(rate.code)
        if rule.valid_to is not None:
            assert rule.valid_from <= rule.valid_to


@pytest.mark.parametrize(
    ("amount", "code", "tax"),
    [
        (100000, "0.06", 6000),
        (25000, "0.06", 1500),
        (8880, "0.06", 533),  # 532.8 -> 533
        (1, "0.13", 0),  # 0.13 fen
        (4, "0.13", 1),  # 0.52 fen -> 1
        (50, "0.01", 1),  # exactly half a fen rounds up
        (-50, "0.01", -1),  # symmetric for red invoices
        (-8880, "0.06", -533),
        (100, "0.005", 1),  # 0.5 -> 1
        (300, "0.015", 5),  # 4.5 -> 5
        (100000, "0", 0),
        (100000, "exempt", 0),
        (100000, "not_taxable", 0),
        (MAX_MONEY_FEN, "0.13", 12999999999999 + 1),  # 12999999999999.87 -> ...000
    ],
)
def test_line_tax(amount: int, code: str, tax: int) -> None:
    assert line_tax(amount, resolve_rate(code, TODAY)) == tax


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("0.13", "13%"),
        ("0.09", "9%"),
        ("0.06", "6%"),
        ("0", "0%"),
        ("0.015", "1.5%"),
        ("0.005", "0.5%"),
        ("0.01", "1%"),
        ("exempt", "免税"),
        ("not_taxable", "不征税"),
    ],
)
def test_rate_label(code: str, label: str) -> None:
    assert rate_label(resolve_rate(code, TODAY)) == label


def test_historical_labels() -> None:
    assert rate_label(resolve_rate("0.1", date(2018, 6, 1))) == "10%"
    assert rate_label(resolve_rate("0.17", date(2018, 1, 1))) == "17%"


taxed_codes = st.sampled_from(
    [r.code for r in rates_in_force(TODAY) if r.kind in (RateKind.TAX_RATE, RateKind.LEVY_RATE)]
)


@given(st.integers(min_value=-MAX_MONEY_FEN, max_value=MAX_MONEY_FEN), taxed_codes)
def test_line_tax_within_half_a_fen_of_exact(amount: int, code: str) -> None:
    rate = resolve_rate(code, TODAY)
    tax = line_tax(amount, rate)
    exact = Decimal(amount) * rate.value
    assert abs(Decimal(tax) - exact) <= Decimal("0.5")
    assert line_tax(-amount, rate) == -tax
    if abs(Decimal(tax) - exact) == Decimal("0.5"):
        assert abs(tax) > abs(exact)  # ties go away from zero


@given(st.dates(min_value=date(1994, 1, 1), max_value=date(2035, 12, 31)))
def test_every_rate_in_force_resolves_and_others_do_not(on: date) -> None:
    in_force = rates_in_force(on)
    for rate in in_force:
        assert resolve_rate(rate.code, on) == rate
    for rule in RATE_RULES:
        if rule.rate.code not in {rate.code for rate in in_force}:
            with pytest.raises(InvalidValueError) as caught:
                resolve_rate(rule.rate.code, on)
            assert caught.value.code == "rate_not_in_force"


def test_rate_by_code_ignores_dates() -> None:
    assert rate_by_code("0.16") == resolve_rate("0.16", date(2018, 6, 1))
    assert rate_by_code("exempt") is EXEMPT
    with pytest.raises(InvalidValueError) as caught:
        rate_by_code("0.060")
    assert caught.value.code == "unsupported_rate"
    assert "0.17" in caught.value.params["allowed"].split(", ")
