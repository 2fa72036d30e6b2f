"""Evidence on a case: checked by content, stored by SHA-256, never deleted, checked automatically.

A file is accepted only when its bytes are what its declared type allows (a PNG is not a system
receipt, whatever its name says), it is not empty, and it fits the per-file and per-case limits.
The bytes go to the content-addressed store before the row is written: a failed transaction
leaves at most an unreferenced blob, never a row without its file.  A system receipt is verified
(signature, and inclusion against the current log — a valid receipt the log no longer proves
opens an integrity incident); an e-invoice XML is compared with the claim field by field.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.cases import CaseState
from fapiao.core.errors import ConflictError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.evidence import EvidenceTooLargeError, EvidenceType, EvidenceTypeMismatchError
from fapiao.formats.sniff import check_evidence
from fapiao.platform.uploads import zip_limits
from fapiao.recovery import notify
from fapiao.recovery.checks import run_check
from fapiao.recovery.choices import Channel
from fapiao.recovery.conversation import answer, post_message
from fapiao.recovery.labels import evidence_type_label
from fapiao.recovery.models import Case, CaseMessage, Evidence
from fapiao.recovery.storage import store_blob
from fapiao.recovery.transitions import Change, transition

MB = 1024 * 1024
FILENAME_MAX = 200
OPEN_FOR_EVIDENCE = frozenset(
    {
        CaseState.DRAFT,
        CaseState.SUBMITTED,
        CaseState.IN_REVIEW,
        CaseState.NEEDS_INFO,
        CaseState.AWAITING_SECOND,
        CaseState.REJECTED,
    }
)


def _readable(problem: EvidenceTypeMismatchError) -> EvidenceTypeMismatchError:
    """The mismatch with its kind and type in the reader's words (``PNG``, 系统回执), not codes."""
    params = dict(problem.params)
    params["found"] = gettext(str(params.get("found", "")))
    params["declared"] = evidence_type_label(str(params.get("declared", "")))
    return EvidenceTypeMismatchError(**params)


def max_file_bytes() -> int:
    return int(settings.FAPIAO_EVIDENCE_MAX_FILE_MB) * MB


def too_large_error(limit_mb: int) -> InvalidValueError:
    """The refusal of a file over the per-file limit, before it is even read."""
    return EvidenceTooLargeError(limit_mb=limit_mb)


class CaseNotOpenForEvidenceError(ConflictError):
    """Files can't be added to a case that is "{state}"."""

    code = "case_not_open_for_evidence"


class EvidenceDuplicateError(ConflictError):
    """This file is already on the case, as "{filename}"."""

    code = "evidence_duplicate"


class CaseEvidenceFullError(InvalidValueError):
    """The case's files would exceed {limit_mb} MB in total."""

    code = "case_evidence_full"


class EvidenceTooLargeFailed(ValidationFailed):
    """The request has errors; nothing was saved."""

    status = 413  # Content Too Large: the file, not its form, is what the server won't take
    code = "evidence_too_large"


def too_large(problem: FieldError) -> EvidenceTooLargeFailed:
    return EvidenceTooLargeFailed([problem])


def clean_filename(name: object) -> str:
    """The file's own name: no directories, no control characters, bounded; full-width kept."""
    text = name if isinstance(name, str) else ""
    text = PureWindowsPath(PurePosixPath(text).name).name
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    if not text:
        raise ValidationFailed(
            [InvalidValueError(_("Give the file a name."), code="required").at("filename")]
        )
    if len(text) > FILENAME_MAX:
        stem, dot, suffix = text.rpartition(".")
        text = (
            (stem[: FILENAME_MAX - len(suffix) - 1] + dot + suffix)
            if dot and len(suffix) < 10
            else text[:FILENAME_MAX]
        )
    return text


def _evidence_type(value: object) -> EvidenceType:
    try:
        return EvidenceType(str(value))
    except ValueError:
        raise ValidationFailed(
            [
                InvalidValueError(
                    _("Choose one of: {choices}."), code="invalid_choice", choices=", ".join(EvidenceType)
                ).at("type")
            ]
        ) from None


def _refuse(case: Case, *, on_behalf: bool, sha256: str, size: int) -> None:
    """Why the case can't take this file now: closed to files, the same file already on it, or full."""
    if case.state not in OPEN_FOR_EVIDENCE or (on_behalf and case.state == CaseState.DRAFT):
        raise CaseNotOpenForEvidenceError(state=case.state)
    same = Evidence.objects.filter(case=case, sha256=sha256).first()
    if same is not None:
        raise EvidenceDuplicateError(filename=same.filename)
    held = Evidence.objects.filter(case=case).aggregate(total=Sum("size"))["total"] or 0
    limit = settings.FAPIAO_EVIDENCE_MAX_CASE_MB
    if held + size > limit * MB:
        raise ValidationFailed([CaseEvidenceFullError(limit_mb=limit).at("file")])


def add_evidence(
    *,
    user: User,
    case: Case,
    evidence_type: object,
    filename: object,
    data: bytes,
    channel: Channel = Channel.ONLINE,
    message: CaseMessage | None = None,
    quiet: bool = False,
) -> Evidence:
    """Attach one file.  Staff (support) add files on the merchant's behalf: e-mailed or mailed in.

    ``quiet``: the caller adds several files as one delivery and notifies once itself.
    """
    require(user, Action.ADD_EVIDENCE)
    kind_declared = _evidence_type(evidence_type)
    name = clean_filename(filename)
    try:
        content_kind = check_evidence(
            declared_type=kind_declared.value,
            filename=name,
            data=data,
            max_bytes=max_file_bytes(),
            zip_limits=zip_limits(),
        )
    except EvidenceTooLargeError as problem:
        raise too_large(problem.at("file")) from None
    except EvidenceTypeMismatchError as problem:
        raise ValidationFailed([_readable(problem).at("file")]) from None
    except InvalidValueError as problem:
        raise ValidationFailed([problem.at("file")]) from None
    on_behalf = user.role not in (Role.CLERK, Role.MERCHANT_ADMIN)
    sha256 = hashlib.sha256(data).hexdigest()
    # Checked before the bytes are stored, so a refused file leaves nothing behind, and again
    # under the lock, where it counts (a race between the two leaves at most an unused blob).
    _refuse(case, on_behalf=on_behalf, sha256=sha256, size=len(data))
    store_blob(data)
    details: dict[str, Any] = {}
    stored: list[Evidence] = []

    def refuse(locked: Case) -> None:
        _refuse(locked, on_behalf=on_behalf, sha256=sha256, size=len(data))

    def write(locked: Case, _target: CaseState, now: datetime) -> None:
        evidence = Evidence(
            merchant_id=locked.merchant_id,
            case=locked,
            evidence_type=kind_declared,
            filename=name,
            content_kind=content_kind,
            size=len(data),
            sha256=sha256,
            channel=channel,
            uploaded_by=user,
            uploaded_at=now,
            on_behalf=on_behalf,
            message=message,
        )
        run_check(evidence, locked, data)
        evidence.save()
        stored.append(evidence)
        details.update(file=name, type=kind_declared.value, sha256=sha256, check=evidence.check_status)

    with transaction.atomic():
        step = transition(
            case, Change.EVIDENCE, actor=user, version=None, check=refuse, apply=write, details=details
        )
        locked = step.case
        if not on_behalf and locked.state == CaseState.NEEDS_INFO:
            answer(user=user, case=locked, note=_("Answered with a file."))
        elif locked.state != CaseState.DRAFT and not quiet:
            people = notify.merchant_people(locked) if on_behalf else notify.staff_people(locked)
            notify.notify(locked, "evidence", people, actor=user)
    return stored[0]


def reply_with_files(
    *, user: User, case: Case, body: object, evidence_type: object, files: Sequence[tuple[str, bytes]]
) -> CaseMessage:
    """A message from the desk with files attached: the message and every file, or nothing."""
    with transaction.atomic():
        message = post_message(user=user, case=case, body=body)
        for filename, data in files:
            add_evidence(
                user=user,
                case=case,
                evidence_type=evidence_type,
                filename=filename,
                data=data,
                message=message,
            )
    return message
