"""What support sees of an uploaded e-mail before importing it, and where the mail waits meanwhile.

The preview shows the sender matched to a user of the case's merchant by address, and each
attachment with the evidence type it most likely is (by its name, then its content).  Between
the preview and the import (:func:`fapiao.recovery.mailin.import_email`) the ``.eml`` waits in
the content-addressed store, named by a signed token bound to the case, so the import takes
exactly the file that was shown.  This module only reads, except for storing that blob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core import signing

from fapiao.accounts.choices import MERCHANT_ROLES
from fapiao.accounts.models import User
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.core.evidence import EvidenceAttachmentUnsafeError, EvidenceType
from fapiao.formats.eml import UNSAFE_ATTACHMENT, MailMessage, MailProblem, read_eml
from fapiao.formats.sniff import EVIDENCE_KINDS_ALLOWED, sniff
from fapiao.platform.uploads import zip_limits
from fapiao.recovery.evidence import max_file_bytes
from fapiao.recovery.models import Case
from fapiao.recovery.storage import open_blob, store_blob

IMPORT_SALT = "fapiao.recovery.email-import"
TOKEN_MAX_AGE = 24 * 3600
# Words in a file name that say what the file is (Chinese clients name files well).
NAME_HINTS: tuple[tuple[re.Pattern[str], EvidenceType], ...] = (
    (re.compile(r"合同|协议|contract|agreement", re.I), EvidenceType.CONTRACT),
    (re.compile(r"流水|回单|对账|银行|statement|bank", re.I), EvidenceType.BANK_STATEMENT),
    (re.compile(r"存根|记账联|stub", re.I), EvidenceType.STUB_COPY),
    (re.compile(r"回执|receipt", re.I), EvidenceType.SYSTEM_RECEIPT),
    (re.compile(r"发票|invoice|fapiao", re.I), EvidenceType.E_INVOICE),
)
KIND_HINTS = {
    "json": EvidenceType.SYSTEM_RECEIPT,
    "xml": EvidenceType.E_INVOICE,
    "ofd": EvidenceType.E_INVOICE,
    "xlsx": EvidenceType.BANK_STATEMENT,
    "csv": EvidenceType.BANK_STATEMENT,
    "eml": EvidenceType.EMAIL,
}


def read_mail(data: bytes) -> tuple[MailMessage | None, list[MailProblem]]:
    """The mail; an attached archive that fails the upload guard is left out with a problem."""
    return read_eml(data, max_bytes=max_file_bytes(), zip_limits=zip_limits())


def refuse_unsafe(problems: list[MailProblem]) -> None:
    """A mail is kept whole as evidence, so one carrying an archive the upload guard refuses (a zip
    bomb) is refused whole, before anything of it is stored — even for the preview."""
    unsafe = [problem.params["name"] for problem in problems if problem.code == UNSAFE_ATTACHMENT]
    if unsafe:
        raise ValidationFailed([EvidenceAttachmentUnsafeError(attachment=name).at("file") for name in unsafe])


def merchant_users(case: Case) -> list[User]:
    """Who may have written for the merchant: its active clerks and administrators."""
    users = User.objects.filter(merchant_id=case.merchant_id, role__in=MERCHANT_ROLES, is_active=True)
    return list(users.order_by("username"))


def match_sender(case: Case, address: str) -> User | None:
    """The merchant's one user with this e-mail address (none when no one, or several, have it)."""
    if not address:
        return None
    found = [user for user in merchant_users(case) if user.email and user.email.lower() == address.lower()]
    return found[0] if len(found) == 1 else None


def guess_type(filename: str, data: bytes) -> str:
    """The evidence type a file most likely is, by its name and content; "other" when unsure."""
    kind = sniff(data)
    guess = next((hint for pattern, hint in NAME_HINTS if pattern.search(filename)), None)
    guess = guess or KIND_HINTS.get(kind)
    if guess is None or kind not in EVIDENCE_KINDS_ALLOWED[guess]:
        return EvidenceType.OTHER.value
    return guess.value


@dataclass(frozen=True)
class HeldMail:
    """An uploaded e-mail waiting, between the preview and the import, in the content store."""

    data: bytes
    name: str


def hold_mail(case: Case, data: bytes, name: str) -> str:
    """Keep an uploaded ``.eml`` for its import: the token that names it, bound to this case."""
    sha256 = store_blob(data)
    return signing.dumps({"case": str(case.uid), "sha256": sha256, "name": name}, salt=IMPORT_SALT)


def held_mail(case: Case, token: str) -> HeldMail | None:
    """The e-mail ``token`` names, if it is this case's and not expired (else None: upload it again)."""
    try:
        held = signing.loads(token, salt=IMPORT_SALT, max_age=TOKEN_MAX_AGE)
        if held.get("case") != str(case.uid):
            return None
        return HeldMail(data=open_blob(str(held["sha256"])), name=str(held["name"]))
    except (signing.BadSignature, FapiaoError, KeyError, AttributeError):
        return None
