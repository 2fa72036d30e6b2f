"""The documents API: an invoice's files, its deliveries, a period's bundle, the public 查验.

Thin handlers: parse, find the invoice through the invoices selector (another merchant's invoice
is not found), call a service, answer.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import Router

from fapiao.accounts.models import User
from fapiao.audit.services import display_name
from fapiao.documents import bundle, check, deliveries, services
from fapiao.documents.models import Delivery, DocumentKind
from fapiao.documents.schemas import CheckOut, DeliveryIn, DeliveryList, DeliveryOut, binary
from fapiao.documents.store import StoredDocument
from fapiao.invoices import selectors
from fapiao.invoices.schemas import inline_schema
from fapiao.platform.middleware import client_address
from fapiao.platform.openapi import documented
from fapiao.platform.requests import json_body

router = Router(tags=["invoice documents"])
bundle_router = Router(tags=["invoice documents"])
check_router = Router(tags=["public check"], auth=None)
MASKED = "``masked=true`` asks for the copy with the buyer's personal data masked."


def _file(content_type: str, description: str, name: str, *statuses: int) -> dict[str, Any]:
    """``openapi_extra`` of an answer that is a file (with its headers) and its problem answers."""
    extra = documented(*statuses)
    extra["responses"][200] = binary(content_type, description, example_name=name)["responses"][200]
    return extra


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def file_response(document: StoredDocument) -> HttpResponse:
    """A stored document as a download: its bytes, name, type and fingerprint; never cached when it
    shows personal data."""
    response = HttpResponse(document.data, content_type=document.content_type)
    response["Content-Disposition"] = f'attachment; filename="{document.name}"'
    response["X-Content-SHA256"] = document.sha256
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store" if document.reveals else "private, max-age=300"
    return response


def _download(request: HttpRequest, number: str, kind: str, merchant: str, masked: bool) -> HttpResponse:
    invoice = selectors.invoice_get(user=_user(request), number=number, merchant=merchant)
    return file_response(
        services.document_for_user(user=_user(request), invoice=invoice, kind=kind, masked=masked)
    )


@router.get(
    "/{number}/document.pdf",
    response={200: None},
    summary="The invoice as a PDF (电子发票 form)",
    description="Rendered once and stored: every download returns the same bytes. When the PDF prints "
    "the buyer's personal data (an individual's ID number), downloading it is a reveal: it needs the "
    "permission to reveal and is recorded in the audit trail; other users get the masked copy. " + MASKED,
    openapi_extra=_file("application/pdf", "The PDF.", "26110000000000000001.pdf", 404),
)
def document_pdf(request: HttpRequest, number: str, merchant: str = "", masked: bool = False) -> HttpResponse:
    return _download(request, number, DocumentKind.INVOICE_PDF, merchant, masked)


@router.get(
    "/{number}/document.xml",
    response={200: None},
    summary="The invoice as 数电票 XML",
    description="The EInvoice structure, written from the invoice's ledger entry; holds no personal data.",
    openapi_extra=_file("application/xml", "The XML file.", "26110000000000000001.xml", 404),
)
def document_xml(request: HttpRequest, number: str, merchant: str = "") -> HttpResponse:
    return _download(request, number, DocumentKind.INVOICE_XML, merchant, False)


@router.get(
    "/{number}/receipt.pdf",
    response={200: None},
    summary="The ledger receipt as a PDF for people",
    description="One page saying what the receipt proves, with receipt.json embedded as a file.",
    openapi_extra=_file("application/pdf", "The receipt PDF.", "26110000000000000001-receipt.pdf", 404),
)
def receipt_pdf(request: HttpRequest, number: str, merchant: str = "") -> HttpResponse:
    return _download(request, number, DocumentKind.RECEIPT_PDF, merchant, False)


def delivery_representation(delivery: Delivery) -> dict[str, Any]:
    def stamp(moment: Any) -> str | None:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None

    return {
        "id": str(delivery.uid),
        "to": delivery.recipient_masked,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "created_at": stamp(delivery.created_at),
        "sent_at": stamp(delivery.sent_at),
        "next_attempt_at": stamp(delivery.next_attempt_at),
        "error_code": delivery.error_code,
        "error": delivery.error,
        "created_by": display_name(delivery.created_by),
        "documents": delivery.documents,
    }


@router.get(
    "/{number}/deliveries",
    response={200: DeliveryList},
    openapi_extra=documented(404),
    summary="The invoice's deliveries",
)
def delivery_list(request: HttpRequest, number: str, merchant: str = "") -> dict[str, Any]:
    invoice = selectors.invoice_get(user=_user(request), number=number, merchant=merchant)
    return {"items": [delivery_representation(d) for d in deliveries.deliveries_of(invoice)]}


@router.post(
    "/{number}/deliveries",
    response={201: DeliveryOut},
    summary="Send the invoice to the buyer by e-mail",
    description="E-mails the PDF, the XML and the receipt PDF in one message, now. The delivery is "
    "recorded whatever happens: 201 when the mail server accepted it; 502 (mail_refused) when it "
    "refused for good (not retried); 503 (mail_unavailable) when it could not be reached (retried by "
    "`fapiao deliveries retry`). A malformed address is 422 and nothing is recorded.",
    openapi_extra=documented(
        404,
        413,
        502,
        extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": inline_schema(DeliveryIn.model_json_schema()),
                        "example": {"to": "finance@buyer.example.cn"},
                    }
                },
            }
        },
    ),
)
def deliver(request: HttpRequest, number: str) -> JsonResponse:
    body = json_body(request)
    to = body.get("to") if isinstance(body, dict) else None
    invoice = selectors.invoice_get(user=_user(request), number=number)
    delivery = deliveries.deliver_invoice(user=_user(request), invoice=invoice, to=to)
    return JsonResponse(
        delivery_representation(delivery), status=201, json_dumps_params={"ensure_ascii": False}
    )


@bundle_router.get(
    "",
    response={200: None},
    summary="A period's invoices as one zip (PDF, XML, receipts, manifest)",
    description="Every invoice issued from date_from to date_to (at most a year): per invoice its PDF, "
    "XML, receipt.json and receipt PDF, plus manifest.json and SHA256SUMS listing every file's SHA-256. "
    "Streamed. " + MASKED,
    openapi_extra=_file("application/zip", "The zip.", "invoices-2026-11-01-2026-11-30.zip"),
)
def period_bundle(
    request: HttpRequest, date_from: str = "", date_to: str = "", merchant: str = "", masked: bool = False
) -> StreamingHttpResponse:
    period = bundle.parse_period(date_from, date_to)
    return bundle.bundle_response(user=_user(request), period=period, merchant=merchant, masked=masked)


@check_router.get(
    "",
    response={200: CheckOut},
    openapi_extra=documented(429, public=True),
    summary="Check an invoice (public, no sign-in)",
    description="Whether an invoice with this number, date and 价税合计 exists; if so its seller, kind, "
    "colour and state, nothing more. A wrong amount or date answers exactly like a missing number. "
    "Rate-limited per client address and per number (429 with Retry-After). `code` may carry the "
    "scanned QR text instead of the three fields.",
)
def check_invoice(
    request: HttpRequest, number: str = "", issued_on: str = "", total_with_tax: str = "", code: str = ""
) -> JsonResponse:
    query = check.parse_query(
        {"number": number, "issued_on": issued_on, "total_with_tax": total_with_tax, "code": code}
    )
    answer = check.check_invoice(query, client=client_address(request))
    response = JsonResponse(answer.as_json(), json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    return response
