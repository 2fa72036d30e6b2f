"""The claimed number's history in the merchant's ledger, as the reviewer sees it beside the claim.

The ledger is the best witness: if the merchant's log holds an entry for the claimed number, its
signed ``invoice`` document says every field the invoice had, and a restore writes exactly that
(:mod:`fapiao.recovery.remedies`).  This module only reads.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy

from fapiao.core.choices import EntryKind
from fapiao.core.ledger_check import parse_entry
from fapiao.core.money import format_money
from fapiao.ledger.models import LogEntry
from fapiao.recovery.models import Case

#: Entries whose document is the invoice of the number itself (a red letter's is the red invoice).
DOCUMENT_KINDS = frozenset(
    {EntryKind.ISSUE, EntryKind.IMPORT, EntryKind.RESTORE, EntryKind.REISSUE, EntryKind.RED_LETTER}
)
ENTRY_KINDS = {
    "issue": gettext_lazy("issued"),
    "red_letter": gettext_lazy("red-lettered"),
    "void": gettext_lazy("voided"),
    "import": gettext_lazy("imported"),
    "restore": gettext_lazy("restored"),
    "reissue": gettext_lazy("re-issued"),
}


def ledger_documents(case: Case) -> list[dict[str, Any]]:
    """Every entry of the claimed number in the merchant's log, with its parsed document."""
    rows = []
    entries = LogEntry.objects.filter(merchant_id=case.merchant_id, invoice_number=case.claimed_number)
    for entry in entries.order_by("seq"):
        parsed = parse_entry(bytes(entry.body))
        document = parsed["invoice"] if parsed else None
        document = document if isinstance(document, dict) else None
        rows.append({"index": entry.seq, "kind": entry.kind, "at": entry.created_at, "document": document})
    return rows


def ledger_rows(case: Case) -> list[dict[str, Any]]:
    """The number's ledger entries, each saying where its document disagrees with the claim."""
    claimed = {
        "issued_on": case.claimed_issued_on.isoformat(),
        "buyer": case.claimed_buyer_name,
        "total_with_tax": format_money(case.claimed_total_with_tax),
    }
    rows = ledger_documents(case)
    for row in rows:
        document = row["document"] or {}
        found = {
            "issued_on": document.get("issued_on"),
            "buyer": (document.get("buyer") or {}).get("name"),
            "total_with_tax": document.get("total_with_tax"),
        }
        row["differs"] = sorted(name for name, value in found.items() if value != claimed[name])
        row["kind_label"] = str(ENTRY_KINDS.get(row["kind"], row["kind"]))
    return rows
