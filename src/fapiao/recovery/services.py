"""Recovery case writes (DESIGN.md §7): open, edit, submit, talk, ask for more, withdraw, confirm, reopen.

The reviewer's side (claim, assign, approve, reject) is :mod:`fapiao.recovery.review`, evidence
is :mod:`fapiao.recovery.evidence`, and the remedies (restore, re-issue) are
:mod:`fapiao.recovery.remedies`.  Each function is one transaction; state changes go through
:func:`fapiao.recovery.transitions.transition`.  The case passed in comes from a scoped
selector, so a user never reaches another merchant's case.  Each first asks whether the role may
take the action at all (403 whatever the state), then the state machine whether it may now (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.case_claim import Claim, parse_claim
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.errors import ConflictError, InvalidValueError, ValidationFailed, _
from fapiao.core.fieldcrypt import FieldContext
from fapiao.core.identifiers import holds_resident_id
from fapiao.core.masking import mask
from fapiao.platform import idempotency
from fapiao.platform.datakeys import keyring
from fapiao.recovery import notify
from fapiao.recovery.acceptance import next_acceptance_no
from fapiao.recovery.models import Case, CaseMessage
from fapiao.recovery.transitions import add_event, snapshot, transition

MESSAGE_MAX = 4000
REQUESTED_ITEMS_MAX = 20
EDITABLE_STATES = frozenset({CaseState.DRAFT, CaseState.REJECTED})
MESSAGING_CLOSED = frozenset({CaseState.DRAFT, CaseState.CONFIRMED, CaseState.WITHDRAWN})


class CaseNotEditableError(ConflictError):
    """Only a draft or a rejected case can be edited; this one is "{state}"."""

    code = "case_not_editable"


class CaseNotOpenForMessagesError(ConflictError):
    """Messages can't be added to a case that is "{state}"."""

    code = "case_not_open_for_messages"


def _tax_id_context(case: Case) -> FieldContext:
    return FieldContext(
        merchant_id=case.merchant_id, table="recovery_case", field="claimed_buyer_tax_id", row=str(case.uid)
    )


def _apply_claim(case: Case, claim: Claim) -> None:
    case.claimed_number = claim.number
    case.claimed_issued_on = claim.issued_on
    case.claimed_kind = claim.kind.value if claim.kind else ""
    case.claimed_buyer_name = claim.buyer_name
    case.claimed_total_with_tax = claim.total_with_tax
    case.claimed_total_amount = claim.total_amount
    case.claimed_total_tax = claim.total_tax
    case.narrative = claim.narrative
    tax_id = claim.buyer_tax_id
    case.claimed_buyer_tax_id = case.claimed_buyer_tax_id_masked = ""
    case.claimed_buyer_tax_id_enc = None
    if tax_id is not None and holds_resident_id(tax_id.kind):
        case.claimed_buyer_tax_id_enc = keyring().encrypt(tax_id.value, _tax_id_context(case))
        case.claimed_buyer_tax_id_masked = mask(tax_id.value)
    elif tax_id is not None:
        case.claimed_buyer_tax_id = tax_id.value


def claimed_buyer_tax_id(case: Case) -> str:
    """The claim's buyer tax ID in full (an individual's ID decrypted; only for who may see the case)."""
    if case.claimed_buyer_tax_id_enc:
        return keyring().decrypt(bytes(case.claimed_buyer_tax_id_enc), _tax_id_context(case)).decode()
    return case.claimed_buyer_tax_id


def open_case(*, user: User, payload: object, idempotency_key: str | None = None) -> Case:
    """A draft case for the user's merchant, with its claim checked field by field.

    With an ``Idempotency-Key`` a retried request returns the draft the first one opened
    (the same key with a different claim is refused), so a clerk's double submit or a client's
    retry after a lost answer never leaves two drafts.
    """
    require(user, Action.OPEN_CASES)
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    claim = parse_claim(payload, today=timezone.localdate())
    now = timezone.now()
    with transaction.atomic():
        record_id = None
        if key is not None:
            claimed = idempotency.claim(
                user=user, key=key, fingerprint=idempotency.request_fingerprint("case:open", payload)
            )
            if isinstance(claimed, idempotency.Replay):
                return Case.objects.get(merchant=user.merchant, uid=claimed.body["case"])
            record_id = claimed
        case = Case(merchant=user.merchant, opened_by=user, opened_at=now, state_changed_at=now)
        _apply_claim(case, claim)
        case.save()
        add_event(case, actor=user, action="open", after=CaseState.DRAFT.value, at=now)
        record(actor=user, action="case.open", target=case, merchant=case.merchant, after=snapshot(case))
        if record_id is not None:
            idempotency.remember(record_id=record_id, status=201, body={"case": str(case.uid)})
    return case


def update_claim(*, user: User, case: Case, payload: object, version: int | None) -> Case:
    """Edit the claim of a draft or a rejected case (before resubmitting it)."""
    require(user, Action.OPEN_CASES)
    claim = parse_claim(payload, today=timezone.localdate())
    with transaction.atomic():
        from fapiao.recovery.transitions import lock

        locked = lock(case, version)
        if locked.state not in EDITABLE_STATES:
            raise CaseNotEditableError(state=locked.state)
        before = snapshot(locked)
        _apply_claim(locked, claim)
        locked.version += 1
        locked.save()
        add_event(locked, actor=user, action="edit", before=locked.state, after=locked.state)
        record(
            actor=user,
            action="case.edit",
            target=locked,
            merchant=locked.merchant,
            before=before,
            after=snapshot(locked),
        )
    return locked


def submit_case(*, user: User, case: Case, version: int | None) -> Case:
    """Submit a draft: it gets its 受理编号 and goes to support and the reviewers."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.acceptance_no = next_acceptance_no(now)
        locked.submitted_by = user
        locked.submitted_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.SUBMIT, actor=user, version=version, apply=apply)
        notify.notify(step.case, "submit", notify.staff_people(step.case), actor=user)
    return step.case


def resubmit_case(*, user: User, case: Case, version: int | None) -> Case:
    """Submit a rejected case again after editing it; earlier approvals and claims no longer count."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.submitted_by = user
        locked.submitted_at = now
        locked.first_approver = locked.second_approver = locked.assignee = None
        locked.claim_expires_at = None
        locked.decision_reason = ""

    with transaction.atomic():
        step = transition(case, CaseAction.RESUBMIT, actor=user, version=version, apply=apply)
        notify.notify(step.case, "resubmit", notify.staff_people(step.case), actor=user)
    return step.case


def withdraw_case(*, user: User, case: Case, version: int | None, reason: str = "") -> Case:
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.closed_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.WITHDRAW, actor=user, version=version, reason=reason, apply=apply)
        if step.before != CaseState.DRAFT:
            notify.notify(step.case, "withdraw", notify.staff_people(step.case), actor=user)
    return step.case


def confirm_case(*, user: User, case: Case, version: int | None) -> Case:
    """The merchant checked the restored or re-issued invoice: the case is closed."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.closed_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.CONFIRM, actor=user, version=version, apply=apply)
        notify.notify(step.case, "confirm", notify.staff_people(step.case), actor=user)
    return step.case


def reopen_case(*, user: User, case: Case, version: int | None, reason: str) -> Case:
    """The result is wrong: back to review, within the reopen window, with the reason."""
    require(user, Action.OPEN_CASES)
    reason = _required_text(reason, "reason")

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        # A new decision follows: the earlier approvals must not count towards it.
        locked.first_approver = locked.second_approver = None
        locked.decision_reason = ""

    with transaction.atomic():
        step = transition(case, CaseAction.REOPEN, actor=user, version=version, reason=reason, apply=apply)
        notify.notify(step.case, "reopen", notify.staff_people(step.case), actor=user)
    return step.case


def _required_text(value: object, field: str, max_len: int = 2000) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationFailed([InvalidValueError(_("This field is required."), code="required").at(field)])
    if len(text) > max_len:
        raise ValidationFailed(
            [InvalidValueError(_("Use at most {max} characters."), code="too_long", max=max_len).at(field)]
        )
    return text


def _items(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed([InvalidValueError(_("Send a list of texts."), code="not_a_list").at("items")])
    items = [item.strip() for item in value if item.strip()]
    if len(items) > REQUESTED_ITEMS_MAX or any(len(item) > 200 for item in items):
        raise ValidationFailed(
            [
                InvalidValueError(_("Use at most {max} items."), code="too_many", max=REQUESTED_ITEMS_MAX).at(
                    "items"
                )
            ]
        )
    return items


def _message(
    case: Case, user: User, body: str, *, items: list[str], on_behalf: bool, now: datetime
) -> CaseMessage:
    merchant_side = user.role in (Role.CLERK, Role.MERCHANT_ADMIN)
    return CaseMessage.objects.create(
        merchant_id=case.merchant_id,
        case=case,
        author=user,
        author_role=user.role,
        body=body,
        requested_items=items,
        on_behalf=on_behalf,
        created_at=now,
        read_by_merchant_at=now if merchant_side else None,
        read_by_staff_at=None if merchant_side else now,
    )


def post_message(*, user: User, case: Case, body: object, on_behalf: bool = False) -> CaseMessage:
    """A message on the case.  A merchant's message on a case waiting for information is the answer:
    the case goes back to review.  ``on_behalf`` (support only) marks what a merchant said by phone
    or on paper; whoever writes one may not decide the case."""
    require(user, Action.MESSAGE_CASES)
    text = _required_text(body, "body", MESSAGE_MAX)
    merchant_side = user.role in (Role.CLERK, Role.MERCHANT_ADMIN)
    on_behalf = bool(on_behalf) and user.role == Role.SUPPORT
    with transaction.atomic():
        from fapiao.recovery.transitions import lock

        locked = lock(case, None)
        if locked.state in MESSAGING_CLOSED:
            raise CaseNotOpenForMessagesError(state=locked.state)
        now = timezone.now()
        message = _message(locked, user, text, items=[], on_behalf=on_behalf, now=now)
        add_event(locked, actor=user, action="message", before=locked.state, after=locked.state, at=now)
        record(
            actor=user,
            action="case.message",
            target=locked,
            merchant=locked.merchant,
            note=f"message {message.pk}",
        )
        if merchant_side and locked.state == CaseState.NEEDS_INFO:
            answer(user=user, case=locked, note=_("Answered with a message."))
        elif merchant_side:
            notify.notify(locked, "message", notify.staff_people(locked, role=Role.SUPPORT), actor=user)
        else:
            notify.notify(locked, "message", notify.merchant_people(locked), actor=user)
    return message


def answer(*, user: User, case: Case, note: str) -> Case:
    """needs_info → in_review: the merchant answered (inside the caller's transaction).

    ``note`` is an English msgid, stored in the site's language: the timeline is a record.
    """
    with translation.override(settings.LANGUAGE_CODE):
        reason = gettext(note)
    step = transition(case, CaseAction.ANSWER, actor=user, version=None, reason=reason)
    people = notify.staff_people(step.case) + notify.askers(step.case)
    notify.notify(step.case, "answer", people, actor=user)
    return step.case


def request_info(*, user: User, case: Case, version: int | None, body: object, items: object = None) -> Case:
    """A 补正通知: ask the merchant for more, listing exactly what is missing."""
    require(user, Action.MESSAGE_CASES)
    text = _required_text(body, "body", MESSAGE_MAX)
    wanted = _items(items)
    with transaction.atomic():
        step = transition(case, CaseAction.REQUEST_INFO, actor=user, version=version, reason=text)
        _message(step.case, user, text, items=wanted, on_behalf=False, now=step.now)
        notify.notify(step.case, "request_info", notify.merchant_people(step.case), actor=user)
    return step.case


def mark_read(*, user: User, case: Case) -> int:
    """Mark the other side's messages read for ``user``; returns how many."""
    now = timezone.now()
    messages = CaseMessage.objects.filter(case=case)
    if user.role in (Role.CLERK, Role.MERCHANT_ADMIN):
        return messages.filter(read_by_merchant_at__isnull=True).update(read_by_merchant_at=now)
    if user.role in (Role.SUPPORT, Role.REVIEWER):
        return messages.filter(read_by_staff_at__isnull=True).update(read_by_staff_at=now)
    return 0


def case_fields(case: Case) -> dict[str, Any]:
    """The claim as the edit form shows it (full buyer tax ID: only for users who may see the case)."""
    return {
        "number": case.claimed_number,
        "issued_on": case.claimed_issued_on.isoformat(),
        "kind": case.claimed_kind or None,
        "buyer": {"name": case.claimed_buyer_name, "tax_id": claimed_buyer_tax_id(case) or None},
        "total_with_tax": case.claimed_total_with_tax,
        "narrative": case.narrative,
    }
