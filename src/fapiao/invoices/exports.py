"""Invoice exports (CSV/XLSX) of a search: one row per invoice, masked like the API, audited.

The last column, 账本核对, flags an invoice ``ledger verify`` found altered (与账本不一致); invoices it
found missing follow as rows of what their ledger entry says, flagged 缺失, so an export never
silently leaves them out (:mod:`fapiao.invoices.findings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from fapiao.audit.services import record
from fapiao.core.money import format_money
from fapiao.formats.tabular import write_table
from fapiao.invoices.findings import KIND_TITLES, MISSING
from fapiao.invoices.models import Invoice, InvoiceFinding
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
    "账本核对 ledger_check",
]


def rows(
    queryset: QuerySet[Invoice],
    flags: Iterable[InvoiceFinding] = (),
    missing: Iterable[InvoiceFinding] = (),
) -> Iterator[list[object]]:
    flagged = {(f.merchant_id, f.number): KIND_TITLES[f.kind] for f in flags}
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
            flagged.get((invoice.merchant_id, invoice.number), ""),
        ]
    for finding in missing:
        ledger = finding.ledger
        yield [
            finding.number,
            ledger.get("issued_on") or "",
            ledger.get("kind") or "",
            ledger.get("colour") or "",
            "",
            "",
            ledger.get("buyer_name") or "",
            ledger.get("buyer_tax_id") or "",
            format_money(int(ledger.get("total_amount") or 0)),
            format_money(int(ledger.get("total_tax") or 0)),
            format_money(int(ledger.get("total_with_tax") or 0)),
            ledger.get("original_number") or "",
            KIND_TITLES[MISSING],
        ]


def export_invoices(
    queryset: QuerySet[Invoice],
    path: Path,
    *,
    actor: Any = None,
    filters: Mapping[str, Any] | None = None,
    flags: Iterable[InvoiceFinding] = (),
    missing: Iterable[InvoiceFinding] = (),
) -> int:
    """Write the invoices of ``queryset`` (already scoped to who exports) to ``path`` (.csv or .xlsx).

    With ``actor`` the export is recorded in the audit trail (action ``invoice.export``, with
    ``filters``); a caller that passes no actor records the export itself.
    """
    count = write_table(path, HEADER, rows(queryset, flags, missing), title="发票 invoices")
    if actor is not None:
        record(
            actor=actor,
            action="invoice.export",
            target_type="export",
            target_id=path.suffix.lower().lstrip("."),
            after={"rows": count, "file": path.name, "filters": dict(filters or {})},
        )
    return count
