"""Loss reaches the merchant: what ``ledger verify`` found wrong with their invoices, kept for them.

A receipt check that proves a receipt (:func:`check_receipt_row`) checks its invoice row the same way.
After every recorded run (:func:`fapiao.ledger.verify_runs.record_run`, the command line or the
verification page) :func:`record_from_report` turns the invoice findings of each merchant's log into
:class:`~fapiao.invoices.models.InvoiceFinding` rows:

- ``entry_without_invoice`` → **missing** (缺失): the ledger holds the invoice, its row is gone;
- ``invoice_mismatch`` / ``invoice_state_mismatch`` → **altered** (与账本不一致): the row differs
  from the entry it points at.

Each keeps what the ledger entry says (number, date, buyer's name, amounts), so the merchant's
pages, print view, files, exports and 月度汇总 can show it instead of the row, or instead of
nothing.  A finding stays active until a remedy lands (:func:`clear`) or a later run over the
merchant's invoices no longer finds it.  New findings are passed to the listeners higher apps
register (the recovery app notifies the merchant's users).  Selectors are scoped to the user's
merchant: a merchant never sees another's findings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from fapiao.accounts.models import Merchant, User
from fapiao.core.errors import FapiaoError
from fapiao.core.ledger_check import Finding, FindingCode, parse_entry
from fapiao.core.ledger_findings import title_zh
from fapiao.core.money import format_money, parse_money
from fapiao.invoices.models import Invoice, InvoiceFinding
from fapiao.invoices.rows import core_line, document_for
from fapiao.ledger.models import IntegrityIncident, LogEntry
from fapiao.ledger.verify import VerifyReport

log = logging.getLogger("fapiao.findings")

MISSING, ALTERED = "missing", "altered"
KIND_OF_CODE: dict[str, str] = {
    FindingCode.ENTRY_WITHOUT_INVOICE.value: MISSING,
    FindingCode.INVOICE_MISMATCH.value: ALTERED,
    FindingCode.INVOICE_STATE_MISMATCH.value: ALTERED,
}
# What the merchant's pages call each kind (zh-Hans; the pages translate the msgid).
KIND_TITLES = {MISSING: "缺失", ALTERED: "与账本不一致"}

Listener = Callable[[list[InvoiceFinding]], None]
LISTENERS: list[Listener] = []


def register_listener(listener: Listener) -> None:
    """Called with the findings a run found for the first time, inside its transaction."""
    if listener not in LISTENERS:
        LISTENERS.append(listener)


# --- what the ledger says --------------------------------------------------------------------------


def _fen(value: object) -> int:
    """An entry's money string in fen; a red invoice's are negative."""
    try:
        return parse_money(str(value), allow_negative=True)
    except (FapiaoError, ValueError, ArithmeticError):
        return 0


def ledger_values(document: Mapping[str, Any]) -> dict[str, Any]:
    """The public part of an entry's invoice: what the merchant is shown it should be."""
    buyer = document.get("buyer") or {}
    return {
        "number": document.get("number"),
        "issued_on": document.get("issued_on"),
        "kind": document.get("kind"),
        "colour": document.get("colour"),
        "direction": document.get("direction"),
        "buyer_name": buyer.get("name") or "",
        "buyer_tax_id": buyer.get("tax_id") or "",
        "total_amount": _fen(document.get("total_amount")),
        "total_tax": _fen(document.get("total_tax")),
        "total_with_tax": _fen(document.get("total_with_tax")),
        "original_number": document.get("original_number") or "",
    }


def row_values(invoice: Invoice) -> dict[str, Any]:
    return {
        "issued_on": invoice.issued_on.isoformat(),
        "buyer_name": invoice.buyer_name,
        "state": invoice.state,
        "total_amount": invoice.total_amount,
        "total_tax": invoice.total_tax,
        "total_with_tax": invoice.total_with_tax,
    }


def entry_document(merchant_id: int, seq: int | None) -> dict[str, Any] | None:
    if seq is None:
        return None
    body = LogEntry.objects.filter(merchant_id=merchant_id, seq=seq).values_list("body", flat=True).first()
    entry = parse_entry(bytes(body)) if body is not None else None
    invoice = entry.get("invoice") if entry else None
    return invoice if isinstance(invoice, dict) else None


# --- recording ------------------------------------------------------------------------------------


def _gather(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    by_number: dict[str, list[Finding]] = {}
    for finding in findings:
        if str(finding.code) in KIND_OF_CODE and finding.number:
            by_number.setdefault(finding.number, []).append(finding)
    return by_number


def _values(merchant: Merchant, number: str, found: list[Finding]) -> dict[str, Any] | None:
    kinds = {KIND_OF_CODE[str(f.code)] for f in found}
    kind = MISSING if MISSING in kinds else ALTERED
    codes = sorted({str(f.code) for f in found})
    row = None
    if kind == ALTERED:
        row = Invoice.objects.filter(merchant=merchant, number=number).first()
        if row is None:
            return None
    seq = next((f.index for f in found if f.index is not None), row.ledger_seq if row else None)
    document = entry_document(merchant.pk, seq)
    if document is None:
        return None  # an altered entry: the log's own finding, not something the merchant can see
    ledger = ledger_values(document)
    fields = sorted({str(f.params.get("fields", "")) for f in found if f.params.get("fields")})
    expected = next((str(f.params["expected"]) for f in found if "expected" in f.params), "")
    try:
        issued_on: date | None = date.fromisoformat(str(ledger["issued_on"]))
    except ValueError:
        issued_on = None
    return {
        "kind": kind,
        "code": codes[0] if kind == ALTERED else FindingCode.ENTRY_WITHOUT_INVOICE.value,
        "ledger_seq": seq,
        "issued_on": issued_on,
        "direction": str(ledger.get("direction") or ""),
        "total_with_tax": ledger["total_with_tax"],
        "ledger": ledger,
        "row": row_values(row) if row is not None else {},
        "fields": "; ".join(fields)[:500],
        "expected_state": expected,
    }


def record_from_report(report: VerifyReport, incidents: Mapping[str, IntegrityIncident]) -> None:
    """Keep what the run found about each merchant's invoices; clear what it no longer finds."""
    merchants = {m.uscc: m for m in Merchant.objects.filter(uscc__in=[r.log for r in report.logs])}
    new: list[InvoiceFinding] = []
    now = timezone.now()
    with transaction.atomic():
        for log_report in report.logs:
            merchant = merchants.get(log_report.log)
            if merchant is None or (not log_report.invoices and not log_report.counts):
                continue
            found = _gather(log_report.findings)
            active = {f.number: f for f in InvoiceFinding.objects.filter(merchant=merchant, cleared_at=None)}
            for number, items in found.items():
                values = _values(merchant, number, items)
                if values is None:
                    continue
                existing = active.get(number)
                if existing is not None:
                    for name, value in values.items():
                        setattr(existing, name, value)
                    existing.seen_at = now
                    existing.save()
                    continue
                finding = InvoiceFinding.objects.create(
                    merchant=merchant,
                    number=number,
                    incident=incidents.get(log_report.log),
                    found_at=now,
                    seen_at=now,
                    **values,
                )
                new.append(finding)
            # What this run no longer finds is cleared — unless its code was past the listing cap.
            capped = set(log_report.suppressed)
            for number, finding in active.items():
                if number not in found and finding.code not in capped and log_report.invoices:
                    _clear(finding, how="verify", ref="", at=now)
        if new:
            for listener in LISTENERS:
                listener(new)


def _clear(finding: InvoiceFinding, *, how: str, ref: str, at: datetime) -> None:
    finding.cleared_at = at
    finding.cleared_how = how
    finding.cleared_ref = ref[:40]
    finding.save(update_fields=["cleared_at", "cleared_how", "cleared_ref"])


def clear(*, merchant_id: int, number: str, how: str, ref: str) -> InvoiceFinding | None:
    """A remedy landed for ``number`` (call inside its transaction): its flag and warning clear."""
    finding = active_for_merchant(merchant_id).filter(number=number).first()
    if finding is not None:
        _clear(finding, how=how, ref=ref, at=timezone.now())
    return finding


# --- selectors ------------------------------------------------------------------------------------


def active_for_merchant(merchant_id: int) -> QuerySet[InvoiceFinding]:
    return InvoiceFinding.objects.filter(merchant_id=merchant_id, cleared_at=None).order_by(
        "issued_on", "number"
    )


def about_altered(merchant_id: int, number: str, case_ref: str | None) -> bool:
    """Whether a case for ``number`` concerns a stored invoice that differs from its ledger entry
    (a repair), not a missing one: an active ``altered`` finding, or one this case cleared."""
    queryset = InvoiceFinding.objects.filter(merchant_id=merchant_id, number=number, kind=ALTERED)
    cleared_here = Q(cleared_ref=case_ref) if case_ref else Q(pk__in=[])
    return queryset.filter(Q(cleared_at=None) | cleared_here).exists()


def visible_to(user: User, *, merchant: Merchant | None = None) -> QuerySet[InvoiceFinding]:
    """Active findings ``user`` may see: a merchant user's own merchant's only; staff those of
    ``merchant`` (or every merchant's when none is given)."""
    if user.is_merchant_user:
        return active_for_merchant(user.merchant_id)  # type: ignore[arg-type]
    queryset = InvoiceFinding.objects.filter(cleared_at=None).select_related("merchant")
    if merchant is not None:
        queryset = queryset.filter(merchant=merchant)
    return queryset.order_by("merchant_id", "issued_on", "number")


def finding_for(user: User, number: str, merchant: Merchant | None = None) -> InvoiceFinding | None:
    return visible_to(user, merchant=merchant).filter(number=number).first()


def findings_by_number(user: User, numbers: Iterable[str]) -> dict[tuple[int, str], InvoiceFinding]:
    """(merchant id, number) → active finding, for the rows of one page."""
    wanted = list(numbers)
    if not wanted:
        return {}
    return {(f.merchant_id, f.number): f for f in visible_to(user).filter(number__in=wanted)}


def in_period(
    user: User,
    *,
    date_from: date | None,
    date_to: date | None,
    direction: str,
    merchant: Merchant | None = None,
) -> list[InvoiceFinding]:
    """The active findings whose ledger date lies in the period (for 月度汇总's warning)."""
    queryset = visible_to(user, merchant=merchant).filter(direction=direction)
    if date_from is not None:
        queryset = queryset.filter(issued_on__gte=date_from)
    if date_to is not None:
        queryset = queryset.filter(issued_on__lte=date_to)
    return list(queryset)


def describe(finding: InvoiceFinding) -> str:
    """One line in Chinese, for mails and the incidents page."""
    return f"{finding.number}（{KIND_TITLES[finding.kind]}，{title_zh(finding.code)}）"


def missing_matching(user: User, filters: Any) -> list[InvoiceFinding]:
    """The missing invoices a search would have found had their rows been there (from the ledger)."""
    merchant = None
    if not user.is_merchant_user and filters.merchant:
        merchant = Merchant.objects.filter(uscc=filters.merchant).first()
        if merchant is None:
            return []
    queryset = visible_to(user, merchant=merchant).filter(kind=MISSING)
    if filters.number:
        queryset = queryset.filter(number=filters.number)
    if filters.date_from is not None:
        queryset = queryset.filter(issued_on__gte=filters.date_from)
    if filters.date_to is not None:
        queryset = queryset.filter(issued_on__lte=filters.date_to)
    if filters.direction:
        queryset = queryset.filter(direction=filters.direction)
    if filters.amount_min is not None:
        queryset = queryset.filter(total_with_tax__gte=filters.amount_min)
    if filters.amount_max is not None:
        queryset = queryset.filter(total_with_tax__lte=filters.amount_max)
    found = list(queryset[:100])
    if filters.buyer:
        wanted = filters.buyer.casefold()
        found = [
            f
            for f in found
            if wanted in str(f.ledger.get("buyer_name", "")).casefold()
            or wanted == f.ledger.get("buyer_tax_id")
        ]
    if filters.state or filters.colour:
        return []  # a missing invoice has no state of its own to match
    return found


def summary(finding: InvoiceFinding) -> dict[str, Any]:
    """A missing invoice as a search result row shows it: from its ledger entry."""
    ledger = finding.ledger
    return {
        "number": finding.number,
        "kind": ledger.get("kind") or "",
        "colour": ledger.get("colour") or "blue",
        "direction": ledger.get("direction") or "",
        "state": "",
        "origin": "",
        "issued_on": ledger.get("issued_on") or "",
        "buyer_name": ledger.get("buyer_name") or "",
        "total_with_tax": format_money(int(ledger.get("total_with_tax") or 0)),
        "flag": finding.kind,
        "merchant": finding.merchant.uscc,
        "merchant_name": finding.merchant.name,
    }


# --- a receipt check -----------------------------------------------------------------------------


def check_receipt_row(merchant_id: int, index: int) -> InvoiceFinding | None:
    """A proven receipt names entry ``index``: is its invoice row there, and does it agree?

    Registered with :mod:`fapiao.ledger.checks` (``fapiao ledger check-receipt`` and a receipt
    attached to a case).  A row gone (with no later restore) is a **missing** finding, a row
    pointing at this entry that differs from it an **altered** one; the merchant is told as after a
    verify run.  Returns the finding, new or already active, or None when all is well.
    """
    document = entry_document(merchant_id, index)
    number = document.get("number") if document else None
    if document is None or not isinstance(number, str):
        return None
    active = active_for_merchant(merchant_id).filter(number=number).first()
    if active is not None:
        return active
    row = Invoice.objects.filter(merchant_id=merchant_id, number=number).select_related("original").first()
    if row is None:
        code = FindingCode.ENTRY_WITHOUT_INVOICE
        found = [Finding(code, "", index=index, number=number)]
    elif row.ledger_seq == index:
        try:
            rebuilt = document_for(row, tuple(core_line(line, row) for line in row.lines.order_by("no")))
        except (FapiaoError, ValueError, ArithmeticError, LookupError):
            rebuilt = None
        if rebuilt == document:
            return None
        fields = sorted(k for k in document if rebuilt is None or rebuilt.get(k) != document.get(k))
        params = {"fields": ", ".join(fields)}
        found = [Finding(FindingCode.INVOICE_MISMATCH, "", index=index, number=number, params=params)]
    else:
        return None  # the row is another entry's (a restore): that entry's receipt is the one to check
    merchant = Merchant.objects.get(pk=merchant_id)
    values = _values(merchant, number, found)
    if values is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        finding = InvoiceFinding.objects.create(
            merchant=merchant, number=number, found_at=now, seen_at=now, **values
        )
        for listener in LISTENERS:
            listener([finding])
    return finding
