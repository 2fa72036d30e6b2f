"""A loss the system found reaches the merchant, and its remedy is one click away (issue 14).

- :func:`notify_findings` — registered with :mod:`fapiao.invoices.findings`: when ``ledger verify``
  first finds one of a merchant's invoices missing or altered, each of the merchant's users gets a
  notification and a mail in plain Chinese, with a link (``FAPIAO_PUBLIC_URL``) to the invoice's page.
- :func:`open_case_for_finding` — the one click: a draft recovery case whose claim is the ledger
  entry's invoice, with the entry's system receipt (checked automatically) and the finding itself
  attached as evidence.  A merchant user opens it for their own merchant; an operator may open it
  from the incidents page on the merchant's behalf (the merchant is told, checks and submits it).
  A number that already has a case under way gets that case, not a second one.
- :func:`notify_merchant` — the incidents page's "notify the merchant" for an incident's findings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from fapiao.accounts.choices import MERCHANT_ROLES
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.case_claim import parse_claim
from fapiao.core.cases import CaseState
from fapiao.core.errors import ConflictError
from fapiao.core.evidence import EvidenceType
from fapiao.core.ledger_findings import title_zh
from fapiao.core.money import format_money
from fapiao.invoices import findings
from fapiao.invoices.models import InvoiceFinding
from fapiao.ledger.models import IntegrityIncident
from fapiao.ledger.services import receipt_for
from fapiao.recovery import notify
from fapiao.recovery.checks import run_check
from fapiao.recovery.claim import apply_claim
from fapiao.recovery.models import Case, Evidence
from fapiao.recovery.storage import store_blob
from fapiao.recovery.transitions import Change, opened, transition

# What the merchant is told (English msgids; the reader's language renders them).
MESSAGES = {
    findings.MISSING: gettext_noop(
        "Invoice {number} is missing: the ledger records it ({date}, {buyer}, {total}). "
        "Open it to apply for recovery."
    ),
    findings.ALTERED: gettext_noop(
        "Invoice {number} differs from the ledger ({date}, {buyer}, {total}). "
        "Do not hand it over; open it to apply for a repair."
    ),
}
CASE_OPENED_FOR_YOU = gettext_noop(
    "A recovery case for invoice {number} was prepared from the ledger for you: check it and submit it."
)
ENDED = (CaseState.RESOLVED, CaseState.CONFIRMED, CaseState.WITHDRAWN)


class FindingNotFoundError(ConflictError):
    """Invoice {number} has no open ledger finding: it agrees with the ledger now."""

    code = "finding_not_found"


def finding_path(finding: InvoiceFinding) -> str:
    return reverse("invoices:invoice", args=[finding.number])


def _params(finding: InvoiceFinding) -> dict[str, Any]:
    ledger = finding.ledger
    return {
        "number": finding.number,
        "date": str(ledger.get("issued_on") or ""),
        "buyer": str(ledger.get("buyer_name") or ""),
        "total": "¥" + format_money(int(ledger.get("total_with_tax") or 0)),
        "path": finding_path(finding),
    }


def merchant_users(merchant_id: int) -> list[User]:
    return list(
        User.objects.filter(merchant_id=merchant_id, role__in=MERCHANT_ROLES, is_active=True).order_by("pk")
    )


def _notify(
    finding: InvoiceFinding, people: Iterable[User], *, message: str, case: Case | None = None
) -> int:
    params = _params(finding)
    with translation.override(settings.LANGUAGE_CODE):
        if finding.kind == findings.MISSING:
            advice = gettext(
                "The system's ledger holds this invoice, but it is missing from your invoices. "
                "Until it is restored, it is left out of your monthly totals: check your VAT return. "
                "Open the link and "
                "apply for its recovery with one click; the application is filled in from the ledger."
            )
        else:
            advice = gettext(
                "The stored invoice no longer says what the ledger recorded when it was issued. "
                "Do not print, send or declare it until it is repaired. "
                "Open the link and apply for a repair with one click; "
                "the application is filled in from the ledger."
            )
    return notify.send(
        people,
        merchant_id=finding.merchant_id,
        message=message,
        params=params,
        url=f"{settings.FAPIAO_PUBLIC_URL}{params['path']}",
        case=case,
        mail_details=advice,
    )


def notify_findings(found: list[InvoiceFinding]) -> None:
    """Every user of each merchant hears about each new finding (inside the run's transaction)."""
    people: dict[int, list[User]] = {}
    now = timezone.now()
    for finding in found:
        users = people.setdefault(finding.merchant_id, merchant_users(finding.merchant_id))
        _notify(finding, users, message=MESSAGES[finding.kind])
        finding.notified_at = now
        finding.save(update_fields=["notified_at"])


def notify_merchant(*, by: User, incident: IntegrityIncident) -> int:
    """Tell the incident's merchant (again) about each of its open findings; returns how many people."""
    require(by, Action.HANDLE_INCIDENTS)
    if incident.merchant_id is None:
        return 0
    told = 0
    with transaction.atomic():
        open_findings = list(findings.active_for_merchant(incident.merchant_id))
        users = merchant_users(incident.merchant_id)
        for finding in open_findings:
            _notify(finding, users, message=MESSAGES[finding.kind])
            finding.notified_at = timezone.now()
            finding.save(update_fields=["notified_at"])
        told = len(users) if open_findings else 0
        record(
            actor=by,
            action="incident.notify_merchant",
            target=incident,
            merchant=incident.merchant,
            after={"findings": [f.number for f in open_findings], "people": told},
        )
    return told


# --- the one click ----------------------------------------------------------------------------------


def _claim(finding: InvoiceFinding) -> dict[str, Any]:
    ledger = finding.ledger
    buyer: dict[str, Any] = {"name": ledger.get("buyer_name") or ""}
    if ledger.get("buyer_tax_id"):
        buyer["tax_id"] = ledger["buyer_tax_id"]
    what = title_zh(finding.code)
    narrative = gettext(
        "Found by the system's ledger verification on {date}: {what}. "
        "The claim is filled in from ledger entry {index}."
    ).format(
        date=timezone.localtime(finding.found_at).strftime("%Y-%m-%d %H:%M"),
        what=what,
        index=finding.ledger_seq,
    )
    return {
        "number": finding.number,
        "issued_on": ledger.get("issued_on"),
        "kind": ledger.get("kind"),
        "buyer": buyer,
        "total_with_tax": format_money(int(ledger.get("total_with_tax") or 0)),
        "total_amount": format_money(int(ledger.get("total_amount") or 0)),
        "total_tax": format_money(int(ledger.get("total_tax") or 0)),
        "narrative": narrative,
    }


def _finding_text(finding: InvoiceFinding) -> bytes:
    """The finding as a plain-text file (evidence): what was found, when, and what the ledger says."""
    ledger = finding.ledger
    lines = [
        "账本核验发现 / Ledger verification finding",
        f"发票号码：{finding.number}",
        f"发现的问题：{findings.KIND_TITLES[finding.kind]}（{title_zh(finding.code)}，{finding.code}）",
        f"首次发现：{timezone.localtime(finding.found_at):%Y-%m-%d %H:%M}（北京时间）",
        f"账本条目：第 {finding.ledger_seq} 条",
        f"账本记录的开票日期：{ledger.get('issued_on')}",
        f"账本记录的购买方：{ledger.get('buyer_name')}",
        f"账本记录的价税合计：{format_money(int(ledger.get('total_with_tax') or 0))}",
    ]
    if finding.kind == findings.ALTERED:
        row = finding.row
        lines += [
            f"发票记录现为：{row.get('issued_on')}，{row.get('buyer_name')}，"
            f"{format_money(int(row.get('total_with_tax') or 0))}，状态 {row.get('state')}",
            f"不一致的字段：{finding.fields or finding.expected_state}",
        ]
    if finding.incident_id:
        lines.append(f"数据完整性事件：{finding.incident_id}")
    return ("\n".join(lines) + "\n").encode()


def _attach(
    case: Case, *, user: User, evidence_type: EvidenceType, name: str, data: bytes, kind: str, at: datetime
) -> None:
    store_blob(data)

    def write(locked: Case, _target: CaseState, now: datetime) -> None:
        evidence = Evidence(
            merchant_id=locked.merchant_id,
            case=locked,
            evidence_type=evidence_type,
            filename=name,
            content_kind=kind,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            uploaded_by=user,
            uploaded_at=now,
            on_behalf=not user.is_merchant_user,
        )
        run_check(evidence, locked, data)
        evidence.save()

    details = {"file": name, "type": evidence_type.value, "source": "ledger_finding"}
    transition(case, Change.EVIDENCE, actor=user, version=None, apply=write, details=details, at=at)


def case_under_way(finding: InvoiceFinding) -> Case | None:
    cases = Case.objects.filter(merchant_id=finding.merchant_id, claimed_number=finding.number)
    return cases.exclude(state__in=ENDED).order_by("-opened_at").first()


def open_case_for_finding(*, user: User, finding: InvoiceFinding) -> tuple[Case, bool]:
    """A draft case prefilled from the ledger entry, its receipt and the finding attached.

    ``finding`` comes from a scoped selector.  Returns ``(case, created)``.
    """
    if user.is_merchant_user:
        require(user, Action.OPEN_CASES)
        if finding.merchant_id != user.merchant_id:  # a scoped selector never gives one, but still
            raise FindingNotFoundError(number=finding.number)
    else:
        require(user, Action.HANDLE_INCIDENTS)
    if finding.cleared_at is not None:
        raise FindingNotFoundError(number=finding.number)
    claim = parse_claim(_claim(finding), today=timezone.localdate())
    receipt = receipt_for(finding.merchant, finding.ledger_seq) if finding.ledger_seq is not None else None
    with transaction.atomic():
        # One case per number under way: the second click (or the operator's) finds the first.
        InvoiceFinding.objects.select_for_update().filter(pk=finding.pk).first()
        existing = case_under_way(finding)
        if existing is not None:
            return existing, False
        now = timezone.now()
        case = Case(merchant_id=finding.merchant_id, opened_by=user, opened_at=now, state_changed_at=now)
        apply_claim(case, claim)
        case.save()
        opened(case, actor=user, at=now)
        if receipt is not None:
            data = json.dumps(receipt, ensure_ascii=False, indent=2).encode()
            _attach(
                case,
                user=user,
                evidence_type=EvidenceType.SYSTEM_RECEIPT,
                name=f"receipt-{finding.number}.json",
                data=data,
                kind="json",
                at=now,
            )
        _attach(
            case,
            user=user,
            evidence_type=EvidenceType.OTHER,
            name=f"ledger-finding-{finding.number}.txt",
            data=_finding_text(finding),
            kind="text",
            at=now,
        )
        if not user.is_merchant_user:
            _notify(finding, merchant_users(finding.merchant_id), message=CASE_OPENED_FOR_YOU, case=case)
            record(
                actor=user,
                action="finding.open_case",
                target=case,
                merchant=case.merchant,
                after={"case": str(case.uid), "number": finding.number, "incident": finding.incident_id},
            )
    return case, True
