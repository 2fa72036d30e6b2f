"""The invoice rules: parsing an issue request, red-lettering, and the ledger's invoice document.

Amount per line = quantity × unit price, rounded half-up to the fen; tax per line =
amount × rate, rounded half-up; totals are sums; 价税合计 = amount + tax (DESIGN.md §5).
Text limits count characters (code points) after trimming surrounding whitespace.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from fapiao.core.choices import Colour, Direction, InvoiceKind, InvoiceState
from fapiao.core.errors import ConflictError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import (
    TaxId,
    holds_resident_id,
    is_individual,
    validate_tax_code,
    validate_tax_id,
)
from fapiao.core.money import (
    MAX_MONEY_FEN,
    format_decimal,
    format_money,
    line_amount,
    parse_decimal,
    parse_money,
)
from fapiao.core.tax import Rate, RateKind, line_tax, resolve_rate

T = TypeVar("T")
_MISSING: Any = object()


@dataclass(frozen=True)
class Limits:
    """Input limits, in characters (code points) after trimming.

    Chosen as sane bounds for the screen, the print and the XML; they have not been checked
    against the 数电票 platform's own per-field limits (partly counted in bytes), so the XML
    writer must still check its own."""

    max_lines: int = 2000
    buyer_name: int = 100
    line_name: int = 100
    spec: int = 40
    unit: int = 40
    remark: int = 500
    address: int = 200
    phone: int = 30
    bank: int = 100
    bank_account: int = 50


LIMITS = Limits()


@dataclass(frozen=True)
class Buyer:
    name: str
    tax_id: TaxId | None
    address: str = ""
    phone: str = ""
    bank: str = ""
    bank_account: str = ""


@dataclass(frozen=True)
class Line:
    """One invoice line.  On a red invoice quantity, amount and tax are negative and
    ``original_no`` is the blue line it reverses."""

    no: int
    name: str
    tax_code: str
    spec: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    rate: Rate
    amount: int
    tax: int
    original_no: int | None = None


@dataclass(frozen=True)
class InvoiceDraft:
    kind: InvoiceKind
    buyer: Buyer
    lines: tuple[Line, ...]
    remark: str

    @property
    def total_amount(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total_tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total_with_tax(self) -> int:
        return self.total_amount + self.total_tax


class _Errors:
    """Collects every problem of one request, so the client sees them all at once."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, code: str, message: str, **params: Any) -> None:
        self.items.append(FieldError(path, code, message, params))

    def run(self, path: str, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except InvalidValueError as problem:
            self.items.append(problem.at(path))
            return None

    def unknown(self, data: Mapping[Any, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(f"{prefix}{key}", "unknown_field", _("This field is not allowed here."))

    def required(self, value: object, path: str) -> bool:
        if value is _MISSING or value is None:
            self.add(path, "required", _("This field is required."))
            return False
        return True

    def mapping(self, value: object, path: str) -> Mapping[str, Any] | None:
        if not self.required(value, path):
            return None
        if not isinstance(value, Mapping):
            self.add(path, "not_an_object", _("Send a JSON object here."))
            return None
        return value


def _clean_text(value: object, *, max_len: int, required: bool, multiline: bool) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter text here."), code="not_a_string")
    text = value.strip()
    if any(unicodedata.category(c) == "Cc" and not (multiline and c == "\n") for c in text):
        raise InvalidValueError(_("Remove control characters such as tabs."), code="bad_character")
    if required and not text:
        raise InvalidValueError(_("This field cannot be blank."), code="blank")
    if len(text) > max_len:
        raise InvalidValueError(_("Use at most {max} characters."), code="too_long", max=max_len)
    return text


def _text(
    errors: _Errors,
    value: object,
    path: str,
    max_len: int,
    *,
    required: bool = False,
    multiline: bool = False,
) -> str | None:
    """A text field, trimmed, without control characters (line breaks only if ``multiline``), bounded.

    An optional field that is missing or null is ``""``; None means there was a problem.
    """
    if value is _MISSING or value is None:
        if required:
            errors.required(value, path)
            return None
        return ""
    return errors.run(
        path, lambda: _clean_text(value, max_len=max_len, required=required, multiline=multiline)
    )


_BUYER_KEYS = frozenset({"name", "tax_id", "address", "phone", "bank", "bank_account"})
_LINE_KEYS = frozenset(
    {"name", "tax_code", "spec", "unit", "quantity", "unit_price", "tax_rate", "amount", "tax"}
)
_TOP_KEYS = frozenset({"kind", "buyer", "lines", "remark"})


def _optional(
    errors: _Errors, value: object, path: str, parse: Callable[[object], T], *, blank_is_absent: bool = True
) -> T | None:
    """Parse a field that may be absent (missing, null, or ``""`` when ``blank_is_absent``).

    None when absent or invalid (the problem is recorded).
    """
    if value is _MISSING or value is None or (blank_is_absent and value == ""):
        return None
    return errors.run(path, lambda: parse(value))


def _required(
    errors: _Errors, data: Mapping[str, Any], key: str, path: str, parse: Callable[[object], T]
) -> T | None:
    value = data.get(key, _MISSING)
    if not errors.required(value, f"{path}.{key}"):
        return None
    return errors.run(f"{path}.{key}", lambda: parse(value))


def _parse_buyer(errors: _Errors, raw: object) -> Buyer | None:
    data = errors.mapping(raw, "buyer")
    if data is None:
        return None
    before = len(errors.items)
    errors.unknown(data, _BUYER_KEYS, "buyer.")
    name = _text(errors, data.get("name", _MISSING), "buyer.name", LIMITS.buyer_name, required=True)
    tax_id = _optional(errors, data.get("tax_id"), "buyer.tax_id", validate_tax_id)
    address = _text(errors, data.get("address"), "buyer.address", LIMITS.address)
    phone = _text(errors, data.get("phone"), "buyer.phone", LIMITS.phone)
    bank = _text(errors, data.get("bank"), "buyer.bank", LIMITS.bank)
    account = _text(errors, data.get("bank_account"), "buyer.bank_account", LIMITS.bank_account)
    if len(errors.items) > before or name is None:
        return None
    return Buyer(name, tax_id, address or "", phone or "", bank or "", account or "")


def _parse_line(
    errors: _Errors, raw: object, index: int, *, on: date, kind: InvoiceKind | None
) -> Line | None:
    path = f"lines.{index}"
    data = errors.mapping(raw, path)
    if data is None:
        return None
    before = len(errors.items)
    errors.unknown(data, _LINE_KEYS, f"{path}.")
    name = _text(errors, data.get("name", _MISSING), f"{path}.name", LIMITS.line_name, required=True)
    tax_code = _optional(errors, data.get("tax_code"), f"{path}.tax_code", validate_tax_code)
    spec = _text(errors, data.get("spec"), f"{path}.spec", LIMITS.spec)
    unit = _text(errors, data.get("unit"), f"{path}.unit", LIMITS.unit)
    quantity = _required(errors, data, "quantity", path, parse_decimal)
    unit_price = _required(errors, data, "unit_price", path, parse_decimal)
    rate = _required(errors, data, "tax_rate", path, lambda value: resolve_rate(value, on))
    client_amount = _optional(
        errors, data.get("amount"), f"{path}.amount", parse_money, blank_is_absent=False
    )
    client_tax = _optional(errors, data.get("tax"), f"{path}.tax", parse_money, blank_is_absent=False)
    if rate is not None and rate.kind is RateKind.EXEMPT and kind is InvoiceKind.SPECIAL:
        errors.add(f"{path}.tax_rate", "exempt_on_special", _("Exempt items cannot go on a special invoice."))
    if quantity is None or unit_price is None:
        return None
    amount = line_amount(quantity, unit_price)
    if amount == 0:
        errors.add(
            f"{path}.amount", "zero_amount", _("The amount rounds to zero; check quantity and unit price.")
        )
    elif amount > MAX_MONEY_FEN:
        errors.add(f"{path}.amount", "too_large", _("Enter at most {max}."), max=format_money(MAX_MONEY_FEN))
    elif client_amount is not None and client_amount != amount:
        errors.add(
            f"{path}.amount",
            "amount_mismatch",
            _("The amount should be {expected}."),
            expected=format_money(amount),
        )
    tax = line_tax(amount, rate) if rate is not None else 0
    if rate is not None and client_tax is not None and client_tax != tax:
        errors.add(
            f"{path}.tax", "tax_mismatch", _("The tax should be {expected}."), expected=format_money(tax)
        )
    if len(errors.items) > before or name is None or spec is None or unit is None or rate is None:
        return None
    return Line(index + 1, name, tax_code or "", spec, unit, quantity, unit_price, rate, amount, tax)


def _line_list(errors: _Errors, raw: object) -> list[Any]:
    """The ``lines`` list, or ``[]`` after recording why it is unusable (checked once, not per line)."""
    if not errors.required(raw, "lines"):
        return []
    if not isinstance(raw, list):
        errors.add("lines", "not_a_list", _("Send a list of lines."))
    elif not raw:
        errors.add("lines", "empty", _("Add at least one line."))
    elif len(raw) > LIMITS.max_lines:
        errors.add("lines", "too_many_lines", _("Use at most {max} lines."), max=LIMITS.max_lines)
    else:
        return raw
    return []


def _parse_lines(errors: _Errors, raw: object, *, on: date, kind: InvoiceKind | None) -> list[Line]:
    raw_lines = _line_list(errors, raw)
    parsed = [_parse_line(errors, item, index, on=on, kind=kind) for index, item in enumerate(raw_lines)]
    return [line for line in parsed if line is not None]


def _parse_kind(errors: _Errors, raw: object) -> InvoiceKind | None:
    if not errors.required(raw, "kind"):
        return None
    if raw not in {kind.value for kind in InvoiceKind}:
        choices = ", ".join(kind.value for kind in InvoiceKind)
        errors.add("kind", "invalid_choice", _("Choose one of: {choices}."), choices=choices)
        return None
    return InvoiceKind(str(raw))


def parse_invoice_request(data: object, *, on: date) -> InvoiceDraft:
    """Validate a ``POST /api/v1/invoices`` body (DESIGN.md §6b) for an invoice dated ``on``.

    Raises :class:`ValidationFailed` listing every problem, each at a dotted field path
    (``buyer.tax_id``, ``lines.3.quantity``; ``""`` is the body itself).
    """
    errors = _Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, _TOP_KEYS, "")
    kind = _parse_kind(errors, data.get("kind", _MISSING))
    buyer = _parse_buyer(errors, data.get("buyer", _MISSING))
    lines = _parse_lines(errors, data.get("lines", _MISSING), on=on, kind=kind)
    remark = _text(errors, data.get("remark"), "remark", LIMITS.remark, multiline=True)
    if kind is InvoiceKind.SPECIAL and buyer is not None:
        if buyer.tax_id is None:
            errors.add(
                "buyer.tax_id",
                "required_for_special",
                _("A special invoice needs the buyer's taxpayer number."),
            )
        elif is_individual(buyer.tax_id.kind):
            errors.add(
                "buyer.tax_id",
                "individual_on_special",
                _("A special invoice cannot be issued to an individual."),
            )
    if sum(line.amount + line.tax for line in lines) > MAX_MONEY_FEN:
        errors.add(
            "lines", "total_too_large", _("The total must be at most {max}."), max=format_money(MAX_MONEY_FEN)
        )
    if errors.items or kind is None or buyer is None or remark is None:
        raise ValidationFailed(errors.items)
    return InvoiceDraft(kind, buyer, tuple(lines), remark)


# --- Red letters (红字发票) -------------------------------------------------------------------

_CONFIRMATION_NO = re.compile(r"[0-9A-Za-z-]{1,30}", re.ASCII)
_RED_KEYS = frozenset({"full", "lines", "confirmation_no"})
_RED_LINE_KEYS = frozenset({"line_no", "quantity"})
_ZERO = Decimal(0)


class FullyRedLetteredError(ConflictError):
    """This invoice has already been fully red-lettered."""

    code = "fully_red_lettered"


@dataclass(frozen=True)
class RedLetterItem:
    line_no: int
    quantity: Decimal


@dataclass(frozen=True)
class RedLetterRequest:
    """``full`` reverses everything still open; otherwise ``lines`` says how much of which line."""

    full: bool
    lines: tuple[RedLetterItem, ...]
    confirmation_no: str | None  # 红字确认单编号, where there is one


def _line_no(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(_("Enter the line number as an integer."), code="not_an_integer")
    if value < 1:
        raise InvalidValueError(_("Line numbers start at 1."), code="not_positive")
    return value


def _confirmation_no(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter text here."), code="not_a_string")
    if not _CONFIRMATION_NO.fullmatch(value):
        raise InvalidValueError(_("Use 1 to {max} letters, digits or hyphens."), code="bad_format", max=30)
    return value


def _red_items(errors: _Errors, raw: object) -> list[RedLetterItem]:
    items: list[RedLetterItem] = []
    seen: set[int] = set()
    for index, entry in enumerate(_line_list(errors, raw)):
        path = f"lines.{index}"
        data = errors.mapping(entry, path)
        if data is None:
            continue
        errors.unknown(data, _RED_LINE_KEYS, f"{path}.")
        line_no = _required(errors, data, "line_no", path, _line_no)
        quantity = _required(errors, data, "quantity", path, parse_decimal)
        if line_no in seen:
            errors.add(f"{path}.line_no", "duplicate_line", _("Line {no} is listed twice."), no=line_no)
        elif line_no is not None:
            seen.add(line_no)
            if quantity is not None:
                items.append(RedLetterItem(line_no, quantity))
    return items


def parse_red_letter_request(data: object) -> RedLetterRequest:
    """Validate ``{"full": true}`` or ``{"lines": [{"line_no", "quantity"}]}``, plus ``confirmation_no``."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, _RED_KEYS, "")
    has_full, has_lines = data.get("full") is not None, data.get("lines") is not None
    items: list[RedLetterItem] = []
    if has_full == has_lines:
        errors.add("", "full_or_lines", _('Send either "full": true or a list of "lines", not both.'))
    elif has_full and data["full"] is not True:
        if isinstance(data["full"], bool):
            errors.add("full", "must_be_true", _('Use "full": true, or list the lines to red-letter.'))
        else:
            errors.add("full", "not_a_boolean", _("Enter true or false."))
    elif has_lines:
        items = _red_items(errors, data["lines"])
    confirmation_no = _optional(errors, data.get("confirmation_no"), "confirmation_no", _confirmation_no)
    if errors.items:
        raise ValidationFailed(errors.items)
    return RedLetterRequest(has_full, tuple(items), confirmation_no)


Already = Mapping[int, tuple[Decimal, int, int]]


def _remaining(line: Line, already: Already) -> tuple[Decimal, int, int]:
    quantity, amount, tax = already.get(line.no, (_ZERO, 0, 0))
    return line.quantity - quantity, line.amount - amount, line.tax - tax


def _red_line(no: int, line: Line, quantity: Decimal, amount: int, tax: int) -> Line:
    return Line(
        no, line.name, line.tax_code, line.spec, line.unit, -quantity, line.unit_price,
        line.rate, -amount, -tax, original_no=line.no,
    )  # fmt: skip


def red_letter_lines(
    original: Sequence[Line], already: Already, request: RedLetterRequest
) -> tuple[Line, ...]:
    """The negative lines of a red invoice reversing ``request`` of ``original``.

    ``already`` maps an original line number to what earlier red invoices took from it
    (positive quantity, amount fen, tax fen).  Taking a line's whole remaining quantity
    takes exactly its remaining amount and tax, so the red invoices of a line always sum
    to its exact negation; a partial quantity is priced like issue, capped at what remains.
    """
    open_lines = [line for line in original if _remaining(line, already)[0] > 0]
    if not open_lines:
        raise FullyRedLetteredError()
    if request.full:
        return tuple(_red_line(no, line, *_remaining(line, already)) for no, line in enumerate(open_lines, 1))
    by_no = {line.no: line for line in original}
    errors = _Errors()
    result: list[Line] = []
    for index, item in enumerate(request.lines):
        line = by_no.get(item.line_no)
        if line is None:
            errors.add(
                f"lines.{index}.line_no",
                "unknown_line",
                _("The invoice has no line {line_no}."),
                line_no=item.line_no,
            )
            continue
        quantity, amount, tax = _remaining(line, already)
        if not _ZERO < item.quantity <= quantity:
            errors.add(
                f"lines.{index}.quantity", "exceeds_remaining", _("At most {remaining} remains."),
                remaining=format_decimal(max(quantity, _ZERO)),
            )  # fmt: skip
            continue
        if item.quantity < quantity:
            amount = min(line_amount(item.quantity, line.unit_price), amount)
            tax = min(line_tax(amount, line.rate), tax)
            if amount == 0:
                errors.add(
                    f"lines.{index}.quantity", "zero_amount", _("The amount rounds to zero; red-letter more.")
                )
                continue
        result.append(_red_line(len(result) + 1, line, item.quantity, amount, tax))
    if errors.items:
        raise ValidationFailed(errors.items)
    return tuple(result)


def state_after(original_lines: Sequence[Line], already_after: Already) -> InvoiceState:
    """The legal state of a blue invoice once ``already_after`` has been red-lettered."""
    taken = [already_after.get(line.no, (_ZERO, 0, 0)) for line in original_lines]
    if all(
        q >= line.quantity and a >= line.amount and t >= line.tax
        for line, (q, a, t) in zip(original_lines, taken, strict=True)
    ):
        return InvoiceState.FULLY_RED
    if any(q > 0 or a > 0 or t > 0 for q, a, t in taken):
        return InvoiceState.PARTLY_RED
    return InvoiceState.NORMAL


# --- The ledger's invoice document --------------------------------------------------------------

_SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


def tax_id_sealed(buyer: Buyer, seal_tax_id: bool | None = None) -> bool:
    """Is the buyer's taxpayer number sealed rather than written in the entry?  By default when it
    holds a person's ID number (:func:`~fapiao.core.identifiers.holds_resident_id`); an invoice
    stored otherwise (an old 个体工商户 number from before such numbers were sealed) says so."""
    if buyer.tax_id is None:
        return False
    return holds_resident_id(buyer.tax_id.kind) if seal_tax_id is None else seal_tax_id


def sensitive_buyer_fields(buyer: Buyer, *, seal_tax_id: bool | None = None) -> dict[str, str | None]:
    """What ``buyer.sealed`` commits to: a taxpayer number holding a person's ID and every buyer's
    address, phone, bank and account — none of them appear in a ledger entry.  ``{}`` when there
    is nothing.  ``seal_tax_id`` as for :func:`tax_id_sealed`."""
    personal_id = buyer.tax_id.value if buyer.tax_id and tax_id_sealed(buyer, seal_tax_id) else None
    fields: dict[str, str | None] = {
        "address": buyer.address,
        "bank": buyer.bank,
        "bank_account": buyer.bank_account,
        "phone": buyer.phone,
        "tax_id": personal_id,
    }
    return fields if any(fields.values()) else {}


def _line_document(line: Line) -> dict[str, Any]:
    document: dict[str, Any] = {
        "amount": format_money(line.amount),
        "name": line.name,
        "no": line.no,
        "quantity": format_decimal(line.quantity),
        "spec": line.spec,
        "tax": format_money(line.tax),
        "tax_code": line.tax_code,
        "tax_rate": line.rate.code,
        "unit": line.unit,
        "unit_price": format_decimal(line.unit_price),
    }
    if line.original_no is not None:
        document["original_no"] = line.original_no
    return document


def invoice_document(
    *,
    number: str,
    kind: InvoiceKind,
    colour: Colour,
    direction: Direction,
    issued_on: date,
    seller_name: str,
    seller_tax_id: str,
    buyer: Buyer,
    sealed: str | None,
    lines: Sequence[Line],
    original_number: str | None,
    remark: str,
    seal_tax_id: bool | None = None,
) -> dict[str, Any]:
    """The ``invoice`` object of a ledger entry (DESIGN.md §6; receipt-example.json).

    Money, quantities and rates are strings.  A taxpayer number holding a person's ID is never
    included (``tax_id`` is null; ``seal_tax_id`` as for :func:`tax_id_sealed`); ``sealed`` is the
    hex SHA-256 commitment to :func:`sensitive_buyer_fields`, required whenever there is something
    to seal.
    Red lines add ``original_no``, the blue line they reverse.
    """
    if sealed is not None and not _SHA256_HEX.fullmatch(sealed):
        raise ValueError("sealed must be a lowercase hex SHA-256")
    if sealed is None and sensitive_buyer_fields(buyer, seal_tax_id=seal_tax_id):
        raise ValueError("the buyer has sensitive fields: pass their sealed commitment")
    public_id = buyer.tax_id.value if buyer.tax_id and not tax_id_sealed(buyer, seal_tax_id) else None
    total_amount = sum(line.amount for line in lines)
    total_tax = sum(line.tax for line in lines)
    return {
        "buyer": {"name": buyer.name, "sealed": sealed, "tax_id": public_id},
        "colour": colour.value,
        "direction": direction.value,
        "issued_on": issued_on.isoformat(),
        "kind": kind.value,
        "lines": [_line_document(line) for line in lines],
        "number": number,
        "original_number": original_number,
        "remark": remark,
        "seller": {"name": seller_name, "tax_id": seller_tax_id},
        "total_amount": format_money(total_amount),
        "total_tax": format_money(total_tax),
        "total_with_tax": format_money(total_amount + total_tax),
    }
