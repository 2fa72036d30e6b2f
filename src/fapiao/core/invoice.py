"""The invoice rules: an issue request parsed and checked into an :class:`InvoiceDraft`.

Red letters are in :mod:`fapiao.core.red_letter`, the ledger's invoice document in
:mod:`fapiao.core.invoice_document`.

Amount per line = quantity × unit price, rounded half-up to the fen; tax per line =
amount × rate, rounded half-up; totals are sums; 价税合计 = amount + tax (docs/spec/invoices.md).
Text limits count characters (code points) after trimming surrounding whitespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from fapiao.core.choices import InvoiceKind
from fapiao.core.errors import FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import (
    TaxId,
    is_individual,
    validate_tax_code,
    validate_tax_id,
)
from fapiao.core.money import (
    MAX_MONEY_FEN,
    format_money,
    line_amount,
    parse_decimal,
    parse_money,
)
from fapiao.core.tax import Rate, RateKind, line_tax, resolve_rate
from fapiao.core.text import LINE_BREAKS, SINGLE_LINE, clean_name, clean_text

T = TypeVar("T")
MISSING: Any = object()


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


class Errors:
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
        if value is MISSING or value is None:
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


def text_field(
    errors: Errors,
    value: object,
    path: str,
    max_len: int,
    *,
    required: bool = False,
    multiline: bool = False,
    name: bool = False,
) -> str | None:
    """A text field, trimmed, without control characters (line breaks only if ``multiline``), bounded;
    a ``name`` also shows what it says (:func:`fapiao.core.text.clean_name`).

    An optional field that is missing or null is ``""``; None means there was a problem.
    """
    if value is MISSING or value is None:
        if required:
            errors.required(value, path)
            return None
        return ""
    if name:
        return errors.run(path, lambda: clean_name(value, max_len=max_len, required=required))
    allow = LINE_BREAKS if multiline else SINGLE_LINE
    return errors.run(path, lambda: clean_text(value, max_len=max_len, required=required, allow=allow))


_BUYER_KEYS = frozenset({"name", "tax_id", "address", "phone", "bank", "bank_account"})
_LINE_KEYS = frozenset(
    {"name", "tax_code", "spec", "unit", "quantity", "unit_price", "tax_rate", "amount", "tax"}
)
_TOP_KEYS = frozenset({"kind", "buyer", "lines", "remark"})


def optional(
    errors: Errors, value: object, path: str, parse: Callable[[object], T], *, blank_is_absent: bool = True
) -> T | None:
    """Parse a field that may be absent (missing, null, or ``""`` when ``blank_is_absent``).

    None when absent or invalid (the problem is recorded).
    """
    if value is MISSING or value is None or (blank_is_absent and value == ""):
        return None
    return errors.run(path, lambda: parse(value))


def required(
    errors: Errors, data: Mapping[str, Any], key: str, path: str, parse: Callable[[object], T]
) -> T | None:
    value = data.get(key, MISSING)
    if not errors.required(value, f"{path}.{key}"):
        return None
    return errors.run(f"{path}.{key}", lambda: parse(value))


def _parse_buyer(errors: Errors, raw: object) -> Buyer | None:
    data = errors.mapping(raw, "buyer")
    if data is None:
        return None
    before = len(errors.items)
    errors.unknown(data, _BUYER_KEYS, "buyer.")
    name = text_field(
        errors, data.get("name", MISSING), "buyer.name", LIMITS.buyer_name, required=True, name=True
    )
    tax_id = optional(errors, data.get("tax_id"), "buyer.tax_id", validate_tax_id)
    address = text_field(errors, data.get("address"), "buyer.address", LIMITS.address)
    phone = text_field(errors, data.get("phone"), "buyer.phone", LIMITS.phone)
    bank = text_field(errors, data.get("bank"), "buyer.bank", LIMITS.bank)
    account = text_field(errors, data.get("bank_account"), "buyer.bank_account", LIMITS.bank_account)
    if len(errors.items) > before or name is None:
        return None
    return Buyer(name, tax_id, address or "", phone or "", bank or "", account or "")


def _parse_line(
    errors: Errors, raw: object, index: int, *, on: date, kind: InvoiceKind | None
) -> Line | None:
    path = f"lines.{index}"
    data = errors.mapping(raw, path)
    if data is None:
        return None
    before = len(errors.items)
    errors.unknown(data, _LINE_KEYS, f"{path}.")
    name = text_field(
        errors, data.get("name", MISSING), f"{path}.name", LIMITS.line_name, required=True, name=True
    )
    tax_code = optional(errors, data.get("tax_code"), f"{path}.tax_code", validate_tax_code)
    spec = text_field(errors, data.get("spec"), f"{path}.spec", LIMITS.spec)
    unit = text_field(errors, data.get("unit"), f"{path}.unit", LIMITS.unit)
    quantity = required(errors, data, "quantity", path, parse_decimal)
    unit_price = required(errors, data, "unit_price", path, parse_decimal)
    rate = required(errors, data, "tax_rate", path, lambda value: resolve_rate(value, on))
    client_amount = optional(errors, data.get("amount"), f"{path}.amount", parse_money, blank_is_absent=False)
    client_tax = optional(errors, data.get("tax"), f"{path}.tax", parse_money, blank_is_absent=False)
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


def line_list(errors: Errors, raw: object) -> list[Any]:
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


def parse_lines(errors: Errors, raw: object, *, on: date, kind: InvoiceKind | None) -> list[Line]:
    raw_lines = line_list(errors, raw)
    parsed = [_parse_line(errors, item, index, on=on, kind=kind) for index, item in enumerate(raw_lines)]
    return [line for line in parsed if line is not None]


def _parse_kind(errors: Errors, raw: object) -> InvoiceKind | None:
    if not errors.required(raw, "kind"):
        return None
    if not isinstance(raw, str) or raw not in {kind.value for kind in InvoiceKind}:
        choices = ", ".join(kind.value for kind in InvoiceKind)
        errors.add("kind", "invalid_choice", _("Choose one of: {choices}."), choices=choices)
        return None
    return InvoiceKind(str(raw))


def parse_invoice_request(data: object, *, on: date) -> InvoiceDraft:
    """Validate a ``POST /api/v1/invoices`` body (docs/api.md) for an invoice dated ``on``.

    Raises :class:`ValidationFailed` listing every problem, each at a dotted field path
    (``buyer.tax_id``, ``lines.3.quantity``; ``""`` is the body itself).
    """
    errors = Errors()
    if not isinstance(data, Mapping):
        errors.add("", "not_an_object", _("Send a JSON object."))
        raise ValidationFailed(errors.items)
    errors.unknown(data, _TOP_KEYS, "")
    kind = _parse_kind(errors, data.get("kind", MISSING))
    buyer = _parse_buyer(errors, data.get("buyer", MISSING))
    lines = parse_lines(errors, data.get("lines", MISSING), on=on, kind=kind)
    remark = text_field(errors, data.get("remark"), "remark", LIMITS.remark, multiline=True)
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
