"""Reads of the address book, the catalogue and batches: always the acting user's merchant only."""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet

from fapiao.accounts.models import User
from fapiao.catalogue.models import Batch, BatchRow, Buyer, Product
from fapiao.catalogue.services import CatalogueEntryNotFoundError, merchant_of
from fapiao.core.entry import normalise_text
from fapiao.core.errors import _
from fapiao.platform.blind_index import tax_id_index


def buyer_list(*, user: User, query: str = "") -> QuerySet[Buyer]:
    merchant = merchant_of(user)
    buyers = Buyer.objects.filter(merchant=merchant)
    text = normalise_text(query)
    if text:
        buyers = buyers.filter(Q(name__icontains=text) | Q(tax_id_index=tax_id_index(text)))
    return buyers.order_by("name", "pk")


def buyer_get(*, user: User, buyer_id: int) -> Buyer:
    found = Buyer.objects.filter(merchant=merchant_of(user), pk=buyer_id).first()
    if found is None:
        raise CatalogueEntryNotFoundError(_("No such entry in your address book or catalogue."))
    return found


def product_list(*, user: User, query: str = "") -> QuerySet[Product]:
    merchant = merchant_of(user)
    products = Product.objects.filter(merchant=merchant)
    text = normalise_text(query)
    if text:
        products = products.filter(Q(name__icontains=text) | Q(tax_code=text) | Q(spec__icontains=text))
    return products.order_by("name", "spec", "pk")


def product_get(*, user: User, product_id: int) -> Product:
    found = Product.objects.filter(merchant=merchant_of(user), pk=product_id).first()
    if found is None:
        raise CatalogueEntryNotFoundError(_("No such entry in your address book or catalogue."))
    return found


def batch_list(*, user: User) -> QuerySet[Batch]:
    return Batch.objects.filter(merchant=merchant_of(user)).order_by("-created_at", "-pk")


def batch_get(*, user: User, public_id: str) -> Batch:
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        wanted = None
    found = Batch.objects.filter(merchant=merchant_of(user), public_id=wanted).first() if wanted else None
    if found is None:
        raise CatalogueEntryNotFoundError(_("No such batch."))
    return found


def batch_rows(batch: Batch) -> QuerySet[BatchRow]:
    return BatchRow.objects.filter(merchant_id=batch.merchant_id, batch=batch).order_by("row_no")
