"""Template filters of the recovery pages: ``{{ kind|evidence_type }}``, ``{{ state|case_state }}``,
``{{ action|case_action }}``, ``{{ field|claim_field }}``."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from fapiao.recovery.labels import evidence_type_label, state_label

register = template.Library()

ACTIONS = {
    "open": _("opened the application"),
    "edit": _("edited the application"),
    "submit": _("submitted"),
    "resubmit": _("submitted again"),
    "evidence": _("added a file"),
    "message": _("wrote a message"),
    "request_info": _("asked for more information"),
    "answer": _("answered"),
    "claim": _("took the case"),
    "release": _("gave the case back"),
    "assign": _("assigned the case"),
    "approve": _("approved"),
    "reject": _("rejected"),
    "return_to_review": _("sent the case back to review"),
    "register": _("registered the application for the merchant"),
    "resolve": _("resolved the case"),
    "confirm": _("confirmed the result"),
    "reopen": _("reopened the case"),
    "withdraw": _("withdrew the application"),
    "remind": _("sent a reminder"),
    "email": _("imported an e-mail"),
    "mail_in": _("registered papers sent by post"),
}
CHANNELS = {
    "online": pgettext_lazy("channel", "Online"),
    "email": pgettext_lazy("channel", "By e-mail"),
    "mail_in": pgettext_lazy("channel", "Mailed in (registered by support)"),
    "phone": pgettext_lazy("channel", "By phone (registered by support)"),
}


@register.filter
def evidence_type(value: str) -> str:
    return evidence_type_label(str(value))


@register.filter
def case_state(value: str) -> str:
    return state_label(str(value))


@register.filter
def case_action(value: str) -> str:
    found = ACTIONS.get(str(value))
    return str(found) if found is not None else str(value)


@register.filter
def channel(value: str) -> str:
    found = CHANNELS.get(str(value))
    return str(found) if found is not None else str(value)


CLAIM_FIELDS = {
    "number": _("Invoice number"),
    "issued_on": _("Invoice date"),
    "kind": _("Invoice kind"),
    "buyer": _("Buyer"),
    "buyer_tax_id": _("Buyer's taxpayer number"),
    "total_amount": _("Amount without tax"),
    "total_tax": _("Tax"),
    "total_with_tax": _("Total with tax"),
}


@register.filter
def claim_field(value: str) -> str:
    found = CLAIM_FIELDS.get(str(value))
    return str(found) if found is not None else str(value)
