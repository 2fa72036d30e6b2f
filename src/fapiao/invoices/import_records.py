"""Records from the readers (:mod:`fapiao.formats`) turned into validated invoice input for an import.

:func:`import_input` checks one :class:`~fapiao.formats.records.InvoiceRecord` the way the issue path
checks a request (names, taxpayer numbers, rates in force on the invoice's date, text limits) but keeps
the file's own amounts: an imported invoice says what its file says, and the readers have already
added up every line against the totals.  Every problem is returned at once, as
:class:`~fapiao.core.errors.FieldError` values; nothing raises.

The party check (``direction``): an invoice imported as issued (销项, ``out``) must name the
merchant as its seller; one imported as received (进项, ``in``) must name the merchant as its buyer
when the file gives the buyer's taxpayer number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import Colour, Direction, InvoiceKind
from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.core.identifiers import TaxId, validate_tax_code, validate_tax_id
from fapiao.core.invoice import LIMITS, Buyer, Line
from fapiao.core.money import MAX_MONEY_FEN, format_money
from fapiao.core.tax import resolve_rate
from fapiao.core.text import SINGLE_LINE, clean_name, clean_text
from fapiao.formats.records import InvoiceLine as FileLine
from fapiao.formats.records import InvoiceRecord

_PRICE_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class ImportInput:
    """One record as the import will store it."""

    number: str
    kind: InvoiceKind
    colour: Colour
    issued_on: date
    seller_name: str
    seller_tax_id: str
    buyer: Buyer
    lines: tuple[Line, ...]
    remark: str
    original_number: str | None

    @property
    def total_with_tax(self) -> int:
        return sum(line.amount + line.tax for line in self.lines)


def record_sha256(record: InvoiceRecord) -> str:
    """The SHA-256 of the record as read (its API shape, RFC 8785 bytes): the manifest's record hash."""
    return hashlib.sha256(canonical_bytes(record.as_api())).hexdigest()


def _problem(field: str, code: str, message: str, **params: object) -> FieldError:
    return FieldError(field, code, message, dict(params))


def _text(
    problems: list[FieldError], value: str | None, field: str, limit: int, *, name: bool = False
) -> str:
    if value is None or not value.strip():
        if name:
            problems.append(_problem(field, "required", _("This field is required.")))
        return ""
    try:
        if name:
            return clean_name(value, max_len=limit, required=True)
        return clean_text(value, max_len=limit, required=False, allow=SINGLE_LINE)
    except InvalidValueError as error:
        problems.append(error.at(field))
        return ""


def _tax_id(problems: list[FieldError], value: str | None, field: str) -> TaxId | None:
    if value is None or not value.strip():
        return None
    try:
        return validate_tax_id(value.strip().upper())
    except InvalidValueError as error:
        problems.append(error.at(field))
        return None


def _decimal(text: str | None) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _line(problems: list[FieldError], index: int, from_file: FileLine, on: date) -> Line | None:
    path = f"lines.{index}"
    before = len(problems)
    name = _text(problems, from_file.name, f"{path}.name", LIMITS.line_name, name=True)
    spec = _text(problems, from_file.spec, f"{path}.spec", LIMITS.spec)
    unit = _text(problems, from_file.unit, f"{path}.unit", LIMITS.unit)
    tax_code = ""
    if from_file.tax_code:
        try:
            tax_code = validate_tax_code(from_file.tax_code)
        except InvalidValueError as error:
            problems.append(error.at(f"{path}.tax_code"))
    amount, tax = from_file.amount_fen, from_file.tax_fen
    if amount is None:
        problems.append(_problem(f"{path}.amount", "required", _("This field is required.")))
    if tax is None:
        problems.append(_problem(f"{path}.tax", "required", _("This field is required.")))
    rate = None
    if from_file.tax_rate is None:
        problems.append(_problem(f"{path}.tax_rate", "required", _("This field is required.")))
    else:
        try:
            rate = resolve_rate(from_file.tax_rate, on)
        except InvalidValueError as error:
            problems.append(error.at(f"{path}.tax_rate"))
    quantity = _decimal(from_file.quantity)
    unit_price = _decimal(from_file.unit_price)
    if (from_file.quantity and quantity is None) or (from_file.unit_price and unit_price is None):
        message = _("The quantity or unit price {value} is not a number.")
        shown = f"{from_file.quantity} × {from_file.unit_price}"
        problems.append(_problem(f"{path}.quantity", "not_a_number", message, value=shown))
    if len(problems) > before or amount is None or tax is None or rate is None:
        return None
    if quantity is None and unit_price is None:
        # A line with an amount only (a discount, an export of totals): stored as 1 × its amount.
        quantity, unit_price = Decimal(1), Decimal(amount).scaleb(-2)
    elif unit_price is None and quantity is not None and quantity != 0:
        # An export without unit prices: the price the amount implies, to 8 places.
        unit_price = (
            (Decimal(amount).scaleb(-2) / quantity).quantize(_PRICE_PLACES, ROUND_HALF_UP).normalize()
        )
    elif quantity is None or unit_price is None:
        message = _("A line gives a quantity or a unit price without the other.")
        problems.append(_problem(f"{path}.quantity", "half_a_price", message))
        return None
    return Line(index + 1, name, tax_code, spec, unit, quantity, unit_price, rate, amount, tax)


def _parties(
    problems: list[FieldError], record: InvoiceRecord, *, merchant_uscc: str, direction: Direction
) -> None:
    seller = (record.seller_tax_id or "").strip().upper()
    buyer = (record.buyer_tax_id or "").strip().upper()
    if direction is Direction.OUT and seller != merchant_uscc:
        message = _(
            "The seller's taxpayer number {value} is not this merchant's: it is another merchant's invoice."
        )
        problems.append(_problem("seller_tax_id", "not_this_merchant", message, value=seller or "—"))
    if direction is Direction.IN and buyer and buyer != merchant_uscc:
        message = _(
            "The buyer's taxpayer number {value} is not this merchant's, so it is not an invoice it received."
        )
        problems.append(_problem("buyer_tax_id", "not_this_merchant", message, value=buyer))


def import_input(
    record: InvoiceRecord, *, merchant_uscc: str, direction: Direction, today: date
) -> tuple[ImportInput | None, list[FieldError]]:
    """The record as invoice input, or None and every problem found."""
    problems: list[FieldError] = []
    number = record.identity
    if not number:
        problems.append(_problem("number", "required", _("This field is required.")))
    if record.issued_on is None:
        problems.append(_problem("issued_on", "required", _("This field is required.")))
    elif record.issued_on > today:
        message = _("The invoice date {value} lies in the future.")
        problems.append(_problem("issued_on", "future_date", message, value=record.issued_on.isoformat()))
    _parties(problems, record, merchant_uscc=merchant_uscc, direction=direction)
    seller_name = _text(problems, record.seller_name, "seller_name", LIMITS.buyer_name, name=True)
    seller_tax = _tax_id(problems, record.seller_tax_id, "seller_tax_id")
    if seller_tax is None and not any(p.field == "seller_tax_id" for p in problems):
        problems.append(_problem("seller_tax_id", "required", _("This field is required.")))
    buyer_name = _text(problems, record.buyer_name, "buyer_name", LIMITS.buyer_name, name=True)
    buyer_tax = _tax_id(problems, record.buyer_tax_id, "buyer_tax_id")
    remark = _text(problems, record.remark, "remark", LIMITS.remark)
    kind = InvoiceKind(record.kind) if record.kind in {k.value for k in InvoiceKind} else InvoiceKind.ORDINARY
    on = record.issued_on or today
    lines = [_line(problems, index, line, on) for index, line in enumerate(record.lines)]
    if not record.lines:
        problems.append(_problem("lines", "empty", _("Add at least one line.")))
    if len(record.lines) > LIMITS.max_lines:
        problems.append(
            _problem("lines", "too_many_lines", _("Use at most {max} lines."), max=LIMITS.max_lines)
        )
    total = sum(line.amount + line.tax for line in lines if line is not None)
    if abs(total) > MAX_MONEY_FEN:
        message = _("The total must be at most {max}.")
        problems.append(
            _problem("total_with_tax", "total_too_large", message, max=format_money(MAX_MONEY_FEN))
        )
    colour = Colour.RED if record.is_red else Colour.BLUE
    if colour is Colour.RED and not record.original_identity:
        message = _("A red-letter invoice must name the blue invoice it reverses.")
        problems.append(_problem("original_number", "required", message))
    if problems or not number or record.issued_on is None or seller_tax is None:
        return None, problems
    buyer = Buyer(buyer_name, buyer_tax)
    found = ImportInput(
        number=number,
        kind=kind,
        colour=colour,
        issued_on=record.issued_on,
        seller_name=seller_name,
        seller_tax_id=seller_tax.value,
        buyer=buyer,
        lines=tuple(line for line in lines if line is not None),
        remark=remark,
        original_number=record.original_identity if colour is Colour.RED else None,
    )
    return found, []
