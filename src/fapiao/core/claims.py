"""Compare what a recovery case claims with what a piece of evidence shows (docs/spec/recovery.md).

A claim and the fields read from evidence (an e-invoice XML file through
``EInvoiceFields.as_mapping()``, a system receipt) are plain mappings with these keys:

- ``number`` (str): the 20-digit number, or ``<代码>-<号码>`` for a legacy invoice;
- ``issued_on`` (str, ISO date ``"2026-03-05"``; a :class:`~datetime.date` is accepted too);
- ``seller_tax_id`` (str): the merchant whose invoice it is (a file another seller issued is not
  this merchant's lost invoice, whatever else matches);
- ``buyer_name`` (str) and ``buyer_tax_id`` (str);
- ``total_with_tax_fen``, ``total_amount_fen``, ``total_tax_fen`` (int, fen).

What a remedy wrote (a ``restore`` or ``reissue`` ledger entry's invoice) is compared with its
case's claim by :func:`remedy_differences`, which adds the claim's ``kind``, its ``lines`` (each
as the body of ``POST /api/v1/invoices`` carries a line) and its ``tax_rate``.

Only a field present on both sides is compared: a missing key, ``None`` or an empty string
means "not stated", which is neither agreement nor contradiction.  Text is compared the
way people read it: NFKC (full-width letters, digits and brackets equal half-width ones),
whitespace runs collapsed and dropped next to Chinese characters, case ignored; a tax id
is compared upper-case without spaces.  A difference quotes both sides as written, with
money shown in yuan.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from fapiao.core.errors import FapiaoError
from fapiao.core.money import format_money, parse_money

#: The fields compared, in the order differences are listed.
COMPARED_FIELDS: Final = (
    "number",
    "issued_on",
    "seller_tax_id",
    "buyer_name",
    "buyer_tax_id",
    "total_with_tax_fen",
    "total_amount_fen",
    "total_tax_fen",
)

_SPACES = re.compile(r"\s+")
_SPACE_BESIDE_WIDE = re.compile(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])")


@dataclass(frozen=True)
class ClaimDifference:
    """One field on which the evidence contradicts the claim; both values as a person reads them."""

    field: str
    claimed: str
    found: str


def compare_claim(claim: Mapping[str, object], found: Mapping[str, object]) -> list[ClaimDifference]:
    """The fields on which ``found`` contradicts ``claim``; an empty list means no contradiction."""
    differences: list[ClaimDifference] = []
    for field in COMPARED_FIELDS:
        claimed_value, found_value = claim.get(field), found.get(field)
        if _absent(claimed_value) or _absent(found_value):
            continue
        key = _KEYS[field]
        if key(claimed_value) != key(found_value):
            differences.append(
                ClaimDifference(field, _shown(field, claimed_value), _shown(field, found_value))
            )
    return differences


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", str(value))).strip()


def name_key(value: object) -> str:
    """A name as compared: ``"北京 买方（朝阳）Co"`` and ``"北京买方(朝阳)co"`` are the same name."""
    return _SPACE_BESIDE_WIDE.sub("", _text(value)).casefold()


def tax_id_key(value: object) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def number_key(value: object) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", str(value)))


def date_key(value: object) -> str:
    """ISO form; text that is not an ISO date is compared as written, so it still differs."""
    if isinstance(value, date):
        return value.isoformat()[:10]
    text = number_key(value)
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return text


def fen_key(value: object) -> int | str:
    """Fen as an int; a bool or other non-int is kept apart as text so it never equals money."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return f"not fen: {value!r}"


def _shown(field: str, value: object) -> str:
    if field.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
        return format_money(value)
    if isinstance(value, date):
        return value.isoformat()[:10]
    return str(value).strip()


_KEYS: Final[Mapping[str, Callable[[object], object]]] = {
    "number": number_key,
    "issued_on": date_key,
    "buyer_name": name_key,
    "seller_tax_id": tax_id_key,
    "buyer_tax_id": tax_id_key,
    "total_with_tax_fen": fen_key,
    "total_amount_fen": fen_key,
    "total_tax_fen": fen_key,
}


#: A line's fields a claim can state, as both a claim and a ledger document write them.
LINE_FIELDS: Final = ("name", "tax_code", "spec", "unit", "quantity", "unit_price", "tax_rate")


def _fen(value: object) -> object:
    try:
        return parse_money(value, allow_negative=True)  # a red invoice's amounts are negative
    except FapiaoError:
        return value


def document_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger entry's ``invoice`` as :func:`compare_claim` reads it."""
    raw_buyer, raw_seller, raw_lines = document.get("buyer"), document.get("seller"), document.get("lines")
    buyer: Mapping[str, Any] = raw_buyer if isinstance(raw_buyer, Mapping) else {}
    seller: Mapping[str, Any] = raw_seller if isinstance(raw_seller, Mapping) else {}
    lines: list[Any] = raw_lines if isinstance(raw_lines, list) else []
    return {
        "number": document.get("number"),
        "issued_on": document.get("issued_on"),
        "seller_tax_id": seller.get("tax_id"),
        "buyer_name": buyer.get("name"),
        "buyer_tax_id": buyer.get("tax_id"),
        "total_with_tax_fen": _fen(document.get("total_with_tax")),
        "total_amount_fen": _fen(document.get("total_amount")),
        "total_tax_fen": _fen(document.get("total_tax")),
        "kind": document.get("kind"),
        "lines": [
            {key: line.get(key) for key in LINE_FIELDS} if isinstance(line, Mapping) else line
            for line in lines
        ],
    }


def _lines_text(lines: object) -> str:
    if not isinstance(lines, list):
        return str(lines)
    shown = [
        f"{line.get('name')} {line.get('quantity')} × {line.get('unit_price')} @ {line.get('tax_rate')}"
        if isinstance(line, Mapping)
        else str(line)
        for line in lines
    ]
    return "; ".join(shown)


def remedy_differences(
    claim: Mapping[str, Any], document: Mapping[str, Any], *, restore: bool
) -> list[ClaimDifference]:
    """Where a remedy's invoice (a ledger ``invoice`` object) is not what its case claims.

    A restore keeps the claimed number and date; a re-issue has its own.  Only what the claim
    states is compared; an empty list means the invoice is the claim.
    """
    found = document_fields(document)
    stated = dict(claim)
    if not restore:
        stated.pop("number", None)
        stated.pop("issued_on", None)
    differences = compare_claim(stated, found)
    kind = stated.get("kind")
    if not _absent(kind) and kind != found["kind"]:
        differences.append(ClaimDifference("kind", str(kind), str(found["kind"])))
    lines = stated.get("lines")
    if lines:
        wanted = [{key: line.get(key) or "" for key in LINE_FIELDS} for line in lines]
        written = [
            {key: line.get(key) or "" for key in LINE_FIELDS} if isinstance(line, Mapping) else {}
            for line in found["lines"]
        ]
        if wanted != written:
            differences.append(ClaimDifference("lines", _lines_text(wanted), _lines_text(written)))
    rate = stated.get("tax_rate")
    if not lines and not _absent(rate):
        rates = sorted({str(line.get("tax_rate")) for line in found["lines"] if isinstance(line, Mapping)})
        if rates != [rate]:
            differences.append(ClaimDifference("tax_rate", str(rate), ", ".join(rates)))
    return differences
