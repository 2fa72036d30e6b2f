"""What a recovery case claims, parsed and checked, and the invoice a remedy writes from it.

A claim (docs/spec/recovery.md, the 发票丢失申请表) names the missing invoice — its 20-digit number or
legacy 代码-号码, its date, its kind, its buyer, its amounts and, when the merchant knows them, its
lines or its tax rate — and says what happened.  :func:`parse_claim` raises
:class:`ValidationFailed` listing every problem at its dotted path.

A remedy writes what was claimed and proven, never what a reviewer types:
:func:`claimed_invoice_body` turns a claim into the body of ``POST /api/v1/invoices``, or raises
:class:`ClaimIncompleteError` naming what the claim lacks, for the merchant to complete (补正).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from fapiao.core.choices import InvoiceKind
from fapiao.core.errors import ConflictError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import TaxId, parse_invoice_identity, validate_tax_id
from fapiao.core.invoice import (
    LIMITS,
    MISSING,
    Errors,
    Line,
    optional,
    parse_lines,
    text_field,
)
from fapiao.core.money import MAX_MONEY_FEN, format_decimal, format_money, parse_money
from fapiao.core.tax import Rate, line_tax, rates_in_force, resolve_rate

NARRATIVE_MAX = 2000
EARLIEST_CLAIM = date(2000, 1, 1)
CLAIM_KEYS = frozenset(
    {
        "number",
        "issued_on",
        "kind",
        "buyer",
        "total_with_tax",
        "total_amount",
        "total_tax",
        "tax_rate",
        "lines",
        "narrative",
    }
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
    lines: tuple[Line, ...] = ()  # as the merchant lists them; () when not known
    tax_rate: Rate | None = None  # the one rate of an invoice claimed by its totals only


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


def _claimed_total(value: object) -> int:
    """A claimed 价税合计: more than zero, or less than zero for a red invoice (红字发票), whose
    amounts are negative; never zero."""
    fen = parse_money(value, allow_negative=True)
    if fen == 0:
        raise InvalidValueError(
            _("The amount cannot be zero (a red invoice's amounts are negative, e.g. -1060.00)."),
            code="zero_amount",
        )
    return fen


def _signed_money(value: object) -> int:
    return parse_money(value, allow_negative=True)


def parse_claim(data: object, *, today: date) -> Claim:
    """Validate the claim of a draft case (the body of ``POST /api/v1/cases``)."""
    errors = Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, CLAIM_KEYS, "")
    number = _required_value(errors, data, "number", parse_invoice_identity)
    if number is not None and len(number) == 20 and number[:2] > f"{today.year % 100:02d}":
        errors.add("number", "bad_year", _("The invoice number's year lies in the future."))
    issued_on = _required_value(errors, data, "issued_on", lambda v: parse_date(v, latest=today))
    buyer = errors.mapping(data.get("buyer", MISSING), "buyer")
    buyer_name = tax_id = None
    if buyer is not None:
        errors.unknown(buyer, _CLAIM_BUYER_KEYS, "buyer.")
        buyer_name = text_field(
            errors, buyer.get("name", MISSING), "buyer.name", LIMITS.buyer_name, required=True, name=True
        )
        tax_id = optional(errors, buyer.get("tax_id"), "buyer.tax_id", validate_tax_id)
    total = _required_value(errors, data, "total_with_tax", _claimed_total)
    amount = optional(errors, data.get("total_amount"), "total_amount", _signed_money)
    tax = optional(errors, data.get("total_tax"), "total_tax", _signed_money)
    for path, part in (("total_amount", amount), ("total_tax", tax)):
        if total is not None and part is not None and part * total < 0:
            errors.add(
                path,
                "sign_differs",
                _("A red invoice's amounts are all negative; any other invoice's are not."),
            )
    if total is not None and abs(total) > MAX_MONEY_FEN:
        errors.add("total_with_tax", "too_large", _("The amount is too large."))
    if None not in (total, amount, tax) and amount + tax != total:  # type: ignore[operator]
        errors.add(
            "total_with_tax",
            "totals_disagree",
            _("Amount plus tax must equal the total with tax."),
        )
    kind = optional(errors, data.get("kind"), "kind", _kind)
    on = issued_on or today
    lines: list[Line] = []
    if data.get("lines") is not None:
        lines = parse_lines(errors, data.get("lines"), on=on, kind=kind)
        _check_line_totals(errors, lines, total, amount, tax)
    rate = optional(errors, data.get("tax_rate"), "tax_rate", lambda value: resolve_rate(value, on))
    if rate is not None:
        _check_rate(errors, rate, amount, tax, with_lines=data.get("lines") is not None)
    narrative = text_field(
        errors, data.get("narrative", MISSING), "narrative", NARRATIVE_MAX, required=True, multiline=True
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
    return Claim(
        number, issued_on, buyer_name, tax_id, total, amount, tax, kind, narrative, tuple(lines), rate
    )


def _check_line_totals(
    errors: Errors, lines: list[Line], total: int | None, amount: int | None, tax: int | None
) -> None:
    """Claimed lines must add up to the claimed totals."""
    if not lines or errors.items:
        return
    sums = {
        "total_with_tax": (total, sum(line.amount + line.tax for line in lines)),
        "total_amount": (amount, sum(line.amount for line in lines)),
        "total_tax": (tax, sum(line.tax for line in lines)),
    }
    for field, (claimed, summed) in sums.items():
        if claimed is not None and claimed != summed:
            errors.add(
                field,
                "lines_disagree",
                _("The lines add up to {expected}."),
                expected=format_money(summed),
            )


def _check_rate(errors: Errors, rate: Rate, amount: int | None, tax: int | None, *, with_lines: bool) -> None:
    """A claimed rate (for an invoice claimed by its totals) needs the amount and gives the tax."""
    if with_lines:
        errors.add("tax_rate", "rate_with_lines", _("Give the rate on each line instead."))
    elif amount is None or tax is None:
        errors.add("tax_rate", "rate_needs_totals", _("Give the amount without tax and the tax too."))
    elif line_tax(amount, rate) != tax:
        expected = format_money(line_tax(amount, rate))
        errors.add(
            "total_tax",
            "tax_disagrees_with_rate",
            _("At this rate the tax is {expected}."),
            expected=expected,
        )


def _kind(value: object) -> InvoiceKind:
    try:
        return InvoiceKind(str(value))
    except ValueError:
        raise InvalidValueError(
            _("Choose one of: {choices}."), code="invalid_choice", choices="ordinary, special"
        ) from None


def _required_value(errors: Errors, data: Mapping[str, Any], key: str, parse: Any) -> Any:
    value = data.get(key, MISSING)
    if not errors.required(value, key):
        return None
    return errors.run(key, lambda: parse(value))


class RedClaimNotReissuableError(ConflictError):
    """A red invoice is never issued afresh: restore it from the ledger, or red-letter its blue one again."""

    code = "red_not_reissuable"


class ClaimIncompleteError(ValidationFailed):
    """The claim lacks what the invoice needs: ask the merchant to complete it (补正) for a new review."""

    status = 409
    code = "claim_incomplete"


def claim_line_body(line: Line) -> dict[str, str]:
    """A claimed line as the body of ``POST /api/v1/invoices`` carries it."""
    return {
        "name": line.name,
        "tax_code": line.tax_code,
        "spec": line.spec,
        "unit": line.unit,
        "quantity": format_decimal(line.quantity),
        "unit_price": format_decimal(line.unit_price),
        "tax_rate": line.rate.code,
    }


def fitting_rates(amount: int, tax: int, on: date) -> list[Rate]:
    """The rates in force on ``on`` at which ``amount`` gives exactly ``tax``."""
    return [rate for rate in rates_in_force(on) if line_tax(amount, rate) == tax]


def claimed_invoice_body(claim: Claim, *, summary_line: str) -> dict[str, Any]:
    """The invoice the claim says, as the body of ``POST /api/v1/invoices``: its kind, its buyer,
    and its lines — the claimed lines, or one line of the claimed amount and tax, named
    ``summary_line``, at the claimed rate or the one rate those totals fit.

    Raises :class:`RedClaimNotReissuableError` for a red invoice's claim, and
    :class:`ClaimIncompleteError` listing, at ``claim.<field>``, everything missing.
    """
    if claim.total_with_tax < 0:
        raise RedClaimNotReissuableError()
    missing: list[FieldError] = []
    kind = claim.kind
    if kind is None:
        missing.append(FieldError("claim.kind", "missing", _("The claim does not say the invoice kind.")))
    lines: list[dict[str, str]] = [claim_line_body(line) for line in claim.lines]
    if not lines:
        amount, tax = claim.total_amount, claim.total_tax
        if amount is None or tax is None:
            text = _("The claim gives neither the lines nor the amount without tax and the tax.")
            missing.append(FieldError("claim.lines", "missing", text))
        else:
            rates = [claim.tax_rate] if claim.tax_rate else fitting_rates(amount, tax, claim.issued_on)
            if len(rates) == 1:
                unit_price = format_money(amount)
                line = {
                    "name": summary_line,
                    "quantity": "1",
                    "unit_price": unit_price,
                    "tax_rate": rates[0].code,
                }
                lines.append(line)
            else:
                codes = ", ".join(rate.code for rate in rates) or "—"
                text = _(
                    "The claimed amount and tax fit the rates {rates}: the claim must name the rate or lines."
                )
                missing.append(FieldError("claim.tax_rate", "missing", text, {"rates": codes}))
    if missing or kind is None:
        raise ClaimIncompleteError(missing)
    buyer: dict[str, str] = {"name": claim.buyer_name}
    if claim.buyer_tax_id is not None:
        buyer["tax_id"] = claim.buyer_tax_id.value
    return {"kind": kind.value, "buyer": buyer, "lines": lines, "remark": ""}
