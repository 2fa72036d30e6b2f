"""The two remedies of an approved case (DESIGN.md §7): restore and re-issue (补开).

**Restore** brings the invoice back under its original number: the reviewer confirms every
field, the row is written with origin ``restored``, and a ``restore`` ledger entry carrying the
case id is appended in the same unit of work, so the merchant gets a fresh receipt.
**Re-issue** is for when the original cannot be established: a new invoice, numbered from the
merchant's segments, origin ``reissued``, a ``reissue`` entry; the claimed number is recorded as
superseded, so if the original ever surfaces it is flagged for red-letter.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import NumberSegment, User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.case_claim import parse_restore_request
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.choices import Colour, Direction, EntryKind, InvoiceState, Origin
from fapiao.core.errors import ConflictError, InvalidValueError, ValidationFailed, _
from fapiao.core.invoice import InvoiceDraft, parse_invoice_request
from fapiao.invoices.models import Invoice
from fapiao.invoices.numbering import allocate_number
from fapiao.invoices.presenters import audit_snapshot
from fapiao.invoices.services import _buyer_data, _create_invoice, _seal_buyer, document_for
from fapiao.ledger.models import LogEntry
from fapiao.ledger.services import append_entry
from fapiao.platform.uow import PendingEntry, UnitOfWork, write
from fapiao.recovery import notify
from fapiao.recovery.choices import Remedy
from fapiao.recovery.models import Case, SupersededNumber
from fapiao.recovery.review import claim_check
from fapiao.recovery.transitions import transition

BEIJING = ZoneInfo("Asia/Shanghai")


class InvoiceAlreadyPresentError(ConflictError):
    """Invoice {number} is in the system already; there is nothing to restore."""

    code = "invoice_already_present"


class RemedyAlreadyAppliedError(ConflictError):
    """This case already restored or re-issued invoice {number}; a second remedy cannot replace it."""

    code = "remedy_already_applied"


# What the reviewer of a reopened case is told: the restored invoice stands, this is the way on.
REMEDY_APPLIED = _(
    "This case already restored or re-issued invoice {number}; a second remedy cannot replace it. "
    "If that invoice is wrong, ask the merchant to red-letter it (红冲) and issue a corrected one, "
    "or reject the reopening with a reason."
)


class NumberSupersededError(ConflictError):
    """Invoice {number} was replaced by a re-issue; restoring it too would invoice one sale twice."""

    code = "number_superseded"


class NumberNeverAllocatedError(ConflictError):
    """Number {number} lies in this merchant's segment but was never handed out: no invoice has it."""

    code = "number_never_allocated"


class OriginalEstablishedError(ConflictError):
    """The ledger holds invoice {number}: restore it rather than re-issuing."""

    code = "original_established"


def _remedy(value: object) -> Remedy:
    try:
        return Remedy(str(value))
    except ValueError:
        raise ValidationFailed(
            [
                InvalidValueError(
                    _("Choose one of: {choices}."), code="invalid_choice", choices="restore, reissue"
                ).at("remedy")
            ]
        ) from None


def _never_allocated(case: Case) -> bool:
    number = case.claimed_number
    if len(number) != 20:
        return False
    year, province, channel, serial = int(number[:2]), number[2:4], int(number[4]), int(number[5:])
    return NumberSegment.objects.filter(
        merchant_id=case.merchant_id,
        year=year,
        province=province,
        channel=channel,
        first_serial__lte=serial,
        last_serial__gte=serial,
        next_serial__lte=serial,
    ).exists()


def _refuse_a_second_remedy(case: Case) -> None:
    """A reopened case that restored or re-issued its invoice already: that invoice stands."""
    if not case.acceptance_no:
        return
    done = Invoice.objects.filter(
        merchant_id=case.merchant_id,
        origin__in=(Origin.RESTORED, Origin.REISSUED),
        origin_ref=case.acceptance_no,
    )
    number = done.values_list("number", flat=True).first()
    if number is not None:
        raise RemedyAlreadyAppliedError(REMEDY_APPLIED, number=number)


def _restore_checks(user: User) -> Any:
    held = claim_check(user)

    def check(locked: Case) -> None:
        held(locked)
        number = locked.claimed_number
        _refuse_a_second_remedy(locked)
        if Invoice.objects.filter(merchant_id=locked.merchant_id, number=number).exists():
            raise InvoiceAlreadyPresentError(number=number)
        if SupersededNumber.objects.filter(merchant_id=locked.merchant_id, number=number).exists():
            raise NumberSupersededError(number=number)
        if _never_allocated(locked):
            raise NumberNeverAllocatedError(number=number)

    return check


def _reissue_checks(user: User) -> Any:
    held = claim_check(user)

    def check(locked: Case) -> None:
        held(locked)
        number = locked.claimed_number
        _refuse_a_second_remedy(locked)
        if Invoice.objects.filter(merchant_id=locked.merchant_id, number=number).exists():
            raise InvoiceAlreadyPresentError(number=number)
        if LogEntry.objects.filter(merchant_id=locked.merchant_id, invoice_number=number).exists():
            raise OriginalEstablishedError(number=number)
        # Not issued here, ever: the claim is wrong, and the re-issue could even be handed that number.
        if _never_allocated(locked):
            raise NumberNeverAllocatedError(number=number)

    return check


def _issued_at(case: Case, issued_on: Any) -> datetime:
    """When the original was issued: its first ledger entry's time, else that day's start in Beijing."""
    entry = (
        LogEntry.objects.filter(merchant_id=case.merchant_id, invoice_number=case.claimed_number)
        .order_by("seq")
        .first()
    )
    if entry is not None:
        return entry.created_at
    return datetime.combine(issued_on, time.min, tzinfo=BEIJING)


def resolve_case(
    *, user: User, case: Case, version: int | None, remedy: object, invoice: object
) -> tuple[Case, Invoice, dict[str, Any] | None]:
    """Restore or re-issue; returns the case, the invoice and its receipt."""
    require(user, Action.REVIEW_CASES)
    chosen = _remedy(remedy)
    today = timezone.localdate()
    if chosen is Remedy.RESTORE:
        request = parse_restore_request(invoice, today=today)
        draft, issued_on = request.draft, request.issued_on
    else:
        draft, issued_on = parse_invoice_request(invoice, on=today), today
    merchant = case.merchant
    sealed, salt = _seal_buyer(draft)
    buyer_data = _buyer_data(merchant, draft.buyer, salt)
    made: dict[str, Any] = {}

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        unit: UnitOfWork = made["unit"]
        made["invoice"], made["pending"] = _write_invoice(
            unit,
            user=user,
            case=locked,
            draft=draft,
            remedy=chosen,
            issued_on=issued_on,
            sealed=sealed,
            buyer_data=buyer_data,
            now=now,
        )
        locked.remedy = chosen
        locked.resolved_invoice = made["invoice"]
        locked.resolved_at = now
        locked.reopen_deadline = now + timedelta(days=settings.FAPIAO_CASE_REOPEN_DAYS)

    checks = _restore_checks(user) if chosen is Remedy.RESTORE else _reissue_checks(user)

    def run(unit: UnitOfWork) -> Case:
        made["unit"] = unit
        step = transition(
            case,
            CaseAction.RESOLVE,
            actor=user,
            version=version,
            check=checks,
            apply=apply,
            details={"remedy": chosen.value},
        )
        notify.notify(
            step.case,
            "resolve",
            notify.merchant_people(step.case),
            actor=user,
            invoice=made["invoice"].number,
        )
        return step.case

    resolved = write(run)
    pending: PendingEntry | None = made["pending"]
    return resolved, made["invoice"], pending.receipt if pending else None


def _write_invoice(
    unit: UnitOfWork,
    *,
    user: User,
    case: Case,
    draft: InvoiceDraft,
    remedy: Remedy,
    issued_on: Any,
    sealed: str | None,
    buyer_data: dict[str, Any],
    now: datetime,
) -> tuple[Invoice, PendingEntry | None]:
    merchant = case.merchant
    restoring = remedy is Remedy.RESTORE
    number = case.claimed_number if restoring else allocate_number(merchant=merchant, on=issued_on)
    invoice, lines = _create_invoice(
        merchant=merchant,
        user=user,
        draft_lines=draft.lines,
        base={
            "number": number,
            "kind": draft.kind,
            "colour": Colour.BLUE,
            "direction": Direction.OUT,
            "state": InvoiceState.NORMAL,
            "origin": Origin.RESTORED if restoring else Origin.REISSUED,
            "origin_ref": case.acceptance_no,
            "issued_on": issued_on,
            "issued_at": _issued_at(case, issued_on) if restoring else now,
            "seller_name": merchant.name,
            "seller_tax_id": merchant.uscc,
            "buyer_sealed": sealed or "",
            "remark": draft.remark,
        },
        buyer_data=buyer_data,
    )
    pending = None
    if settings.FAPIAO_LEDGER_ENABLED:
        pending = append_entry(
            unit,
            merchant=merchant,
            kind=EntryKind.RESTORE if restoring else EntryKind.REISSUE,
            invoice=document_for(invoice, draft.lines, buyer=draft.buyer),
            ref=str(case.uid),
            at=now,
        )
        Invoice.objects.filter(pk=invoice.pk).update(ledger_seq=pending.seq)
        invoice.ledger_seq = pending.seq
    if not restoring:
        SupersededNumber.objects.create(
            merchant=merchant, number=case.claimed_number, case=case, replacement=invoice, created_at=now
        )
    record(
        actor=user,
        action=f"invoice.{remedy.value}",
        target=invoice,
        merchant=merchant,
        after=audit_snapshot(invoice, lines=len(lines)),
        note=f"case {case.acceptance_no}",
    )
    return invoice, pending
