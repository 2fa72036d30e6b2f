"""Identifiers: taxpayer numbers (USCC, legacy numbers, resident IDs), invoice numbers, tax codes.

Every validator takes the raw API value (``object``), returns the normalised string or a
small value object, and raises :class:`InvalidValueError` with a short ``code``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from fapiao.core.errors import InvalidValueError, _

#: GB 32100-2015 character set: digits and capitals without I, O, S, V, Z (31 characters).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: Registration authority (登记管理部门) and entity category (机构类别) pairs of GB 32100-2015.
USCC_REGISTRATION_CODES = frozenset(
    {
        *("11", "12", "13", "19", "21", "29", "31", "32", "33", "34", "35", "39", "41", "49"),
        *("51", "52", "53", "59", "61", "62", "69", "71", "72", "79", "81", "89", "91", "92", "93"),
        *("A1", "A9", "N1", "N2", "N3", "N9", "Y1"),
    }
)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997 organisation code
#: Province-level codes (GB/T 2260) usable in 数电票 numbers, including 71 台湾, 81 香港, 82 澳门.
PROVINCE_CODES = frozenset(
    [
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
    ]
)
_TAX_CODE_CATEGORIES = "123456"  # 货物, 劳务, 服务, 无形资产, 不动产, 未发生销售行为的不征税项目
_HYPHENS = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")


def _text(value: object, what: str) -> str:
    """``value`` as trimmed upper-case text; ``what`` names it in the exception's params only."""
    if not isinstance(value, str):
        raise InvalidValueError(
            _("Enter this value as text (in quotes), not as a number or a list."),
            code="not_a_string",
            what=what,
        )
    return value.strip().upper()


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: object) -> str:
    """A 统一社会信用代码, normalised (stripped, upper case).

    Codes: ``not_a_string``, ``bad_length``, ``bad_character`` (outside the 31-character
    set, or a non-digit in the 6-digit division code), ``bad_registration_code``, ``bad_checksum``.
    """
    code = _text(value, "unified social credit code")
    if len(code) != 18:
        raise InvalidValueError(
            _("A unified social credit code has 18 characters."), code="bad_length", length=18
        )
    bad = next((c for c in code if c not in USCC_ALPHABET), None)
    if bad is None and not code[2:8].isdigit():
        bad = next(c for c in code[2:8] if not c.isdigit())
    if bad is not None:
        raise InvalidValueError(
            _("The character {char} cannot appear here in a unified social credit code."),
            code="bad_character",
            char=bad,
        )
    if code[:2] not in USCC_REGISTRATION_CODES:
        raise InvalidValueError(
            _("{prefix} is not a registration authority and category of GB 32100."),
            code="bad_registration_code",
            prefix=code[:2],
        )
    if code[17] != uscc_check_char(code[:17]):
        raise InvalidValueError(
            _("The check character does not match; please check the code."), code="bad_checksum"
        )
    return code


def org_code_check_char(body8: str) -> str:
    """The GB 11714 check character for an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


class TaxIdKind(StrEnum):
    USCC = "uscc"  # 统一社会信用代码
    LEGACY15 = "legacy15"  # 6-digit area + 9-character organisation code
    LEGACY17 = "legacy17"  # 15-digit old resident ID + 2 digits
    LEGACY20 = "legacy20"  # 18-character resident ID + 2 digits
    RESIDENT_ID = "resident_id"  # an individual's 居民身份证号码


@dataclass(frozen=True)
class TaxId:
    value: str
    kind: TaxIdKind


def is_individual(kind: TaxIdKind) -> bool:
    """Whether the number identifies a natural person (who cannot receive a special invoice)."""
    return kind is TaxIdKind.RESIDENT_ID


def holds_resident_id(kind: TaxIdKind) -> bool:
    """Whether the number contains a person's 居民身份证号码, so it is personal data: sealed,
    never in the ledger, stored encrypted and shown masked.  Besides an individual's ID this is
    the old 17- and 20-character number of a 个体工商户 (its operator's ID plus two digits),
    which may still receive special invoices."""
    return kind in (TaxIdKind.RESIDENT_ID, TaxIdKind.LEGACY17, TaxIdKind.LEGACY20)


def _resident_id_problem(number: str) -> InvalidValueError | None:
    if number[-1] != ric.calc_check_digit(number):
        return InvalidValueError(
            _("The check digit does not match; please check the number."), code="bad_checksum"
        )
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return InvalidValueError(
            _("The birth date in this ID number is not a real date."), code="bad_birth_date"
        )
    try:
        ric.get_birth_place(number)
    except ValidationError:
        return InvalidValueError(_("The area code in this ID number does not exist."), code="bad_region")
    return None


def _legacy15(number: str) -> None:
    if not (number[:6].isdigit() and re.fullmatch(r"[0-9A-Z]{8}[0-9X]", number[6:])):
        raise InvalidValueError(_("This taxpayer number has an invalid format."), code="bad_format")
    if number[14] != org_code_check_char(number[6:14]):
        raise InvalidValueError(
            _("The check character does not match; please check the number."), code="bad_checksum"
        )


def validate_tax_id(value: object) -> TaxId:
    """A buyer's or seller's 纳税人识别号: USCC, resident ID, or a legacy 15/17/20 number.

    An 18-character value valid both as a USCC and as a resident ID (possible only when it
    is all digits) is taken as a resident ID: sealing a company number costs little,
    publishing a person's ID in an append-only ledger cannot be undone.
    """
    number = _text(value, "taxpayer number")
    if not re.fullmatch(r"[0-9A-Z]*", number):
        raise InvalidValueError(_("Use only digits and capital letters."), code="bad_character")
    if len(number) == 18:
        looks_personal = re.fullmatch(r"[0-9]{17}[0-9X]", number) is not None
        personal = _resident_id_problem(number) if looks_personal else None
        if looks_personal and personal is None:
            return TaxId(number, TaxIdKind.RESIDENT_ID)
        try:
            return TaxId(validate_uscc(number), TaxIdKind.USCC)
        except InvalidValueError as uscc_problem:
            if personal is not None and (
                personal.code != "bad_checksum" or uscc_problem.code == "bad_registration_code"
            ):
                raise personal from None
            raise
    if len(number) == 15:
        _legacy15(number)
        return TaxId(number, TaxIdKind.LEGACY15)
    if len(number) == 17 and number.isdigit():
        return TaxId(number, TaxIdKind.LEGACY17)
    if len(number) == 20 and re.fullmatch(r"[0-9]{17}[0-9X][0-9]{2}", number):
        return TaxId(number, TaxIdKind.LEGACY20)
    if len(number) in (17, 20):
        raise InvalidValueError(_("This taxpayer number has an invalid format."), code="bad_format")
    raise InvalidValueError(
        _("A taxpayer number has {allowed} characters."), code="bad_length", allowed="15, 17, 18, 20"
    )


def validate_invoice_number(value: object, *, today: date | None = None) -> str:
    """A 20-digit 数电票 number: YY + province + channel digit + 15-digit serial.

    Codes: ``not_a_string``, ``not_digits``, ``bad_length``, ``bad_province``, and
    ``bad_year`` when YY is later than ``today``'s year.
    """
    number = _text(value, "invoice number")
    if not number.isascii() or not number.isdigit():
        raise InvalidValueError(_("An invoice number has only digits."), code="not_digits")
    if len(number) != 20:
        raise InvalidValueError(_("An invoice number has {length} digits."), code="bad_length", length=20)
    if int(number[2:4]) not in PROVINCE_CODES:
        raise InvalidValueError(
            _("{province} is not a province code."), code="bad_province", province=number[2:4]
        )
    if today is not None and int(number[:2]) > today.year % 100:
        raise InvalidValueError(
            _("The invoice number's year lies in the future."), code="bad_year", year=number[:2]
        )
    return number


def format_invoice_number(*, year: int, province: str, channel: int, serial: int) -> str:
    """Compose a 20-digit number; ``year`` is the full year (2000–2099)."""
    if not 2000 <= year <= 2099:
        raise InvalidValueError(_("The year must lie between 2000 and 2099."), code="bad_year", year=year)
    if not 0 <= channel <= 9:
        raise InvalidValueError(_("The channel is one digit."), code="bad_channel")
    if not 0 <= serial < 10**15:
        raise InvalidValueError(_("The serial has at most 15 digits."), code="bad_serial")
    return validate_invoice_number(f"{year % 100:02d}{province}{channel}{serial:015d}")


def validate_legacy_identity(code: object, number: object) -> str:
    """A legacy 发票代码 (10 or 12 digits) and 发票号码 (8 digits) as ``"<代码>-<号码>"``."""
    code_text = _text(code, "invoice code")
    number_text = _text(number, "invoice number")
    if not (code_text.isascii() and code_text.isdigit() and len(code_text) in (10, 12)):
        raise InvalidValueError(_("An invoice code has 10 or 12 digits."), code="bad_code")
    if not (number_text.isascii() and number_text.isdigit() and len(number_text) == 8):
        raise InvalidValueError(_("A legacy invoice number has 8 digits."), code="bad_number")
    return f"{code_text}-{number_text}"


def parse_invoice_identity(value: object) -> str:
    """Either a 20-digit number or ``代码-号码``; full-width digits, hyphens and spaces are normalised."""
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter the invoice number as a string."), code="not_a_string")
    text = _HYPHENS.sub("-", unicodedata.normalize("NFKC", value))
    text = "".join(text.split())
    if "-" in text:
        code, _sep, number = text.partition("-")
        return validate_legacy_identity(code, number)
    return validate_invoice_number(text)


def validate_tax_code(value: object) -> str:
    """A 19-digit 税收分类编码 (商品和服务税收分类编码); the first digit is its category 1–6."""
    code = _text(value, "tax classification code")
    if not code.isascii() or not code.isdigit():
        raise InvalidValueError(_("A tax classification code has only digits."), code="not_digits")
    if len(code) != 19:
        raise InvalidValueError(
            _("A tax classification code has {length} digits."), code="bad_length", length=19
        )
    if code[0] not in _TAX_CODE_CATEGORIES:
        raise InvalidValueError(_("A tax classification code starts with 1 to 6."), code="bad_category")
    return code
