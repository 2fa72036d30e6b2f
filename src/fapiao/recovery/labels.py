"""What a case's state and a file's evidence type are called, in the reader's language.

Shared by the pages, the receipts, the reminder mails and the services' refusals, so it sits
below all of them (it imports nothing of the app).
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_noop, pgettext_lazy

from fapiao.core.cases import CaseState
from fapiao.core.evidence import EvidenceType

S = CaseState
STATE_LABELS: dict[str, Promise] = {
    S.DRAFT: pgettext_lazy("case state", "Draft"),
    S.SUBMITTED: pgettext_lazy("case state", "Submitted"),
    S.IN_REVIEW: pgettext_lazy("case state", "In review"),
    S.NEEDS_INFO: pgettext_lazy("case state", "Needs information"),
    S.AWAITING_SECOND: pgettext_lazy("case state", "Awaiting a second reviewer"),
    S.APPROVED: pgettext_lazy("case state", "Approved"),
    S.REJECTED: pgettext_lazy("case state", "Rejected"),
    S.RESOLVED: pgettext_lazy("case state", "Resolved"),
    S.CONFIRMED: pgettext_lazy("case state", "Confirmed"),
    S.WITHDRAWN: pgettext_lazy("case state", "Withdrawn"),
}
EVIDENCE_TYPES = {
    "contract": gettext_noop("Contract"),
    "bank_statement": gettext_noop("Bank statement"),
    "stub_copy": gettext_noop("Stub or bookkeeping copy"),
    "e_invoice": gettext_noop("E-invoice file"),
    "system_receipt": gettext_noop("System receipt"),
    "email": gettext_noop("E-mail message"),
    "other": gettext_noop("Other"),
}


def state_label(state: str) -> str:
    found = STATE_LABELS.get(state)
    return str(found) if found is not None else state


def evidence_type_label(value: str) -> str:
    return gettext(EVIDENCE_TYPES.get(value, value))


def evidence_type_choices() -> list[tuple[str, str]]:
    """Every evidence type as a form's (value, label) choices."""
    return [(kind.value, evidence_type_label(kind.value)) for kind in EvidenceType]
