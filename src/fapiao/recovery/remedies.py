"""The remedies of an approved case (docs/spec/recovery.md): restore, re-issue (补开) and repair (修复).

**Restore** brings the invoice back under its original number, with origin ``restored`` and a
``restore`` ledger entry carrying the case id, in the same unit of work, so the merchant gets a
fresh receipt.  **Re-issue** is for when the original cannot be established: a new invoice,
numbered from the merchant's segments, origin ``reissued``, a ``reissue`` entry; the claimed
number is recorded as superseded, so if the original ever surfaces it is flagged for red-letter.

**Repair** rewrites a row that differs from its ledger entry from that entry
(:mod:`fapiao.recovery.repair`).  A restore or repair clears the merchant's flag on the number
(:mod:`fapiao.invoices.findings`).

**Replay** (从回执重放) is offered when a receipt of the case proves an entry the log no longer has
(a restore lost it): the entry goes back with its original index and bytes and its invoice row is
rebuilt, by ``fapiao ledger replay``'s own code (:mod:`fapiao.recovery.case_replay`).

What either writes is :func:`fapiao.recovery.remedy_plan.plan_remedy`'s: the merchant's own
ledger entry, or the claim as reviewed — the reviewer chooses the remedy and may add a note,
nothing else.  A restored number must be the merchant's (:mod:`fapiao.invoices.outgoing`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import NumberSegment, User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.choices import Direction, EntryKind, Origin
from fapiao.core.errors import ConflictError, FapiaoError, InvalidValueError, ValidationFailed, _
from fapiao.invoices import findings
from fapiao.invoices.models import Invoice
from fapiao.invoices.numbering import allocate_number
from fapiao.invoices.outgoing import check_not_elsewhere, check_restorable, registered_holder
from fapiao.invoices.presenters import audit_snapshot
from fapiao.invoices.rows import NewInvoice, create_invoice_row, seal_buyer
from fapiao.ledger.models import LogEntry
from fapiao.platform.uow import PendingEntry, UnitOfWork, write
from fapiao.recovery import case_replay, notify, repair
from fapiao.recovery.choices import Remedy
from fapiao.recovery.models import Case, SupersededNumber
from fapiao.recovery.remedy_plan import Writing, ledger_original, plan_remedy
from fapiao.recovery.replay import apply_replay
from fapiao.recovery.review import claim_check
from fapiao.recovery.transitions import transition

BEIJING = ZoneInfo("Asia/Shanghai")
NOTE_MAX = 2000


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


class NumberNeverIssuedError(ConflictError):
    """No segment ever handed out number {number}: nothing to restore. Re-issue it, or reject the case."""

    code = "number_never_issued"


class OriginalEstablishedError(ConflictError):
    """The ledger holds invoice {number}: restore it rather than re-issuing."""

    code = "original_established"


class OriginalMissingError(ConflictError):
    """Red invoice {number} reverses {original}, which is not in the system: restore {original} first."""

    code = "original_missing"


def parse_remedy(value: object) -> Remedy:
    try:
        return Remedy(value) if isinstance(value, str) else Remedy("")
    except ValueError:
        raise ValidationFailed(
            [
                InvalidValueError(
                    _("Choose one of: {choices}."),
                    code="invalid_choice",
                    choices="restore, reissue, repair, replay",
                ).at("remedy")
            ]
        ) from None


def parse_note(value: object) -> str:
    """The reviewer's note on the remedy (the timeline and the audit trail keep it)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed([InvalidValueError(_("Enter text here."), code="not_a_string").at("note")])
    text = value.strip()
    if len(text) > NOTE_MAX:
        raise ValidationFailed(
            [InvalidValueError(_("Use at most {max} characters."), code="too_long", max=NOTE_MAX).at("note")]
        )
    return text


def never_issued(case: Case) -> bool:
    """Was the claimed number never handed out by any number segment (the automatic check a
    reviewer sees before deciding)?

    True for a well-formed 20-digit number that no invoice, ledger entry or register row knows,
    and that either lies in one of this merchant's segments at or beyond the next serial it will
    hand out, or lies in no segment at all.  A number in another merchant's segment is not
    this merchant's to claim (refused as such); a legacy 代码-号码 predates segments.
    """
    number = case.claimed_number
    if len(number) != 20 or not number.isascii() or not number.isdigit():
        return False
    merchant_id = case.merchant_id
    if (
        Invoice.objects.filter(merchant_id=merchant_id, number=number).exists()
        or LogEntry.objects.filter(merchant_id=merchant_id, invoice_number=number).exists()
        or registered_holder(number) is not None
    ):
        return False
    year, province, channel, serial = int(number[:2]), number[2:4], int(number[4]), int(number[5:])
    covering = NumberSegment.objects.filter(
        year=year, province=province, channel=channel, first_serial__lte=serial, last_serial__gte=serial
    )
    segment = covering.first()
    if segment is None:
        return True
    return segment.merchant_id == merchant_id and serial >= segment.next_serial


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


def check_number(case: Case, remedy: Remedy) -> None:
    """What the claimed number rules out, whatever the content: raises the first refusal."""
    number = case.claimed_number
    _refuse_a_second_remedy(case)
    if remedy is Remedy.REPAIR:
        repair.check_repair(case)
        return
    if Invoice.objects.filter(merchant_id=case.merchant_id, number=number).exists():
        raise InvoiceAlreadyPresentError(number=number)
    if remedy is Remedy.REPLAY:
        case_replay.plan_case_replay(case)
        return
    if remedy in (Remedy.RESTORE, Remedy.REISSUE) and case_replay.offered(case):
        # Writing the number anew would put another entry where the lost one belongs (or invoice the
        # sale twice): the receipt brings back the original.
        raise case_replay.ReplayInsteadError(number=number)
    if remedy is Remedy.RESTORE:
        if SupersededNumber.objects.filter(merchant_id=case.merchant_id, number=number).exists():
            raise NumberSupersededError(number=number)
        # Never handed out: nothing to restore (a re-issue under a new number is the way on).
        if never_issued(case):
            raise NumberNeverIssuedError(number=number)
        original = ledger_original(case)
        if original is None or original[1].get("direction") != Direction.IN:  # 进项: another seller's
            check_restorable(case.merchant, number)
    else:
        if LogEntry.objects.filter(merchant_id=case.merchant_id, invoice_number=number).exists():
            raise OriginalEstablishedError(number=number)
        check_not_elsewhere(case.merchant, number)


def preview(case: Case, remedy: Remedy) -> tuple[Writing | None, FapiaoError | None]:
    """What ``remedy`` would write now, or why it cannot (for the reviewer's page)."""
    try:
        check_number(case, remedy)
        if remedy is Remedy.REPAIR:
            return repair.plan_repair(case), None
        if remedy is Remedy.REPLAY:
            return case_replay.plan_case_replay(case)[1], None
        return plan_remedy(case, remedy, today=timezone.localdate()), None
    except FapiaoError as refusal:
        return None, refusal


def _checks(user: User, remedy: Remedy) -> Any:
    held = claim_check(user)

    def check(locked: Case) -> None:
        held(locked)
        check_number(locked, remedy)

    return check


def resolve_case(
    *, user: User, case: Case, version: int | None, remedy: object, note: object = None
) -> tuple[Case, Invoice, dict[str, Any] | None]:
    """Restore, re-issue, repair or replay; returns the case, the invoice and its (new) receipt."""
    require(user, Action.REVIEW_CASES)
    chosen = parse_remedy(remedy)
    text = parse_note(note)
    made: dict[str, Any] = {}
    details = {"remedy": chosen.value}

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        if chosen is Remedy.REPAIR:
            writing = repair.plan_repair(locked)
            made["invoice"] = repair.write_repair(user=user, case=locked, writing=writing, now=now)
            made["pending"] = None  # the row's own entry and receipt stand
        elif chosen is Remedy.REPLAY:
            prepared, writing = case_replay.plan_case_replay(locked)
            apply_replay(made["unit"], prepared, actor=user, case=locked)
            made["invoice"] = Invoice.objects.get(merchant_id=locked.merchant_id, number=writing.number)
            made["pending"] = None  # the entry comes back with its original bytes: the kept receipt stands
            findings.clear(
                merchant_id=locked.merchant_id,
                number=made["invoice"].number,
                how="replay",
                ref=locked.acceptance_no,
            )
        else:
            writing = plan_remedy(locked, chosen, today=timezone.localdate(now))
            unit = made["unit"]
            made["invoice"], made["pending"] = _write(unit, user=user, case=locked, writing=writing, now=now)
        details["source"] = writing.source  # the timeline event is written after apply
        locked.remedy = chosen
        locked.resolved_invoice = made["invoice"]
        locked.resolved_at = now
        locked.reopen_deadline = now + timedelta(days=settings.FAPIAO_CASE_REOPEN_DAYS)

    def run(unit: UnitOfWork) -> Case:
        made["unit"] = unit
        step = transition(
            case,
            CaseAction.RESOLVE,
            actor=user,
            version=version,
            reason=text,
            check=_checks(user, chosen),
            apply=apply,
            details=details,
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


def _issued_at(case: Case, issued_on: date) -> datetime:
    """When the original was issued: its first ledger entry's time, else that day's start in Beijing."""
    entry = (
        LogEntry.objects.filter(merchant_id=case.merchant_id, invoice_number=case.claimed_number)
        .order_by("seq")
        .first()
    )
    if entry is not None:
        return entry.created_at
    return datetime.combine(issued_on, time.min, tzinfo=BEIJING)


def _write(
    unit: UnitOfWork, *, user: User, case: Case, writing: Writing, now: datetime
) -> tuple[Invoice, PendingEntry | None]:
    merchant = case.merchant
    restoring = writing.remedy is Remedy.RESTORE
    claimed_never_issued = not restoring and never_issued(case)
    original = None
    if writing.original_number:
        original = Invoice.objects.filter(merchant=merchant, number=writing.original_number).first()
        if original is None:
            raise OriginalMissingError(number=writing.number, original=writing.original_number)
    seller_name, seller_tax_id = writing.seller or (merchant.name, merchant.uscc)
    new = NewInvoice(
        number=writing.number or allocate_number(merchant=merchant, on=writing.issued_on),
        kind=writing.kind,
        colour=writing.colour,
        direction=writing.direction,
        origin=Origin.RESTORED if restoring else Origin.REISSUED,
        issued_on=writing.issued_on,
        issued_at=_issued_at(case, writing.issued_on) if restoring else now,
        seller_name=seller_name,
        seller_tax_id=seller_tax_id,
        lines=writing.lines,
        remark=writing.remark,
        origin_ref=case.acceptance_no,
        original=original,
    )
    buyer = seal_buyer(merchant, writing.buyer, sealed=writing.sealed)
    made = create_invoice_row(
        unit,
        merchant=merchant,
        user=user,
        new=new,
        buyer=buyer,
        entry=EntryKind.RESTORE if restoring else EntryKind.REISSUE,
        at=now,
        ref=str(case.uid),
    )
    # The claimed number is recorded as replaced — or, when no segment ever handed it out, as never
    # issued.  A never-issued number that is the segment's very next one is the re-issue's own
    # number now: it is issued, so nothing is recorded.
    if not restoring and made.invoice.number != case.claimed_number:
        SupersededNumber.objects.create(
            merchant=merchant,
            number=case.claimed_number,
            case=case,
            replacement=made.invoice,
            created_at=now,
            never_issued=claimed_never_issued,
        )
    if restoring:
        findings.clear(
            merchant_id=merchant.pk, number=made.invoice.number, how="restore", ref=case.acceptance_no
        )
    record(
        actor=user,
        action=f"invoice.{writing.remedy.value}",
        target=made.invoice,
        merchant=merchant,
        after={**audit_snapshot(made.invoice, lines=len(made.lines)), "source": writing.source},
        note=f"case {case.acceptance_no}",
    )
    return made.invoice, made.pending
