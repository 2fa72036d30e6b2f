"""Shared steps of the recovery-case tests: lose an invoice, build evidence files, act through the API."""

from __future__ import annotations

import io
import json
from typing import Any

from django.db import connection

from fapiao.invoices.models import Invoice, InvoiceLine

# A tiny but real PDF (one empty page): magic bytes are what the sniffing checks.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def pdf_named(text: str) -> bytes:
    """A distinct PDF per call (content addressing would merge identical files)."""
    return PDF.replace(b"%%EOF", f"% {text}\n%%EOF".encode())


def lose_invoice(number: str) -> dict[str, Any]:
    """What a crash mid-upload or a broken migration leaves: the row gone, the ledger entry kept."""
    invoice = Invoice.objects.get(number=number)
    kept = {"issued_on": invoice.issued_on.isoformat(), "total_with_tax": invoice.total_with_tax}
    InvoiceLine.objects.filter(invoice=invoice).delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM invoices_invoice WHERE id = %s", [invoice.pk])
    return kept


def claim_for(number: str, issued_on: str, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "issued_on": issued_on,
        "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
        "total_with_tax": "1060.00",
        "narrative": "11月开具后上传中断，我的发票里查不到这张发票。",
        **extra,
    }


def complete_claim(number: str, issued_on: str, **extra: Any) -> dict[str, Any]:
    """A claim that says everything a remedy writes: kind, buyer, amount and tax (¥1,000.00 + 6%)."""
    return claim_for(
        number, issued_on, **{"kind": "ordinary", "total_amount": "1000.00", "total_tax": "60.00", **extra}
    )


def post(client: Any, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(path, data=json.dumps(body or {}), content_type="application/json")


def act(client: Any, case: dict[str, Any], action: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    response = post(client, f"/api/v1/cases/{case['case_id']}/{action}", {"version": case["version"], **body})
    assert response.status_code == expect, response.content.decode()
    return response.json()


def upload(client: Any, case: dict[str, Any], kind: str, name: str, data: bytes, *, expect: int = 201) -> Any:
    handle = io.BytesIO(data)
    handle.name = name
    response = client.post(f"/api/v1/cases/{case['case_id']}/evidence", data={"type": kind, "file": handle})
    assert response.status_code == expect, response.content.decode()
    return response.json()


def fetch(client: Any, case: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/api/v1/cases/{case['case_id']}")
    assert response.status_code == 200, response.content.decode()
    return response.json()
