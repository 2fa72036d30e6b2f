"""Taxpayer numbers, invoice numbers and tax classification codes."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fapiao.core.errors import InvalidValueError
from fapiao.core.identifiers import (
    TaxId,
    TaxIdKind,
    format_invoice_number,
    holds_resident_id,
    is_individual,
    parse_invoice_identity,
    validate_invoice_number,
    validate_legacy_identity,
    validate_tax_code,
    validate_tax_id,
    validate_uscc,
)

# --- independent oracles (written from the standards, not from the module) ---------------------

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z


def uscc_oracle(first17: str) -> str:
    # GB 32100 weights are 3^i mod 31.
    total = sum(CHARSET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return CHARSET[-total % 31]


def ric_oracle(first17: str) -> str:
    # GB 11643: ISO 7064 MOD 11-2, weights 2^(17-i) mod 11.
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


def org_code_oracle(body: str) -> str:
    # GB 11714: weights 3 7 9 10 5 8 4 2, letters A=10 ... Z=35.
    values = [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in body]
    check = 11 - sum(v * w for v, w in zip(values, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def code_of(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidValueError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code


# --- USCC ----------------------------------------------------------------------------------------

VALID_USCCS = [
    "91110108MA01ABCD84",  # the example seller
    "91110000MA01XKQ2TQ",  # the example buyer
    "91110000600037341L",
    # letter registration authorities, check characters worked out by hand (sum of value × weight,
    # mod 31): A=10 gives sum 2012 ≡ 28 → 3; N=22 gives 2024 ≡ 9 → 22 = N; Y=30 gives 2032 ≡ 17 → 14 = E
    "A1110108MA01ABCD83",
    "N1110108MA01ABCD8N",
    "Y1110108MA01ABCD8E",
]


@pytest.mark.parametrize("code", VALID_USCCS)
def test_valid_usccs(code: str) -> None:
    assert validate_uscc(code) == code
    assert uscc_oracle(code[:17]) == code[17]
    assert validate_tax_id(code) == TaxId(code, TaxIdKind.USCC)


def test_uscc_is_normalised() -> None:
    assert validate_uscc("  91110000ma01xkq2tq \n") == "91110000MA01XKQ2TQ"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (91110108, "not_a_string"),
        (None, "not_a_string"),
        ("91110108MA01ABCD8", "bad_length"),
        ("91110108MA01ABCD845", "bad_length"),
        ("", "bad_length"),
        ("91110108MA01ABCD85", "bad_checksum"),
        ("91110000MA01XKQ2T0", "bad_checksum"),
        ("91110108MA01ABCI84", "bad_character"),  # I
        ("91110108MA01ABCO84", "bad_character"),  # O
        ("91110108MA01ABCZ84", "bad_character"),  # Z
        ("91110108MA01ABCS84", "bad_character"),  # S
        ("91110108MA01ABCV84", "bad_character"),  # V
        ("911101-8MA01ABCD84", "bad_character"),
        ("9111A108MA01ABCD84", "bad_character"),  # the division code is six digits
        ("94110108MA01ABCD84", "bad_registration_code"),
        ("B1110108MA01ABCD84", "bad_registration_code"),
        ("Y2110108MA01ABCD84", "bad_registration_code"),
        ("01110108MA01ABCD84", "bad_registration_code"),
        ("36110108MA01ABCD84", "bad_registration_code"),
    ],
)
def test_invalid_usccs(value: object, code: str) -> None:
    assert code_of(validate_uscc, value) == code


REGISTRATION_CODES = [f"{authority}{category}" for authority, categories in {
    "1": "1239", "2": "19", "3": "123459", "4": "19", "5": "1239", "6": "129",
    "7": "129", "8": "19", "9": "123", "A": "19", "N": "1239", "Y": "1",
}.items() for category in categories]  # fmt: skip

uscc_bodies = st.builds(
    lambda reg, division, org: reg + division + org,
    st.sampled_from(REGISTRATION_CODES),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(CHARSET, min_size=9, max_size=9),
)


@given(uscc_bodies)
def test_any_body_with_its_check_char_validates(body: str) -> None:
    code = body + uscc_oracle(body)
    assert validate_uscc(code) == code


@given(uscc_bodies, st.integers(min_value=0, max_value=17), st.sampled_from(CHARSET + "IOSVZ-a"))
def test_any_single_character_change_breaks_it(body: str, position: int, replacement: str) -> None:
    code = body + uscc_oracle(body)
    if code[position] == replacement.upper():
        replacement = CHARSET[(CHARSET.index(code[position]) + 1) % 31]
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidValueError) as caught:
        validate_uscc(changed)
    assert caught.value.code in {"bad_character", "bad_registration_code", "bad_checksum"}


# --- other taxpayer numbers --------------------------------------------------------------------

RESIDENT = "11010519491231002X"  # the published sample number: 北京朝阳, 1949-12-31


def test_resident_ids() -> None:
    assert ric_oracle(RESIDENT[:17]) == "X"
    assert validate_tax_id(RESIDENT) == TaxId(RESIDENT, TaxIdKind.RESIDENT_ID)
    assert validate_tax_id("11010519491231002x").value == RESIDENT
    assert validate_tax_id("360426199101010071").kind is TaxIdKind.RESIDENT_ID
    assert is_individual(TaxIdKind.RESIDENT_ID)
    assert not any(is_individual(kind) for kind in TaxIdKind if kind is not TaxIdKind.RESIDENT_ID)


def test_resident_id_problems() -> None:
    assert code_of(validate_tax_id, "110105194912310021") == "bad_checksum"
    bad_month = "11010519491331002"
    assert code_of(validate_tax_id, bad_month + ric_oracle(bad_month)) == "bad_birth_date"
    feb_30 = "11010520000230002"
    assert code_of(validate_tax_id, feb_30 + ric_oracle(feb_30)) == "bad_birth_date"
    nowhere = "00000019491231002"
    assert code_of(validate_tax_id, nowhere + ric_oracle(nowhere)) == "bad_region"


def test_a_number_valid_as_both_is_treated_as_personal() -> None:
    both = "11010519491231037X"
    assert uscc_oracle(both[:17]) == "X" == ric_oracle(both[:17])
    assert validate_tax_id(both).kind is TaxIdKind.RESIDENT_ID


def test_legacy_numbers() -> None:
    assert org_code_oracle("D2143569") == "X"  # the textbook example D2143569-X
    assert validate_tax_id("110108D2143569X") == TaxId("110108D2143569X", TaxIdKind.LEGACY15)
    assert validate_tax_id("110108d2143569x").value == "110108D2143569X"
    body = "11010800000001"
    assert validate_tax_id(body + org_code_oracle(body[6:])).kind is TaxIdKind.LEGACY15
    assert validate_tax_id("11010549123100201") == TaxId("11010549123100201", TaxIdKind.LEGACY17)
    assert validate_tax_id("11010519491231002X01") == TaxId("11010519491231002X01", TaxIdKind.LEGACY20)


@pytest.mark.parametrize(
    ("kind", "person", "holds_id"),
    [
        (TaxIdKind.USCC, False, False),
        (TaxIdKind.LEGACY15, False, False),  # an organisation code
        (TaxIdKind.LEGACY17, False, True),  # a 个体工商户: its operator's old 15-digit ID + 2 digits
        (TaxIdKind.LEGACY20, False, True),  # … or 18-character ID + 2 digits
        (TaxIdKind.RESIDENT_ID, True, True),
    ],
)
def test_which_numbers_are_a_person_and_which_hold_a_persons_id(kind, person, holds_id) -> None:
    assert (is_individual(kind), holds_resident_id(kind)) == (person, holds_id)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("110108D21435691", "bad_checksum"),
        ("1101A8D2143569X", "bad_format"),
        ("110108D2143569Y", "bad_format"),
        ("1101054912310020A", "bad_format"),
        ("11010519491231002Y01", "bad_format"),
        ("11010519491231002X0A", "bad_format"),
        ("1101051949123100", "bad_length"),
        ("12345", "bad_length"),
        ("911101-8MA01ABCD84", "bad_character"),
        ("91110108 MA01ABCD84", "bad_character"),
        (110108, "not_a_string"),
        ("91110108MA01ABCD85", "bad_checksum"),
    ],
)
def test_invalid_tax_ids(value: object, code: str) -> None:
    assert code_of(validate_tax_id, value) == code


# --- invoice numbers ---------------------------------------------------------------------------

TODAY = date(2026, 11, 27)


def test_invoice_numbers() -> None:
    assert validate_invoice_number("26110100000000000001", today=TODAY) == "26110100000000000001"
    assert validate_invoice_number(" 26110100000000000001 ") == "26110100000000000001"
    for province in (
        "11",
        "15",
        "21",
        "23",
        "31",
        "37",
        "41",
        "46",
        "50",
        "54",
        "61",
        "65",
        "71",
        "81",
        "82",
    ):
        assert validate_invoice_number(f"26{province}0100000000000001")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2611010000000000001", "bad_length"),  # 19 digits
        ("261101000000000000011", "bad_length"),
        ("2611010000000000000A", "not_digits"),
        ("2611010000000000000１", "not_digits"),  # a full-width digit
        ("26-110100000000000001", "not_digits"),
        ("26990100000000000001", "bad_province"),
        ("26100100000000000001", "bad_province"),
        ("26160100000000000001", "bad_province"),
        ("26550100000000000001", "bad_province"),
        ("27110100000000000001", "bad_year"),
        (26110100000000000001, "not_a_string"),
    ],
)
def test_invalid_invoice_numbers(value: object, code: str) -> None:
    assert code_of(validate_invoice_number, value, today=TODAY) == code


def test_format_invoice_number() -> None:
    assert format_invoice_number(year=2026, province="11", channel=0, serial=100000000000001) == (
        "26110100000000000001"
    )
    assert format_invoice_number(year=2030, province="44", channel=1, serial=7) == "30441000000000000007"
    assert code_of(format_invoice_number, year=1999, province="11", channel=0, serial=1) == "bad_year"
    assert code_of(format_invoice_number, year=2026, province="99", channel=0, serial=1) == "bad_province"
    assert code_of(format_invoice_number, year=2026, province="11", channel=10, serial=1) == "bad_channel"
    assert code_of(format_invoice_number, year=2026, province="11", channel=0, serial=10**15) == "bad_serial"


def test_legacy_identity() -> None:
    assert validate_legacy_identity("011001900111", "12345678") == "011001900111-12345678"
    assert validate_legacy_identity("1100191130", "00000001") == "1100191130-00000001"
    assert code_of(validate_legacy_identity, "11001911300", "12345678") == "bad_code"
    assert code_of(validate_legacy_identity, "1100191130", "1234567") == "bad_number"
    assert code_of(validate_legacy_identity, "11001911３0", "12345678") == "bad_code"


FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@pytest.mark.parametrize(
    ("value", "identity"),
    [
        ("26110100000000000001", "26110100000000000001"),
        ("011001900111-12345678", "011001900111-12345678"),
        ("011001900111 - 12345678", "011001900111-12345678"),
        ("０１１００１９００１１１－１２３４５６７８", "011001900111-12345678"),
        ("1100191130—12345678", "1100191130-12345678"),
        ("26110100000000000001".translate(FULL_WIDTH), "26110100000000000001"),
        ("011001900111-12345678".translate(FULL_WIDTH), "011001900111-12345678"),
    ],
)
def test_parse_invoice_identity(value: str, identity: str) -> None:
    assert parse_invoice_identity(value) == identity


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1100191130-1234567", "bad_number"),
        ("110019113-12345678", "bad_code"),
        ("2611010000000000001", "bad_length"),
        (5, "not_a_string"),
    ],
)
def test_parse_invoice_identity_rejects(value: object, code: str) -> None:
    assert code_of(parse_invoice_identity, value) == code


# --- tax classification codes ------------------------------------------------------------------


def test_tax_codes() -> None:
    assert validate_tax_code("3040201000000000000") == "3040201000000000000"
    assert validate_tax_code("1010101010000000000") == "1010101010000000000"
    assert code_of(validate_tax_code, "304020100000000000") == "bad_length"
    assert code_of(validate_tax_code, "30402010000000000000") == "bad_length"
    assert code_of(validate_tax_code, "304020100000000000A") == "not_digits"
    assert code_of(validate_tax_code, "7040201000000000000") == "bad_category"
    assert code_of(validate_tax_code, 3040201000000000000) == "not_a_string"
