"""Evidence that reaches a case outside the upload form: an e-mail (``.eml``) or papers in the post.

Support registers both on the merchant's behalf.  An imported e-mail is kept whole as evidence of
type ``email`` and each attachment becomes evidence of its own, all with channel ``email``; the
sender is matched to a user of the case's merchant by address (or support names who sent it), so
the case says who spoke.  Mailed-in scans get channel ``mail_in`` and the day they arrived.
Either import is all or nothing for the mail or the files themselves: an attachment that can't
be evidence (wrong type, already on the case) is left out and listed, never half-stored.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, RoleForbiddenError, require
from fapiao.audit.services import display_name
from fapiao.core.case_claim import parse_date
from fapiao.core.cases import CaseState
from fapiao.core.errors import (
    FapiaoError,
    FieldError,
    InvalidValueError,
    PermissionDeniedError,
    ValidationFailed,
    _,
)
from fapiao.core.evidence import EvidenceType
from fapiao.core.text import free_text
from fapiao.formats.eml import MailMessage
from fapiao.recovery import notify
from fapiao.recovery.choices import Channel
from fapiao.recovery.conversation import MESSAGE_MAX, answer, post_message
from fapiao.recovery.evidence import add_evidence
from fapiao.recovery.mail_preview import guess_type, match_sender, read_mail, refuse_unsafe
from fapiao.recovery.models import Case, CaseMessage, Evidence
from fapiao.recovery.transitions import Change, transition

NOTE_MAX = 500


class SenderUnknownError(InvalidValueError):
    """No user of this merchant has the address {address}; choose who sent the e-mail."""

    code = "sender_unknown"


class SenderNotMerchantUserError(InvalidValueError):
    """Choose a user of the case's merchant."""

    code = "sender_not_merchant_user"


def _staff_only(user: User) -> None:
    require(user, Action.ADD_EVIDENCE)
    if user.is_merchant_user:
        raise RoleForbiddenError(_("Your role does not allow this action."))


@dataclass
class EmailImport:
    """What an import stored and what it left out (file name, the refusal)."""

    mail: Evidence
    sender: User
    message: CaseMessage | None
    added: list[Evidence] = field(default_factory=list)
    left_out: list[tuple[str, list[FieldError]]] = field(default_factory=list)


def problems_of(refusal: FapiaoError, path: str | None = None) -> list[FieldError]:
    """A refusal as field problems (a validation failure's own, else its message), moved to ``path``."""
    if isinstance(refusal, ValidationFailed) and refusal.errors:
        return [
            FieldError(e.field if path is None else path, e.code, e.message, e.params) for e in refusal.errors
        ]
    return [FieldError(path or "", refusal.code, refusal.message, refusal.params)]


def resolve_sender(case: Case, mail: MailMessage, chosen: User | None) -> User:
    if chosen is not None:
        if chosen.merchant_id != case.merchant_id or not chosen.is_merchant_user:
            raise ValidationFailed([SenderNotMerchantUserError().at("sender")])
        return chosen
    matched = match_sender(case, mail.sender_address)
    if matched is None:
        raise ValidationFailed([SenderUnknownError(address=mail.sender_address or "—").at("sender")])
    return matched


def _mail_text(mail: MailMessage) -> str:
    text = "\n\n".join(part for part in (mail.subject, mail.body_text) if part.strip())
    return text[:MESSAGE_MAX]


def import_email(
    *,
    user: User,
    case: Case,
    filename: str,
    data: bytes,
    sender: User | None = None,
    types: Mapping[int, str] | None = None,
    leave_out: Collection[int] = (),
    record_text: bool = True,
) -> EmailImport:
    """Import one ``.eml``: the mail itself, its text as the merchant's message, its attachments.

    ``types`` gives the evidence type of attachment *i* (else it is guessed); ``leave_out``
    lists attachments support decided are not evidence.
    """
    _staff_only(user)
    mail, problems = read_mail(data)
    if mail is None:  # each reason the mail can't be read, translated where it is shown
        raise ValidationFailed([FieldError("file", p.code, p.message, p.params) for p in problems])
    refuse_unsafe(problems)
    who = resolve_sender(case, mail, sender)
    types = types or {}
    with transaction.atomic():
        message = None
        if record_text and _mail_text(mail):
            message = post_message(user=user, case=case, body=_mail_text(mail), on_behalf=True)
        stored = add_evidence(
            user=user,
            case=case,
            evidence_type=EvidenceType.EMAIL,
            filename=filename,
            data=data,
            channel=Channel.EMAIL,
            message=message,
            quiet=True,
        )
        result = EmailImport(mail=stored, sender=who, message=message)
        for index, attachment in enumerate(mail.attachments):
            if index in leave_out:
                continue
            kind = types.get(index) or guess_type(attachment.filename, attachment.data)
            try:
                result.added.append(
                    add_evidence(
                        user=user,
                        case=case,
                        evidence_type=kind,
                        filename=attachment.filename,
                        data=attachment.data,
                        channel=Channel.EMAIL,
                        message=message,
                        quiet=True,
                    )
                )
            except PermissionDeniedError:
                raise
            except FapiaoError as refusal:
                result.left_out.append((attachment.filename, problems_of(refusal)))
        details = {
            "address": mail.sender_address,
            "name_in_mail": mail.sender_name,
            "sender": who.username,
            "sender_name": display_name(who),
            "subject": mail.subject[:200],
            "sent_at": mail.sent_at.isoformat() if mail.sent_at else None,
            "message_id": mail.message_id[:200],
            "file": stored.filename,
            "files": [evidence.filename for evidence in result.added],
            "left_out": [{"file": name, "code": why[0].code} for name, why in result.left_out],
            "problems": [problem.code for problem in problems],
        }
        _record(user, case, Change.EMAIL, details)
    return result


def register_mail_in(
    *,
    user: User,
    case: Case,
    files: Sequence[tuple[str, bytes]],
    evidence_type: object,
    received_on: object,
    note: object = "",
) -> list[Evidence]:
    """Scans of papers the merchant posted: every file or none, marked mailed in, with the day they came."""
    _staff_only(user)
    errors: list[FieldError] = []
    if not files:
        errors.append(InvalidValueError(_("Choose a file to upload."), code="required").at("file"))
    arrived: date | None = None
    try:
        arrived = parse_date(received_on, latest=timezone.localdate())
    except InvalidValueError as problem:
        errors.append(problem.at("received_on"))
    remark = ""
    try:
        remark = free_text(note, "note", max_len=NOTE_MAX)
    except ValidationFailed as failed:
        errors.extend(failed.errors)
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        added: list[Evidence] = []
        for index, (filename, data) in enumerate(files):
            try:
                added.append(
                    add_evidence(
                        user=user,
                        case=case,
                        evidence_type=evidence_type,
                        filename=filename,
                        data=data,
                        channel=Channel.MAIL_IN,
                        quiet=True,
                    )
                )
            except PermissionDeniedError:
                raise
            except FapiaoError as refusal:
                errors += problems_of(refusal, f"files.{index}")
        if errors:
            raise ValidationFailed(errors)
        details: dict[str, Any] = {
            "received_on": arrived.isoformat() if arrived else None,
            "note": remark,
            "files": [evidence.filename for evidence in added],
        }
        _record(user, case, Change.MAIL_IN, details)
    return added


def _record(user: User, case: Case, action: Change, details: dict[str, Any]) -> None:
    """The import on the case's timeline and in the audit trail (inside the caller's transaction).

    One delivery, one notification.  When the case was waiting for the merchant, what arrived by
    e-mail or post is their answer: support records it and the case goes back to review.
    """
    locked = transition(case, action, actor=user, version=None, details=details).case
    if locked.state == CaseState.NEEDS_INFO:
        note = _("Answered by e-mail.") if action is Change.EMAIL else _("Answered by post.")
        answer(user=user, case=locked, note=note)
    else:
        people = notify.merchant_people(locked) + notify.staff_people(locked)
        notify.notify(locked, "evidence", people, actor=user)
