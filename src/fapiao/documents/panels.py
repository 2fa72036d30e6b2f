"""What this app adds to the invoice pages (registered from ``AppConfig.ready``).

The invoice page gets the downloads, the 发送给买方 form and the list of deliveries; a finished
batch gets a button that sends each issued invoice to its buyer's address-book e-mail.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse

from fapiao.accounts.permissions import Action, may
from fapiao.accounts.requests import acting_user
from fapiao.catalogue.models import Batch, BatchState
from fapiao.documents import addresses, deliveries
from fapiao.documents.rendering import holds_personal_data
from fapiao.invoices.models import Invoice


def _url(name: str, invoice: Invoice, user: Any, **query: str) -> str:
    url = reverse(name, args=[invoice.number])
    if not user.is_merchant_user:
        query["merchant"] = invoice.merchant.uscc
    return f"{url}?{urlencode(query)}" if query else url


def invoice_panel(request: HttpRequest, invoice: Invoice) -> str:
    user = acting_user(request)
    personal = holds_personal_data(invoice)
    context = {
        "invoice": invoice,
        "pdf_url": _url("documents:pdf", invoice, user),
        "masked_pdf_url": _url("documents:pdf", invoice, user, masked="1") if personal else "",
        "xml_url": _url("documents:xml", invoice, user),
        "receipt_pdf_url": _url("documents:receipt-pdf", invoice, user)
        if invoice.ledger_seq is not None
        else "",
        "personal": personal and may(user, Action.REVEAL_SENSITIVE),
        "may_deliver": may(user, Action.DELIVER_INVOICES) and user.is_merchant_user,
        "deliver_url": reverse("documents:deliver", args=[invoice.number]),
        "address_book": addresses.with_email(user) if may(user, Action.DELIVER_INVOICES) else [],
        "deliveries": deliveries.deliveries_of(invoice),
        "csrf_token": get_token(request),
    }
    return render_to_string("documents/invoice_panel.html", context, request=request)


def batch_panel(request: HttpRequest, batch: Batch) -> str:
    user = acting_user(request)
    if batch.state != BatchState.DONE or not may(user, Action.DELIVER_INVOICES):
        return ""
    context = {"batch": batch, "deliver_url": reverse("documents:batch-deliver", args=[str(batch.public_id)])}
    return render_to_string("documents/batch_panel.html", context, request=request)
