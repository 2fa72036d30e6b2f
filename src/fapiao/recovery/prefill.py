"""What the reviewer sees of the claimed number, and the best source to prefill a restore from.

The ledger is the best witness: if the merchant's log holds an entry for the claimed number,
its signed ``invoice`` document says every field the invoice had (only an individual buyer's
ID and the buyer's address, phone and bank details are sealed, and must be typed from the
evidence).  Next best is an e-invoice XML the automatic check verified against the claim; last
the claim itself, which knows the buyer and the totals but not the lines.  The reviewer checks
every field whichever the source; this module only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy

from fapiao.core.choices import EntryKind
from fapiao.core.errors import FapiaoError
from fapiao.core.ledger_check import parse_entry
from fapiao.core.money import format_money
from fapiao.core.tax import line_tax, rates_in_force
from fapiao.formats.einvoice_xml import EInvoiceFields, read_einvoice_xml
from fapiao.ledger.models import LogEntry
from fapiao.recovery.choices import CheckStatus
from fapiao.recovery.claim import claimed_buyer_tax_id
from fapiao.recovery.models import Case, Evidence
from fapiao.recovery.storage import open_blob

#: Entries whose document is the (blue) invoice of the number itself.
DOCUMENT_KINDS = frozenset({EntryKind.ISSUE, EntryKind.IMPORT, EntryKind.RESTORE, EntryKind.REISSUE})
ENTRY_KINDS = {
    "issue": gettext_lazy("issued"),
    "red_letter": gettext_lazy("red-lettered"),
    "void": gettext_lazy("voided"),
    "import": gettext_lazy("imported"),
    "restore": gettext_lazy("restored"),
    "reissue": gettext_lazy("re-issued"),
}
LINE_KEYS = ("name", "tax_code", "spec", "unit", "quantity", "unit_price", "tax_rate")


@dataclass(frozen=True)
class Source:
    """Where the prefilled fields come from: ``ledger``, ``e_invoice`` or ``claim``."""

    kind: str
    issued_on: str
    invoice: dict[str, Any]  # the API body: kind, buyer, lines, remark
    detail: dict[str, Any] = field(default_factory=dict)
    sealed: bool = False  # sensitive buyer fields are sealed in the ledger: type them


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


def ledger_source(case: Case) -> Source | None:
    found = [
        row
        for row in ledger_documents(case)
        if row["kind"] in DOCUMENT_KINDS
        and row["document"]
        and row["document"].get("number") == case.claimed_number
    ]
    if not found:
        return None
    row = found[-1]
    document = row["document"]
    buyer = document.get("buyer") or {}
    invoice = {
        "kind": str(document.get("kind") or "ordinary"),
        "buyer": {
            "name": str(buyer.get("name") or ""),
            # An individual's ID is sealed, never in the entry: the claim may know it.
            "tax_id": str(buyer.get("tax_id") or (claimed_buyer_tax_id(case) if buyer.get("sealed") else "")),
        },
        "lines": [
            {key: str(line.get(key) or "") for key in LINE_KEYS} for line in document.get("lines") or []
        ],
        "remark": str(document.get("remark") or ""),
    }
    detail = {"index": row["index"], "entry_kind": row["kind"], "at": row["at"]}
    issued_on = str(document.get("issued_on") or case.claimed_issued_on.isoformat())
    return Source("ledger", issued_on, invoice, detail, sealed=bool(buyer.get("sealed")))


def _xml_fields(evidence: Evidence) -> EInvoiceFields | None:
    try:
        fields, _problems = read_einvoice_xml(open_blob(evidence.sha256))
    except FapiaoError:  # the blob is missing or damaged: another source will do
        return None
    return fields


def einvoice_source(case: Case) -> Source | None:
    verified = Evidence.objects.filter(case=case, content_kind="xml", check_status=CheckStatus.VERIFIED)
    for evidence in verified.order_by("-uploaded_at", "-pk"):
        fields = _xml_fields(evidence)
        if fields is None:
            continue
        lines = [
            {
                "name": line.name or "",
                "quantity": line.quantity or "1",
                "unit_price": line.unit_price
                or (format_money(line.amount_fen) if line.amount_fen is not None else ""),
                "tax_rate": line.tax_rate or "",
            }
            for line in fields.lines
        ]
        invoice = {
            "kind": case.claimed_kind or "ordinary",
            "buyer": {
                "name": fields.buyer_name or case.claimed_buyer_name,
                "tax_id": fields.buyer_tax_id or "",
            },
            "lines": lines or claim_lines(case),
            "remark": "",
        }
        issued_on = (fields.issued_on or case.claimed_issued_on).isoformat()
        return Source("e_invoice", issued_on, invoice, {"file": evidence.filename})
    return None


def _rate_of(case: Case) -> str:
    """The one rate in force that turns the claimed amount into the claimed tax, if exactly one does."""
    amount, tax = case.claimed_total_amount, case.claimed_total_tax
    if amount is None or tax is None:
        return ""
    fitting = [rate.code for rate in rates_in_force(case.claimed_issued_on) if line_tax(amount, rate) == tax]
    return fitting[0] if len(fitting) == 1 else ""


def claim_lines(case: Case) -> list[dict[str, str]]:
    """One line carrying the claimed amount (when the claim gives it); the rest is to be typed."""
    amount = case.claimed_total_amount
    price = format_money(amount) if amount is not None else ""
    return [{"name": "", "quantity": "1" if price else "", "unit_price": price, "tax_rate": _rate_of(case)}]


def claim_source(case: Case) -> Source:
    invoice = {
        "kind": case.claimed_kind or "ordinary",
        "buyer": {"name": case.claimed_buyer_name, "tax_id": claimed_buyer_tax_id(case)},
        "lines": claim_lines(case),
        "remark": "",
    }
    return Source("claim", case.claimed_issued_on.isoformat(), invoice)


def best_source(case: Case) -> Source:
    return ledger_source(case) or einvoice_source(case) or claim_source(case)
