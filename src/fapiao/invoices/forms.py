"""The issue form: what the clerk typed → the API body of ``POST /api/v1/invoices``, and back.

Numbers are read as people type them (``1,000.00``, ``１０００``, ``¥1000``) by
:mod:`fapiao.core.entry`; a tax-inclusive unit price is converted there, once.  The body is
then checked by the very rules the API uses (:func:`parse_invoice_request`), and each problem
is put beside its input (``lines.1.quantity`` → the quantity of the second non-blank row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from fapiao.core.entry import exclusive_unit_price, normalise_text, number_text, unit_price_on_basis
from fapiao.core.errors import InvalidValueError, ValidationFailed, _
from fapiao.core.invoice import InvoiceDraft, parse_invoice_request
from fapiao.core.money import line_amount, parse_decimal
from fapiao.core.tax import line_tax, resolve_rate
from fapiao.platform.forms import FormState

LINE_FIELDS = (
    "product",
    "name",
    "tax_code",
    "spec",
    "unit",
    "quantity",
    "unit_price",
    "tax_rate",
)
TYPED_LINE_FIELDS = ("name", "tax_code", "spec", "unit", "quantity", "unit_price")
BUYER_FIELDS = ("name", "tax_id", "address", "phone", "bank", "bank_account")
TOP_FIELDS = ("kind", "prices", "buyer_id", "save_buyer", "remark", "line_count")
# One 含税/不含税 switch for the whole form (as on the tax bureau's platform): every typed unit
# price is either with tax or without it.
PRICES_EXCLUSIVE, PRICES_INCLUSIVE = "exclusive", "inclusive"
DEFAULT_LINES = 2
MAX_FORM_LINES = 100
DEFAULT_RATE = "0.06"


@dataclass(frozen=True)
class LineFigures:
    """One line as it will be stored."""

    row: int
    quantity: str
    unit_price: str
    converted: bool  # the unit price was converted from a tax-inclusive one
    rate: str
    amount: int
    tax: int
    inclusive_total: int | None  # quantity × the typed tax-inclusive price, for comparison

    @property
    def total(self) -> int:
        return self.amount + self.tax


@dataclass
class IssueForm:
    state: FormState
    rows: list[int]  # the form's line indexes, in order
    payload: dict[str, Any] | None = None
    draft: InvoiceDraft | None = None
    figures: list[LineFigures] = field(default_factory=list)
    payload_rows: list[int] = field(default_factory=list)

    def name(self, row: int, field_name: str) -> str:
        return f"lines-{row}-{field_name}"

    def value(self, row: int, field_name: str) -> str:
        return self.state.data.get(self.name(row, field_name), "")

    @property
    def prices_inclusive(self) -> bool:
        return self.state.data.get("prices") == PRICES_INCLUSIVE

    def blank(self, row: int) -> bool:
        return not any(self.value(row, name).strip() for name in TYPED_LINE_FIELDS)

    @property
    def total_amount(self) -> int:
        return sum(f.amount for f in self.figures)

    @property
    def total_tax(self) -> int:
        return sum(f.tax for f in self.figures)

    @property
    def total_with_tax(self) -> int:
        return self.total_amount + self.total_tax

    def line_contexts(self) -> list[dict[str, Any]]:
        """Per row, for the template: its names, values, errors and figures."""
        by_row = {f.row: f for f in self.figures}
        return [
            {
                "index": position,
                "row": row,
                "number": position + 1,
                "prefix": f"lines-{row}-",
                "values": {name: self.value(row, name) for name in LINE_FIELDS},
                "errors": {
                    name: self.state.errors.get(self.name(row, name), []) for name in (*LINE_FIELDS, "amount")
                },
                "figures": by_row.get(row),
            }
            for position, row in enumerate(self.rows)
        ]


def read_form(data: Mapping[str, Any], *, add_line: bool = False, remove_row: int | None = None) -> IssueForm:
    """The form's values as posted (or empty), with rows added or removed."""
    try:
        count = int(str(data.get("line_count", DEFAULT_LINES)))
    except ValueError:
        count = DEFAULT_LINES
    count = max(1, min(count, MAX_FORM_LINES))
    names = [*TOP_FIELDS, *(f"buyer_{name}" for name in BUYER_FIELDS)]
    names += [f"lines-{row}-{name}" for row in range(count) for name in LINE_FIELDS]
    values = {name: str(data.get(name, "")) for name in names}
    rows = [row for row in range(count) if row != remove_row]
    if add_line and len(rows) < MAX_FORM_LINES:
        rows.append(count)
    # Renumber rows 0..n-1 so the posted names stay dense.
    state = FormState(data={name: values[name] for name in names if not name.startswith("lines-")})
    for new, old in enumerate(rows):
        for name in LINE_FIELDS:
            state.data[f"lines-{new}-{name}"] = values.get(f"lines-{old}-{name}", "")
        if old == count:  # the added row
            state.data[f"lines-{new}-tax_rate"] = DEFAULT_RATE
    state.data["line_count"] = str(len(rows))
    state.data.setdefault("kind", "ordinary")
    if not state.data["kind"]:
        state.data["kind"] = "ordinary"
    if state.data["prices"] != PRICES_INCLUSIVE:
        state.data["prices"] = PRICES_EXCLUSIVE
    return IssueForm(state=state, rows=list(range(len(rows))))


def empty_form() -> IssueForm:
    form = read_form({"line_count": str(DEFAULT_LINES)})
    for row in form.rows:
        form.state.data[form.name(row, "tax_rate")] = DEFAULT_RATE
    return form


def _typed_number(form: IssueForm, row: int, field_name: str) -> str | None:
    raw = form.value(row, field_name)
    if not raw.strip():
        return None
    try:
        text = number_text(raw)
        parse_decimal(text)
    except InvalidValueError as error:
        form.state.add(form.name(row, field_name), error.render(gettext))
        return None
    return text


def _line_payload(form: IssueForm, row: int, on: date) -> tuple[dict[str, Any], str | None]:
    """One row as an API line, and the typed tax-inclusive price if there was one."""
    line: dict[str, Any] = {"name": form.value(row, "name").strip()}
    code = "".join(normalise_text(form.value(row, "tax_code")).split())
    if code:
        line["tax_code"] = code
    for name in ("spec", "unit"):
        if form.value(row, name).strip():
            line[name] = form.value(row, name).strip()
    quantity = _typed_number(form, row, "quantity")
    price = _typed_number(form, row, "unit_price")
    rate = form.value(row, "tax_rate")
    if quantity is not None:
        line["quantity"] = quantity
    if rate:
        line["tax_rate"] = rate
    inclusive_price = None
    if price is not None:
        line["unit_price"] = price
        if form.prices_inclusive and rate:
            try:
                resolved = resolve_rate(rate, on)
            except InvalidValueError:
                pass  # reported by the full check
            else:
                inclusive_price = price
                line["unit_price"] = format(exclusive_unit_price(Decimal(price), resolved), "f")
    return line, inclusive_price


def _buyer_payload(data: Mapping[str, str]) -> dict[str, str]:
    buyer = {"name": data.get("buyer_name", "").strip()}
    tax_id = "".join(normalise_text(data.get("buyer_tax_id", "")).split()).upper()
    if tax_id:
        buyer["tax_id"] = tax_id
    for name in BUYER_FIELDS[2:]:
        value = data.get(f"buyer_{name}", "").strip()
        if value:
            buyer[name] = value
    return buyer


def _path_to_name(form: IssueForm, path: str) -> str:
    if path.startswith("buyer."):
        return "buyer_" + path.removeprefix("buyer.")
    if path in ("kind", "remark"):
        return path
    parts = path.split(".")
    if (
        len(parts) == 3
        and parts[0] == "lines"
        and parts[1].isdigit()
        and int(parts[1]) < len(form.payload_rows)
    ):
        field_name = "amount" if parts[2] in ("amount", "tax") else parts[2]
        return form.name(form.payload_rows[int(parts[1])], field_name)
    return ""


def check(form: IssueForm, *, on: date) -> IssueForm:
    """Fill in the payload, every error, and the figures of every line that can be computed."""
    state = form.state
    lines: list[dict[str, Any]] = []
    inclusive: list[str | None] = []
    for row in form.rows:
        if form.blank(row):
            continue
        line, typed = _line_payload(form, row, on)
        if not form.value(row, "tax_rate"):
            state.add(form.name(row, "tax_rate"), gettext(_("This field is required.")))
        lines.append(line)
        inclusive.append(typed)
        form.payload_rows.append(row)
    payload: dict[str, Any] = {
        "kind": state.data.get("kind") or "ordinary",
        "buyer": _buyer_payload(state.data),
    }
    payload["lines"] = lines
    if state.data.get("remark", "").strip():
        payload["remark"] = state.data["remark"]
    form.payload = payload
    already = {name for name, messages in state.errors.items() if messages}
    try:
        form.draft = parse_invoice_request(payload, on=on)
    except ValidationFailed as failed:
        for error in failed.errors:
            name = _path_to_name(form, error.field)
            if name not in already:
                state.add(name, error.render(gettext))
    form.figures = _figures(form, lines, inclusive, on)
    return form


def _figures(
    form: IssueForm, lines: list[dict[str, Any]], inclusive: list[str | None], on: date
) -> list[LineFigures]:
    found = []
    for row, line, typed in zip(form.payload_rows, lines, inclusive, strict=True):
        try:
            quantity = parse_decimal(line["quantity"])
            price = parse_decimal(line["unit_price"])
            rate = resolve_rate(line["tax_rate"], on)
        except (KeyError, InvalidValueError):
            continue
        amount = line_amount(quantity, price)
        inclusive_total = line_amount(quantity, Decimal(typed)) if typed is not None else None
        found.append(
            LineFigures(
                row=row,
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                converted=typed is not None,
                rate=rate.code,
                amount=amount,
                tax=line_tax(amount, rate),
                inclusive_total=inclusive_total,
            )
        )
    return found


def fill_from_product(form: IssueForm, row: int, product: Any) -> None:
    """Copy a catalogue entry into a row whose item name is still empty (the page's script does
    this as soon as the product is picked; this is the same for browsers without script)."""
    if form.value(row, "name").strip():
        return
    data = form.state.data
    data[form.name(row, "name")] = product.name
    data[form.name(row, "tax_code")] = product.tax_code
    data[form.name(row, "spec")] = product.spec
    data[form.name(row, "unit")] = product.unit
    if not form.value(row, "unit_price").strip():
        data[form.name(row, "unit_price")] = product_price(product, inclusive=form.prices_inclusive)
    data[form.name(row, "tax_rate")] = product.tax_rate


def product_price(product: Any, *, inclusive: bool) -> str:
    """A catalogue entry's unit price on the form's basis (含税 or 不含税); empty when it has none
    or its rate no longer applies (the clerk then types the price)."""
    if not product.unit_price:
        return ""
    try:
        rate = resolve_rate(product.tax_rate, timezone.localdate())
        price = parse_decimal(product.unit_price)
    except InvalidValueError:
        return str(product.unit_price)
    converted = unit_price_on_basis(
        price, rate, includes_tax=product.price_includes_tax, wanted_inclusive=inclusive
    )
    return format(converted, "f")


FIELD_LABELS = {
    "kind": _("Invoice kind"),
    "buyer_name": _("Buyer name"),
    "buyer_tax_id": _("Taxpayer number"),
    "buyer_address": _("Address"),
    "buyer_phone": _("Phone"),
    "buyer_bank": _("Bank"),
    "buyer_bank_account": _("Bank account"),
    "remark": _("Remark"),
}
LINE_LABELS = {
    "name": _("Item name"),
    "tax_code": _("Tax classification code"),
    "spec": _("Specification"),
    "unit": _("Unit"),
    "quantity": _("Quantity"),
    "unit_price": _("Unit price"),
    "tax_rate": _("Tax rate"),
    "amount": _("Amount"),
}
