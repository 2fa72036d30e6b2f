"""/api/v1/invoices — thin handlers: parse, authorise (in the service/selector), call, render."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, JsonResponse
from ninja import Router

from fapiao.core.errors import _
from fapiao.invoices import schemas, selectors, services
from fapiao.invoices.presenters import invoice_representation, summary_representation
from fapiao.ledger.services import receipt_for
from fapiao.platform.openapi import documented
from fapiao.platform.requests import json_body, page_param

router = Router(tags=["invoices"])


def _answer(result: services.WriteResult) -> JsonResponse:
    response = JsonResponse(result.body, status=result.status, json_dumps_params={"ensure_ascii": False})
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@router.post(
    "",
    response={201: schemas.InvoiceOut},
    openapi_extra=documented(
        409, 413, links=schemas.INVOICE_LINKS, extra=schemas.body_schema(schemas.InvoiceIn)
    ),
    summary="Issue a blue invoice",
)
def issue(request: HttpRequest) -> JsonResponse:
    result = services.issue_invoice(
        user=request.user,  # type: ignore[arg-type]
        payload=json_body(request),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _answer(result)


@router.get(
    "",
    response={200: schemas.InvoicePage},
    openapi_extra=documented(extra={"parameters": schemas.FILTERS}),
    summary="Search invoices",
)
def search(request: HttpRequest) -> dict[str, Any]:
    filters = selectors.parse_filters(request.GET.dict())
    page_number = page_param(request, maximum=selectors.MAX_PAGE)
    queryset = selectors.invoice_list(user=request.user, filters=filters)  # type: ignore[arg-type]
    paginator = Paginator(queryset, selectors.PAGE_SIZE)
    page = paginator.get_page(page_number) if page_number <= max(paginator.num_pages, 1) else []
    return {
        "items": [summary_representation(invoice) for invoice in page],
        "total": paginator.count,
        "page": page_number,
    }


@router.get(
    "/{number}",
    response={200: schemas.InvoiceOut},
    openapi_extra=documented(404),
    summary="Fetch one invoice",
)
def detail(request: HttpRequest, number: str, reveal: bool = False, merchant: str = "") -> JsonResponse:
    """Sensitive buyer fields come masked; ``?reveal=true`` shows them in full, which needs the
    permission to reveal (merchant clerks and admins) and is recorded in the audit trail."""
    invoice = selectors.invoice_get(user=request.user, number=number, merchant=merchant, lean=True)  # type: ignore[arg-type]
    if reveal:
        body = services.reveal_invoice(user=request.user, invoice=invoice)  # type: ignore[arg-type]
    else:
        body = invoice_representation(invoice)
    response = JsonResponse(body, json_dumps_params={"ensure_ascii": False})
    if reveal:
        response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/{number}/red-letter",
    response={201: schemas.InvoiceOut},
    openapi_extra=documented(
        404, 409, 413, links=schemas.INVOICE_LINKS, extra=schemas.body_schema(schemas.RedLetterIn)
    ),
    summary="Red-letter an invoice, fully or by line",
)
def red_letter(request: HttpRequest, number: str) -> JsonResponse:
    result = services.red_letter_invoice(
        user=request.user,  # type: ignore[arg-type]
        number=number,
        payload=json_body(request),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _answer(result)


@router.get(
    "/{number}/receipt",
    response={200: dict[str, Any]},
    openapi_extra=documented(404),
    summary="A fresh receipt",
)
def receipt(request: HttpRequest, number: str, merchant: str = "") -> JsonResponse:
    invoice = selectors.invoice_get(user=request.user, number=number, merchant=merchant)  # type: ignore[arg-type]
    if invoice.ledger_seq is None:
        raise services.InvoiceNotFoundError(_("This invoice has no ledger entry."))
    body = receipt_for(invoice.merchant, invoice.ledger_seq)
    response = JsonResponse(body, json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="receipt-{invoice.number}.json"'
    return response
