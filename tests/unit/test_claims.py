"""Claim versus evidence, field by field: people's spellings agree, real differences are listed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.claims import COMPARED_FIELDS, ClaimDifference, compare_claim
from fapiao.formats.einvoice_xml import read_einvoice_xml

FIXTURES = Path(__file__).parent / "fixtures" / "einvoice"
CLAIM: dict[str, object] = {
    "number": "26112000000000012345",
    "issued_on": "2026-03-05",
    "seller_tax_id": "91110108MA01ABCD84",
    "buyer_name": "北京买方贸易有限公司",
    "buyer_tax_id": "91110000MA01XKQ2TQ",
    "total_with_tax_fen": 139900,
    "total_amount_fen": 130000,
    "total_tax_fen": 9900,
}


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (U+FF01…), the way some IMEs type them."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def test_the_same_values_do_not_differ() -> None:
    assert compare_claim(CLAIM, dict(CLAIM)) == []


@pytest.mark.parametrize(
    ("field", "claimed", "found"),
    [
        ("buyer_name", "北京买方贸易有限公司（朝阳分公司）", "北京买方贸易有限公司(朝阳分公司)"),
        ("buyer_name", "北京 买方贸易有限公司", "北京买方贸易有限公司"),
        ("buyer_name", "ＡＢＣ Trading  Co., Ltd. ", "abc trading co., ltd."),
        ("buyer_name", "北京买方贸易有限公司\u3000", "北京买方贸易有限公司"),
        ("buyer_tax_id", "91110000ma01xkq2tq", "91110000MA01XKQ2TQ"),
        ("buyer_tax_id", full_width("91110000MA01XKQ2TQ"), "91110000MA01XKQ2TQ"),
        ("number", full_width("26112000000000012345"), "26112000000000012345"),
        ("number", " 26112000000000012345", "26112000000000012345"),
        ("issued_on", date(2026, 3, 5), "2026-03-05"),
    ],
)
def test_spellings_people_consider_the_same(field: str, claimed: object, found: object) -> None:
    assert compare_claim({field: claimed}, {field: found}) == []


@pytest.mark.parametrize(
    ("field", "claimed", "found", "difference"),
    [
        ("number", "26112000000000012345", "26112000000000012346", None),
        ("issued_on", "2026-03-05", date(2026, 3, 6), ("2026-03-05", "2026-03-06")),
        ("issued_on", "2026/03/05", "2026-03-05", ("2026/03/05", "2026-03-05")),
        ("buyer_name", "北京买方贸易有限公司", "北京卖方贸易有限公司", None),
        ("buyer_name", "ABC Trading", "ABCTrading", None),
        ("buyer_tax_id", "91110000MA01XKQ2TQ", "91110000MA01XKQ2TX", None),
        ("total_with_tax_fen", 106000, 106001, ("1060.00", "1060.01")),
        ("total_amount_fen", 100000, -100000, ("1000.00", "-1000.00")),
        ("total_tax_fen", 1, True, ("0.01", "True")),
    ],
)
def test_real_differences(
    field: str, claimed: object, found: object, difference: tuple[str, str] | None
) -> None:
    expected = difference or (str(claimed), str(found))
    assert compare_claim({field: claimed}, {field: found}) == [ClaimDifference(field, *expected)]


@pytest.mark.parametrize("absent", [None, "", "   "])
def test_a_field_missing_on_either_side_is_not_compared(absent: object) -> None:
    claim = dict(CLAIM, buyer_tax_id=absent)
    found = {key: value for key, value in CLAIM.items() if key != "total_tax_fen"}
    found["buyer_tax_id"] = "91110000MA01XKQ2TX"
    claim["total_tax_fen"] = 1
    assert compare_claim(claim, found) == []
    assert compare_claim(found, claim) == []


def test_other_keys_are_ignored() -> None:
    assert compare_claim(dict(CLAIM, seller_name="甲"), dict(CLAIM, seller_name="乙")) == []


def test_differences_come_in_a_fixed_order() -> None:
    found = {field: "x" if not field.endswith("_fen") else 0 for field in COMPARED_FIELDS}
    assert [difference.field for difference in compare_claim(CLAIM, found)] == list(COMPARED_FIELDS)


def test_an_einvoice_file_matches_its_claim_and_catches_a_wrong_total() -> None:
    fields, problems = read_einvoice_xml((FIXTURES / "ordinary_utf8.xml").read_bytes())
    assert fields is not None
    assert problems == []
    assert compare_claim(CLAIM, fields.as_mapping()) == []
    wrong = dict(CLAIM, total_with_tax_fen=139000, buyer_name="北京买方贸易有限公司（朝阳分公司）")
    assert compare_claim(wrong, fields.as_mapping()) == [
        ClaimDifference("buyer_name", "北京买方贸易有限公司（朝阳分公司）", "北京买方贸易有限公司"),
        ClaimDifference("total_with_tax_fen", "1390.00", "1399.00"),
    ]


def test_an_einvoice_file_from_another_seller_differs_even_when_everything_else_matches() -> None:
    fields, _ = read_einvoice_xml((FIXTURES / "ordinary_utf8.xml").read_bytes())
    assert fields is not None
    other_merchant = dict(CLAIM, seller_tax_id="91110105MA01EFGH56")
    assert compare_claim(other_merchant, fields.as_mapping()) == [
        ClaimDifference("seller_tax_id", "91110105MA01EFGH56", "91110108MA01ABCD84")
    ]
    # The same number typed with a space and in lower case is the same taxpayer.
    assert compare_claim(dict(CLAIM, seller_tax_id="91110108 ma01abcd84"), fields.as_mapping()) == []


@given(claimed=st.integers(), found=st.integers())
def test_money_differs_exactly_when_the_fen_differ(claimed: int, found: int) -> None:
    differences = compare_claim({"total_with_tax_fen": claimed}, {"total_with_tax_fen": found})
    assert bool(differences) == (claimed != found)
