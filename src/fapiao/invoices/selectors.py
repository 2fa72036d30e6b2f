"""Invoice reads, always scoped to the acting user: merchant users see their merchant only."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.choices import Colour, Direction, InvoiceState
from fapiao.core.errors import FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import parse_invoice_identity
from fapiao.core.money import parse_money
from fapiao.core.strict import parse_iso_date
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import InvoiceNotFoundError
from fapiao.platform import rows
from fapiao.platform.blind_index import tax_id_index

PAGE_SIZE = 50
MAX_PAGE = 10_000


def normalise_search(text: str) -> str:
    """Full-width and half-width alike (１２３ = 123, （）= ()), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True)
class InvoiceFilters:
    number: str = ""
    date_from: date | None = None
    date_to: date | None = None
    buyer: str = ""
    amount_min: int | None = None
    amount_max: int | None = None
    state: str = ""
    direction: str = ""
    colour: str = ""
    merchant: str = ""  # staff only: a USCC


def parse_filters(params: dict[str, str]) -> InvoiceFilters:
    """Turn query parameters into filters, reporting every bad one at once."""
    errors: list[FieldError] = []
    values: dict[str, object] = {}
    for name in ("number", "buyer", "merchant"):
        values[name] = normalise_search(params.get(name) or "")
    if values["number"]:
        try:
            values["number"] = parse_invoice_identity(values["number"])
        except InvalidValueError as error:
            errors.append(error.at("number"))
    for name in ("date_from", "date_to"):
        raw = normalise_search(params.get(name) or "")
        if raw:
            try:
                values[name] = parse_iso_date(raw)
            except InvalidValueError as error:
                errors.append(error.at(name))
    for name in ("amount_min", "amount_max"):
        raw = normalise_search(params.get(name) or "").replace(",", "")
        if raw:
            try:
                values[name] = parse_money(raw, allow_negative=True)
            except InvalidValueError as error:
                errors.append(error.at(name))
    for name, enum in (("state", InvoiceState), ("direction", Direction), ("colour", Colour)):
        raw = normalise_search(params.get(name) or "")
        if raw and raw not in {member.value for member in enum}:
            allowed = ", ".join(member.value for member in enum)
            errors.append(
                FieldError(name, "bad_choice", _("Choose one of: {allowed}."), {"allowed": allowed})
            )
        values[name] = raw
    if errors:
        raise ValidationFailed(errors)
    return InvoiceFilters(**values)  # type: ignore[arg-type]


def invoices_visible_to(user: User) -> QuerySet[Invoice]:
    require(user, Action.READ_INVOICES)
    queryset = Invoice.objects.select_related("merchant", "original")
    if user.is_merchant_user:
        return queryset.filter(merchant_id=user.merchant_id or -1)
    return queryset


def invoice_list(*, user: User, filters: InvoiceFilters) -> QuerySet[Invoice]:
    queryset = invoices_visible_to(user)
    if filters.merchant and not user.is_merchant_user:
        queryset = queryset.filter(merchant__uscc=filters.merchant.upper())
    if filters.number:
        queryset = queryset.filter(number=filters.number)
    if filters.date_from:
        queryset = queryset.filter(issued_on__gte=filters.date_from)
    if filters.date_to:
        queryset = queryset.filter(issued_on__lte=filters.date_to)
    if filters.buyer:
        # The name contains the text, or the text is exactly the buyer's tax ID: matched through
        # its keyed blind index, since an individual's ID is stored only encrypted.
        queryset = queryset.filter(
            Q(buyer_name__icontains=filters.buyer) | Q(buyer_tax_id_index=tax_id_index(filters.buyer))
        )
    if filters.amount_min is not None:
        queryset = queryset.filter(total_with_tax__gte=filters.amount_min)
    if filters.amount_max is not None:
        queryset = queryset.filter(total_with_tax__lte=filters.amount_max)
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    else:  # a reverted import (已撤销导入) is kept but leaves search unless asked for by state
        queryset = queryset.exclude(state=InvoiceState.REVERTED)
    if filters.direction:
        queryset = queryset.filter(direction=filters.direction)
    if filters.colour:
        queryset = queryset.filter(colour=filters.colour)
    return queryset.order_by("-issued_at", "-id")


def invoice_get(*, user: User, number: str, merchant: str = "", lean: bool = False) -> Invoice:
    """One invoice by number; another merchant's invoice is simply not found.

    ``lean``: the invoice's own row only, for callers that show the invoice and nothing of its
    merchant (the API's read): for a merchant's user one prepared statement (:func:`rows.select`)
    instead of a query compiled on every request with the merchant and original invoice joined,
    as the pages need.
    """
    if lean and user.is_merchant_user:
        require(user, Action.READ_INVOICES)
        where = {"merchant_id": user.merchant_id or -1, "number": normalise_search(number)}
        found = rows.select(Invoice, where, limit=2)
        if len(found) != 1:
            raise InvoiceNotFoundError(_("No such invoice."))
        return found[0]
    queryset = invoices_visible_to(user).filter(number=normalise_search(number))
    if merchant and not user.is_merchant_user:
        queryset = queryset.filter(merchant__uscc=merchant.upper())
    found = list(queryset[:2])
    if len(found) != 1:
        raise InvoiceNotFoundError(_("No such invoice."))
    return found[0]
