"""Invoice exports (CSV/XLSX) of a search: one row per invoice, masked like the API, audited."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from fapiao.audit.services import record
from fapiao.core.money import format_money
from fapiao.formats.tabular import write_table
from fapiao.invoices.models import Invoice
from fapiao.invoices.sensitive import masked_buyer

HEADER = [
    "发票号码 number",
    "开票日期 issued_on",
    "种类 kind",
    "红蓝 colour",
    "状态 state",
    "来源 origin",
    "购买方 buyer",
    "购买方税号 buyer_tax_id",
    "金额 amount",
    "税额 tax",
    "价税合计 total_with_tax",
    "原发票号码 original_number",
]


def rows(queryset: QuerySet[Invoice]) -> Iterator[list[object]]:
    for invoice in queryset.select_related("original").iterator(chunk_size=2000):
        tax_id = masked_buyer(invoice)["tax_id"] or ""
        yield [
            invoice.number,
            invoice.issued_on.isoformat(),
            invoice.kind,
            invoice.colour,
            invoice.state,
            invoice.origin,
            invoice.buyer_name,
            tax_id,
            format_money(invoice.total_amount),
            format_money(invoice.total_tax),
            format_money(invoice.total_with_tax),
            invoice.original.number if invoice.original else "",
        ]


def export_invoices(
    queryset: QuerySet[Invoice], path: Path, *, actor: Any = None, filters: Mapping[str, Any] | None = None
) -> int:
    """Write the invoices of ``queryset`` (already scoped to who exports) to ``path`` (.csv or .xlsx).

    With ``actor`` the export is recorded in the audit trail (action ``invoice.export``, with
    ``filters``); a caller that passes no actor records the export itself.
    """
    count = write_table(path, HEADER, rows(queryset), title="发票 invoices")
    if actor is not None:
        record(
            actor=actor,
            action="invoice.export",
            target_type="export",
            target_id=path.suffix.lower().lstrip("."),
            after={"rows": count, "file": path.name, "filters": dict(filters or {})},
        )
    return count
