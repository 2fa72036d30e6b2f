"""Pages: an invoice's downloads, sending it to the buyer, a batch's sending, a period's bundle."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.catalogue import selectors as catalogue
from fapiao.catalogue.models import RowStatus
from fapiao.core.errors import ValidationFailed, _
from fapiao.documents import addresses, bundle, deliveries, services
from fapiao.documents.api import file_response
from fapiao.documents.models import DocumentKind
from fapiao.invoices import selectors
from fapiao.platform.forms import FormState

KINDS = {
    "pdf": DocumentKind.INVOICE_PDF,
    "xml": DocumentKind.INVOICE_XML,
    "receipt-pdf": DocumentKind.RECEIPT_PDF,
}


@login_required
@require_GET
def download(request: HttpRequest, number: str, kind: str) -> HttpResponse:
    user = acting_user(request)
    invoice = selectors.invoice_get(user=user, number=number, merchant=request.GET.get("merchant", ""))
    masked = request.GET.get("masked", "") in ("1", "true")
    return file_response(
        services.document_for_user(user=user, invoice=invoice, kind=KINDS[kind], masked=masked)
    )


def download_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return download(request, number, "pdf")


def download_xml(request: HttpRequest, number: str) -> HttpResponse:
    return download(request, number, "xml")


def download_receipt_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return download(request, number, "receipt-pdf")


@login_required
@require_POST
def deliver(request: HttpRequest, number: str) -> HttpResponse:
    """发送给买方: to an address-book entry's e-mail or a typed one; the outcome shown on the invoice."""
    user = acting_user(request)
    require(user, Action.DELIVER_INVOICES)
    invoice = selectors.invoice_get(user=user, number=number)
    back = reverse("invoices:invoice", args=[invoice.number])
    try:
        entry = request.POST.get("buyer", "")
        to = (
            addresses.book_address(user, entry)
            if entry and not request.POST.get("to")
            else request.POST.get("to")
        )
        deliveries.deliver_invoice(user=user, invoice=invoice, to=to)
    except ValidationFailed as failed:
        for error in failed.errors:
            messages.error(request, error.render(gettext))
        return redirect(back + "#send")
    except (deliveries.DeliveryRefusedError, deliveries.DeliveryUnavailableError) as error:
        messages.error(request, error.render(gettext))
        return redirect(back + "#deliveries")
    messages.success(request, gettext(_("The invoice was sent. The delivery is listed below.")))
    return redirect(back + "#deliveries")


@login_required
@require_POST
def deliver_batch(request: HttpRequest, public_id: str) -> HttpResponse:
    """Send each invoice a batch issued to its buyer's address-book e-mail; say what happened."""
    user = acting_user(request)
    require(user, Action.DELIVER_INVOICES)
    batch = catalogue.batch_get(user=user, public_id=public_id)
    sent = failed = missing = 0
    for row in catalogue.batch_rows(batch).filter(status=RowStatus.ISSUED):
        invoice = selectors.invoice_get(user=user, number=row.invoice_number)
        address = addresses.address_for_invoice(user, invoice)
        if not address:
            missing += 1
            continue
        try:
            deliveries.deliver_invoice(user=user, invoice=invoice, to=address)
        except (deliveries.DeliveryRefusedError, deliveries.DeliveryUnavailableError, ValidationFailed):
            failed += 1
        else:
            sent += 1
    messages.info(
        request,
        gettext(
            _("Sent: {sent}. Not sent (see each invoice): {failed}. No address-book e-mail: {missing}.")
        ).format(sent=sent, failed=failed, missing=missing),
    )
    return redirect(reverse("invoices:batch-detail", args=[str(batch.public_id)]))


@login_required
@require_GET
def bundle_page(request: HttpRequest) -> HttpResponseBase:
    """批量下载: a period's invoices as one zip."""
    user = acting_user(request)
    require(user, Action.EXPORT_INVOICES)
    data = {name: request.GET.get(name, "") for name in ("date_from", "date_to")}
    form = FormState(data=data)
    if any(data.values()):
        try:
            period = bundle.parse_period(data["date_from"], data["date_to"])
        except ValidationFailed as failed:
            form.add_failure(failed, lambda path: path)
        else:
            return bundle.bundle_response(user=user, period=period, merchant=request.GET.get("merchant", ""))
    return render(request, "documents/bundle.html", {"form": form})
