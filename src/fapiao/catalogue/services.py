"""Writes to the address book and the product catalogue, scoped to the acting user's merchant.

Values are checked with the same rules and messages as an invoice (``fapiao.core``), so an
entry that saves here also issues.  Every change leaves an audit record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, require
from fapiao.audit import services as audit
from fapiao.catalogue import sensitive
from fapiao.catalogue.models import Buyer, Product
from fapiao.core import text as text_rules
from fapiao.core.entry import normalise_text, number_text, rate_code
from fapiao.core.errors import FieldError, InvalidValueError, NotFoundError, ValidationFailed, _
from fapiao.core.identifiers import validate_tax_code, validate_tax_id
from fapiao.core.invoice import LIMITS
from fapiao.core.money import format_decimal, parse_decimal
from fapiao.platform.blind_index import tax_id_index


class CatalogueEntryNotFoundError(NotFoundError):
    """No such entry in your address book or catalogue."""

    code = "catalogue_entry_not_found"


@dataclass(frozen=True)
class BuyerInput:
    name: str
    tax_id: str = ""
    address: str = ""
    phone: str = ""
    bank: str = ""
    bank_account: str = ""
    email: str = ""


BUYER_FIELDS = ("name", "tax_id", "address", "phone", "bank", "bank_account", "email")
MAX_EMAIL = 254


@dataclass(frozen=True)
class ProductInput:
    name: str
    tax_rate: str
    tax_code: str = ""
    spec: str = ""
    unit: str = ""
    unit_price: str = ""
    price_includes_tax: bool = False


def merchant_of(user: User) -> Merchant:
    """The merchant whose entry aids ``user`` works with (only those who issue have them)."""
    require(user, Action.ISSUE_INVOICE)
    if user.merchant is None:
        raise CatalogueEntryNotFoundError()
    return user.merchant


def clean_text(
    errors: list[FieldError],
    name: str,
    value: str,
    limit: int,
    *,
    required: bool = False,
    is_name: bool = False,
) -> str:
    """The field trimmed and checked by the invoice's own rules (a name must also be visible);
    a problem is added to ``errors`` and the text returned as typed."""
    try:
        if is_name:
            return text_rules.clean_name(value, max_len=limit, required=required)
        return text_rules.clean_text(value, max_len=limit, required=required)
    except InvalidValueError as error:
        errors.append(error.at(name))
        return value.strip() if isinstance(value, str) else ""


def check_buyer(data: BuyerInput) -> dict[str, str]:
    """The entry's fields, cleaned; :class:`ValidationFailed` lists every problem."""
    errors: list[FieldError] = []
    fields = {
        "name": clean_text(errors, "name", data.name, LIMITS.buyer_name, required=True, is_name=True),
        "address": clean_text(errors, "address", data.address, LIMITS.address),
        "phone": clean_text(errors, "phone", data.phone, LIMITS.phone),
        "bank": clean_text(errors, "bank", data.bank, LIMITS.bank),
        "bank_account": clean_text(errors, "bank_account", data.bank_account, LIMITS.bank_account),
        "email": clean_text(errors, "email", data.email, MAX_EMAIL),
        "tax_id": "",
        "tax_id_kind": "",
    }
    if fields["email"] and not errors:
        try:
            validate_email(fields["email"])
        except DjangoValidationError:
            errors.append(
                FieldError("email", "bad_email", _("Enter one e-mail address, like name@example.com."))
            )
    tax_id = "".join(normalise_text(data.tax_id).split()).upper()
    if tax_id:
        try:
            parsed = validate_tax_id(tax_id)
        except InvalidValueError as error:
            errors.append(error.at("tax_id"))
        else:
            fields["tax_id"], fields["tax_id_kind"] = parsed.value, parsed.kind.value
    if errors:
        raise ValidationFailed(errors)
    return fields


def check_product(data: ProductInput) -> dict[str, Any]:
    errors: list[FieldError] = []
    fields: dict[str, Any] = {
        "name": clean_text(errors, "name", data.name, LIMITS.line_name, required=True, is_name=True),
        "spec": clean_text(errors, "spec", data.spec, LIMITS.spec),
        "unit": clean_text(errors, "unit", data.unit, LIMITS.unit),
        "price_includes_tax": data.price_includes_tax,
        "tax_code": "",
        "unit_price": "",
        "tax_rate": "",
    }
    code = "".join(normalise_text(data.tax_code).split())
    if code:
        try:
            fields["tax_code"] = validate_tax_code(code)
        except InvalidValueError as error:
            errors.append(error.at("tax_code"))
    if data.unit_price.strip():
        try:
            fields["unit_price"] = format_decimal(parse_decimal(number_text(data.unit_price)))
        except InvalidValueError as error:
            errors.append(error.at("unit_price"))
    if not data.tax_rate.strip():
        errors.append(FieldError("tax_rate", "required", _("This field is required.")))
    else:
        try:
            fields["tax_rate"] = rate_code(data.tax_rate, timezone.localdate())
        except InvalidValueError as error:
            errors.append(error.at("tax_rate"))
    if errors:
        raise ValidationFailed(errors)
    return fields


def buyer_snapshot(buyer: Buyer) -> dict[str, str]:
    """An audit snapshot: sensitive fields masked (docs/spec/security.md), nothing decrypted."""
    return sensitive.masked(buyer)


def product_snapshot(product: Product) -> dict[str, Any]:
    fields = ("name", "tax_code", "spec", "unit", "unit_price", "price_includes_tax", "tax_rate")
    return {name: getattr(product, name) for name in fields}


def _duplicate(field: str) -> ValidationFailed:
    message = {
        "name": _("Your address book already has an entry with this name."),
        "tax_id": _("Your address book already has an entry with this taxpayer number."),
        "product": _("Your catalogue already has this item with this specification."),
    }[field]
    return ValidationFailed([FieldError("name" if field == "product" else field, "duplicate", message)])


def _buyer_duplicates(merchant: Merchant, fields: dict[str, str], exclude: int | None) -> None:
    others = Buyer.objects.filter(merchant=merchant).exclude(pk=exclude or 0)
    if others.filter(name=fields["name"]).exists():
        raise _duplicate("name")
    if fields["tax_id"] and others.filter(tax_id_index=tax_id_index(fields["tax_id"])).exists():
        raise _duplicate("tax_id")


def save_buyer(*, user: User, data: BuyerInput, buyer_id: int | None = None) -> Buyer:
    """Create an address-book entry, or change entry ``buyer_id``."""
    merchant = merchant_of(user)
    fields = check_buyer(data)
    try:
        with transaction.atomic():
            _buyer_duplicates(merchant, fields, buyer_id)
            if buyer_id is None:
                uid = uuid.uuid4()
                buyer = Buyer.objects.create(
                    merchant=merchant,
                    uid=uid,
                    **sensitive.columns(merchant_id=merchant.pk, uid=uid, fields=fields),
                )
                audit.record(
                    actor=user,
                    action="catalogue.buyer.create",
                    target=buyer,
                    merchant=merchant,
                    after=buyer_snapshot(buyer),
                )
                return buyer
            entry = _locked(Buyer, merchant, buyer_id)
            before = buyer_snapshot(entry)
            for name, value in sensitive.columns(
                merchant_id=merchant.pk, uid=entry.uid, fields=fields
            ).items():
                setattr(entry, name, value)
            entry.save()
            audit.record(
                actor=user,
                action="catalogue.buyer.update",
                target=entry,
                merchant=merchant,
                before=before,
                after=buyer_snapshot(entry),
            )
            return entry
    except IntegrityError:  # a concurrent save took the name or number first
        raise _duplicate("name") from None


def remember_buyer(*, user: User, buyer: dict[str, Any]) -> Buyer | None:
    """Add an invoice's buyer to the address book unless an entry with its name or number exists."""
    merchant = merchant_of(user)
    data = BuyerInput(**{name: str(buyer.get(name) or "") for name in BUYER_FIELDS})
    fields = check_buyer(data)
    entries = Buyer.objects.filter(merchant=merchant)
    if entries.filter(name=fields["name"]).exists() or (
        fields["tax_id"] and entries.filter(tax_id_index=tax_id_index(fields["tax_id"])).exists()
    ):
        return None
    try:
        return save_buyer(user=user, data=data)
    except ValidationFailed:
        return None


def reveal_buyer(*, user: User, buyer_id: int) -> dict[str, str]:
    """An entry's fields in plaintext (to change it, or to fill an invoice): audited."""
    merchant = merchant_of(user)
    require(user, Action.REVEAL_SENSITIVE)
    buyer = Buyer.objects.filter(merchant=merchant, pk=buyer_id).first()
    if buyer is None:
        raise CatalogueEntryNotFoundError(_("No such entry in your address book or catalogue."))
    audit.record(
        actor=user,
        action="catalogue.buyer.reveal",
        target=buyer,
        merchant=merchant,
        after={"fields": sorted(buyer.masked or {})},
    )
    return sensitive.revealed(buyer)


def delete_buyer(*, user: User, buyer_id: int) -> None:
    _delete_entry(
        user=user, model=Buyer, entry_id=buyer_id, action="catalogue.buyer.delete", snapshot=buyer_snapshot
    )


def save_product(*, user: User, data: ProductInput, product_id: int | None = None) -> Product:
    merchant = merchant_of(user)
    fields = check_product(data)
    try:
        with transaction.atomic():
            others = Product.objects.filter(merchant=merchant).exclude(pk=product_id or 0)
            if others.filter(name=fields["name"], spec=fields["spec"]).exists():
                raise _duplicate("product")
            if product_id is None:
                product = Product.objects.create(merchant=merchant, **fields)
                audit.record(
                    actor=user,
                    action="catalogue.product.create",
                    target=product,
                    merchant=merchant,
                    after=product_snapshot(product),
                )
                return product
            changed = _locked(Product, merchant, product_id)
            before = product_snapshot(changed)
            for name, value in fields.items():
                setattr(changed, name, value)
            changed.save()
            audit.record(
                actor=user,
                action="catalogue.product.update",
                target=changed,
                merchant=merchant,
                before=before,
                after=product_snapshot(changed),
            )
            return changed
    except IntegrityError:
        raise _duplicate("product") from None


def delete_product(*, user: User, product_id: int) -> None:
    _delete_entry(
        user=user,
        model=Product,
        entry_id=product_id,
        action="catalogue.product.delete",
        snapshot=product_snapshot,
    )


def _delete_entry(*, user: User, model: Any, entry_id: int, action: str, snapshot: Any) -> None:
    """Remove an address-book or catalogue entry (entry aids, not records), audited with its last state."""
    merchant = merchant_of(user)
    with transaction.atomic():
        entry = _locked(model, merchant, entry_id)
        audit.record(actor=user, action=action, target=entry, merchant=merchant, before=snapshot(entry))
        entry.delete()


Entry = TypeVar("Entry", Buyer, Product)


def _locked(model: type[Entry], merchant: Merchant, pk: int) -> Entry:
    found = model.objects.select_for_update().filter(merchant=merchant, pk=pk).first()
    if found is None:
        raise CatalogueEntryNotFoundError(_("No such entry in your address book or catalogue."))
    return found
