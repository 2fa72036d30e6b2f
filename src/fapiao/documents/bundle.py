"""A period's invoices as one zip: per invoice its PDF, XML, receipt.json and receipt PDF, plus a
manifest of every file's SHA-256 (``manifest.json``, and ``SHA256SUMS`` for ``sha256sum -c``).

Streamed: the zip is written to the response as it is built, one document at a time (each is read
from the store, or rendered and stored on first use), so memory stays at one document however many
invoices the period holds.  Documents are the stored ones, byte for byte; the manifest's hashes
are the documents' own.  Downloading a bundle is recorded in the audit trail (with the invoices
whose PDF showed personal data, when it did) before the first byte goes out.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may, require
from fapiao.audit.services import record
from fapiao.core.errors import FieldError, ValidationFailed, _
from fapiao.documents.models import DocumentKind
from fapiao.documents.rendering import NoLedgerEntryError
from fapiao.documents.store import stored
from fapiao.invoices import selectors
from fapiao.invoices.models import Invoice

MAX_DAYS = 366
KINDS = (
    DocumentKind.INVOICE_PDF,
    DocumentKind.INVOICE_XML,
    DocumentKind.RECEIPT_JSON,
    DocumentKind.RECEIPT_PDF,
)


@dataclass(frozen=True)
class Period:
    first: date
    last: date


def parse_period(date_from: str, date_to: str) -> Period:
    errors: list[FieldError] = []
    days: dict[str, date] = {}
    for name, text in (("date_from", date_from), ("date_to", date_to)):
        if not text.strip():
            errors.append(FieldError(name, "required", _("This field is required.")))
            continue
        try:
            days[name] = date.fromisoformat(text.strip())
        except ValueError:
            errors.append(FieldError(name, "bad_date", _("Use a date like 2026-11-28.")))
    if not errors and days["date_to"] < days["date_from"]:
        errors.append(FieldError("date_to", "before_start", _("The end date is before the start date.")))
    if not errors and days["date_to"] - days["date_from"] > timedelta(days=MAX_DAYS):
        errors.append(
            FieldError(
                "date_to", "too_long", _("Choose a period of at most {days} days."), {"days": MAX_DAYS}
            )
        )
    if errors:
        raise ValidationFailed(errors)
    return Period(days["date_from"], days["date_to"])


class _Sink:
    """The zip's output: collects what zipfile writes until the response takes it (not seekable,
    so zipfile writes data descriptors and never goes back)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _entry(name: str, day: date) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def stream_bundle(invoices: QuerySet[Invoice], period: Period, *, masked: bool) -> Iterator[bytes]:
    sink = _Sink()
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w") as archive:
        for invoice in invoices.iterator(chunk_size=100):
            for kind in KINDS:
                try:
                    document = stored(invoice, kind, masked=masked)
                except NoLedgerEntryError:
                    continue
                name = f"{invoice.number}/{document.name}"
                archive.writestr(_entry(name, invoice.issued_on), document.data)
                files.append(
                    {"name": name, "sha256": document.sha256, "size": len(document.data), "kind": kind,
                     "invoice": invoice.number}
                )  # fmt: skip
                yield sink.take()
        manifest = {
            "format": "fapiao-bundle/1",
            "date_from": period.first.isoformat(),
            "date_to": period.last.isoformat(),
            "created_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "invoices": len({item["invoice"] for item in files}),
            "files": files,
        }
        text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
        archive.writestr(_entry("manifest.json", period.last), text.encode())
        sums = "".join(f"{item['sha256']}  {item['name']}\n" for item in files)
        archive.writestr(_entry("SHA256SUMS", period.last), sums.encode())
    yield sink.take()


def bundle_response(
    *, user: User, period: Period, merchant: str = "", masked: bool = False
) -> StreamingHttpResponse:
    """The zip of the invoices the user can see in the period (an auditor or operator may narrow to
    one merchant); recorded before streaming."""
    require(user, Action.EXPORT_INVOICES)
    masked = masked or not may(user, Action.REVEAL_SENSITIVE)
    filters = selectors.InvoiceFilters(date_from=period.first, date_to=period.last, merchant=merchant)
    invoices = selectors.invoice_list(user=user, filters=filters).order_by("issued_on", "number", "pk")
    revealed = [] if masked else [i.number for i in invoices.filter(buyer_tax_id_enc__isnull=False)]
    record(
        actor=user,
        action="invoice.documents.bundle",
        merchant=user.merchant,
        after={
            "date_from": period.first.isoformat(),
            "date_to": period.last.isoformat(),
            "invoices": invoices.count(),
            "revealed": revealed,
        },
    )
    response = StreamingHttpResponse(
        stream_bundle(invoices, period, masked=masked), content_type="application/zip"
    )
    name = f"invoices-{period.first.isoformat()}-{period.last.isoformat()}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
