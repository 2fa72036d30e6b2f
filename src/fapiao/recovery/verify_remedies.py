"""``ledger verify``'s check of the remedies: every restore or re-issue entry is its case's claim.

A remedy writes what was claimed and proven (docs/spec/recovery.md).  Each ``restore`` and ``reissue``
entry of a merchant's log names its case (``ref``); its invoice is compared with that case's
claim as :func:`fapiao.core.claims.remedy_differences` compares them, and any difference — or a
case the merchant does not have — is a finding.  Registered with the ledger's verify from
:class:`fapiao.recovery.apps.RecoveryConfig`.
"""

from __future__ import annotations

import uuid

from fapiao.accounts.models import Merchant
from fapiao.core.choices import Direction, EntryKind
from fapiao.core.claims import remedy_differences
from fapiao.core.ledger_check import Finding, FindingCode, LogChecker, parse_entry
from fapiao.ledger.models import LogEntry
from fapiao.recovery.claim import remedy_claim
from fapiao.recovery.models import Case

REMEDY_KINDS = (EntryKind.RESTORE, EntryKind.REISSUE)


def check_remedies(merchant: Merchant, checker: LogChecker, progress: object = None) -> int:
    """Every restore / re-issue entry of ``merchant``'s log against its case's claim (no rows counted)."""
    del progress
    add = checker.findings.add
    entries = (
        LogEntry.objects.filter(merchant=merchant, kind__in=REMEDY_KINDS)
        .order_by("seq")
        .values_list("seq", "body")
    )
    found = []
    for seq, body in entries.iterator(chunk_size=500):
        entry = parse_entry(bytes(body))
        if entry is not None and isinstance(entry.get("ref"), str):  # else the log check reports it
            found.append((seq, entry))
    if not found:
        return 0
    refs = {entry["ref"] for _seq, entry in found}
    cases = {str(case.uid): case for case in Case.objects.filter(merchant=merchant, uid__in=_uuids(refs))}
    for seq, entry in found:
        kind, ref, invoice = entry["kind"], entry["ref"], entry["invoice"]
        case = cases.get(ref)
        if case is None:
            params = {"kind": kind, "case": ref}
            add(
                Finding(
                    FindingCode.REMEDY_MISMATCH, merchant.uscc, index=seq, variant="no_case", params=params
                )
            )
            continue
        claim = remedy_claim(case)
        if invoice.get("direction") == Direction.IN:
            claim.pop("seller_tax_id")  # a received invoice's seller is another party
        differences = remedy_differences(claim, invoice, restore=kind == EntryKind.RESTORE)
        if differences:
            fields = "; ".join(f"{d.field} {d.claimed} / {d.found}" for d in differences)
            params = {"kind": kind, "case": case.acceptance_no or ref, "fields": fields}
            add(
                Finding(
                    FindingCode.REMEDY_MISMATCH,
                    merchant.uscc,
                    index=seq,
                    number=invoice.get("number"),
                    params=params,
                )
            )
    return 0


def _uuids(refs: set[str]) -> list[str]:
    """The refs that are case ids (a forged ref that is no UUID names no case)."""
    valid = []
    for ref in refs:
        try:
            valid.append(str(uuid.UUID(ref)))
        except ValueError:
            continue
    return valid
