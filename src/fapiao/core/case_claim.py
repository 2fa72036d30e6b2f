"""What a recovery case claims, and what a reviewer confirms when restoring: parsed and checked.

A claim (DESIGN.md §7, the 发票丢失申请表) names the missing invoice — its 20-digit number or
legacy 代码-号码, its date, its buyer and its amounts — and says what happened.  A restore
request is a whole invoice (the body of ``POST /api/v1/invoices``) plus the date it was issued
on, confirmed field by field by the reviewer; re-issuing needs only the invoice body.
Both raise :class:`ValidationFailed` listing every problem at its dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fapiao.core.choices import InvoiceKind
from fapiao.core.errors import InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import TaxId, parse_invoice_identity, validate_tax_id
from fapiao.core.invoice import (
    _MISSING,
    LIMITS,
    InvoiceDraft,
    _Errors,
    _optional,
    _text,
    parse_invoice_request,
)
from fapiao.core.money import MAX_MONEY_FEN, parse_money

NARRATIVE_MAX = 2000
EARLIEST_CLAIM = date(2000, 1, 1)
CLAIM_KEYS = frozenset(
    {"number", "issued_on", "kind", "buyer", "total_with_tax", "total_amount", "total_tax", "narrative"}
)
_CLAIM_BUYER_KEYS = frozenset({"name", "tax_id"})


@dataclass(frozen=True)
class Claim:
    number: str  # 20 digits, or 代码-号码 for a legacy invoice
    issued_on: date
    buyer_name: str
    buyer_tax_id: TaxId | None
    total_with_tax: int  # fen
    total_amount: int | None
    total_tax: int | None
    kind: InvoiceKind | None
    narrative: str


def parse_date(value: object, *, latest: date) -> date:
    """An ISO date (``2026-11-03``) no later than ``latest`` and not before 2000."""
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter a date as YYYY-MM-DD."), code="not_a_date")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidValueError(_("Enter a date as YYYY-MM-DD."), code="not_a_date") from None
    if day > latest:
        raise InvalidValueError(_("The date lies in the future."), code="future_date")
    if day < EARLIEST_CLAIM:
        raise InvalidValueError(_("The date must be in 2000 or later."), code="too_early")
    return day


def _positive_money(value: object) -> int:
    fen = parse_money(value)
    if fen <= 0:
        raise InvalidValueError(_("The amount must be more than zero."), code="not_positive")
    return fen


def parse_claim(data: object, *, today: date) -> Claim:
    """Validate the claim of a draft case (the body of ``POST /api/v1/cases``)."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, CLAIM_KEYS, "")
    number = _required_value(errors, data, "number", parse_invoice_identity)
    if number is not None and len(number) == 20 and number[:2] > f"{today.year % 100:02d}":
        errors.add("number", "bad_year", _("The invoice number's year lies in the future."))
    issued_on = _required_value(errors, data, "issued_on", lambda v: parse_date(v, latest=today))
    buyer = errors.mapping(data.get("buyer", _MISSING), "buyer")
    buyer_name = tax_id = None
    if buyer is not None:
        errors.unknown(buyer, _CLAIM_BUYER_KEYS, "buyer.")
        buyer_name = _text(
            errors, buyer.get("name", _MISSING), "buyer.name", LIMITS.buyer_name, required=True, name=True
        )
        tax_id = _optional(errors, buyer.get("tax_id"), "buyer.tax_id", validate_tax_id)
    total = _required_value(errors, data, "total_with_tax", _positive_money)
    amount = _optional(errors, data.get("total_amount"), "total_amount", parse_money)
    tax = _optional(errors, data.get("total_tax"), "total_tax", parse_money)
    if total is not None and total > MAX_MONEY_FEN:
        errors.add("total_with_tax", "too_large", _("The amount is too large."))
    if None not in (total, amount, tax) and amount + tax != total:  # type: ignore[operator]
        errors.add(
            "total_with_tax",
            "totals_disagree",
            _("Amount plus tax must equal the total with tax."),
        )
    kind = _optional(errors, data.get("kind"), "kind", _kind)
    narrative = _text(
        errors, data.get("narrative", _MISSING), "narrative", NARRATIVE_MAX, required=True, multiline=True
    )
    if (
        errors.items
        or number is None
        or issued_on is None
        or total is None
        or not buyer_name
        or not narrative
    ):
        raise ValidationFailed(errors.items)
    return Claim(number, issued_on, buyer_name, tax_id, total, amount, tax, kind, narrative)


def _kind(value: object) -> InvoiceKind:
    try:
        return InvoiceKind(str(value))
    except ValueError:
        raise InvalidValueError(
            _("Choose one of: {choices}."), code="invalid_choice", choices="ordinary, special"
        ) from None


def _required_value(errors: _Errors, data: Mapping[str, Any], key: str, parse: Any) -> Any:
    value = data.get(key, _MISSING)
    if not errors.required(value, key):
        return None
    return errors.run(key, lambda: parse(value))


@dataclass(frozen=True)
class RestoreRequest:
    """The invoice as the reviewer confirmed it, to come back under its original number."""

    issued_on: date
    draft: InvoiceDraft


def parse_restore_request(data: object, *, today: date) -> RestoreRequest:
    """``{"issued_on": …, "confirm": true, <the invoice body>}``; rates must be in force on that date."""
    if not isinstance(data, Mapping):
        raise ValidationFailed([InvalidValueError(_("Send a JSON object.")).at("")])
    errors = _Errors()
    body = {k: v for k, v in data.items() if k not in ("issued_on", "confirm")}
    issued_on = _required_value(errors, data, "issued_on", lambda v: parse_date(v, latest=today))
    if data.get("confirm") is not True:
        errors.add("confirm", "not_confirmed", _("Confirm that you checked every field."))
    draft = None
    try:
        draft = parse_invoice_request(body, on=issued_on or today)
    except ValidationFailed as failed:
        errors.items.extend(failed.errors)
    if errors.items or draft is None or issued_on is None:
        raise ValidationFailed(errors.items)
    return RestoreRequest(issued_on, draft)
