"""代商户登记: support registers a case for a merchant who phoned in or wrote.

A merchant who cannot use the site (no account at hand, no computer, only a phone) tells support
what is missing.  Support opens the case *for that merchant* and submits it in one transaction:
the case gets its 受理编号 at once, records the channel it came by (phone, e-mail, post), and
the merchant's users are notified so they can check the claim and add evidence.  The case is then
like any other: reviewers decide it, and support — who spoke for the merchant — may never decide
it (the four-eyes rule counts the opener and the submitter).

Only support may register (:data:`fapiao.accounts.permissions.Action.REGISTER_CASES`, and the core's
``register`` move, which leads from a draft only); the merchant is named by its USCC and must exist
and be active.  A clerk cannot reach another merchant this way: the role is refused first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, require
from fapiao.core.case_claim import parse_claim
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.errors import FieldError, InvalidValueError, ValidationFailed, _
from fapiao.recovery import notify
from fapiao.recovery.acceptance import next_acceptance_no
from fapiao.recovery.choices import Channel
from fapiao.recovery.claim import apply_claim
from fapiao.recovery.models import Case
from fapiao.recovery.templatetags.recovery_tags import channel as channel_label
from fapiao.recovery.transitions import opened, transition

#: How a merchant may reach support outside the site.
REGISTER_CHANNELS: tuple[Channel, ...] = (Channel.PHONE, Channel.EMAIL, Channel.MAIL_IN)
REGISTER_KEYS = frozenset({"merchant", "channel", "claim"})


class UnknownMerchantError(InvalidValueError):
    """No active merchant has this unified social credit code."""

    code = "unknown_merchant"


def _merchant(value: object) -> Merchant | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return Merchant.objects.filter(uscc=value.strip().upper(), is_active=True).first()


def _parse(payload: object) -> tuple[Merchant, Channel, object]:
    """The merchant, the channel and the claim, every problem at once (nothing written)."""
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("", "not_an_object", _("Send a JSON object."))])
    errors: list[FieldError] = []
    for key in sorted(set(payload) - REGISTER_KEYS):
        errors.append(FieldError(key, "unknown_field", _("This field is not allowed here.")))
    raw_merchant = payload.get("merchant")
    merchant = _merchant(raw_merchant)
    if raw_merchant in (None, ""):
        errors.append(FieldError("merchant", "required", _("This field is required.")))
    elif merchant is None:
        errors.append(UnknownMerchantError().at("merchant"))
    raw_channel = payload.get("channel")
    chosen = next((c for c in REGISTER_CHANNELS if c.value == raw_channel), None)
    if raw_channel in (None, ""):
        errors.append(FieldError("channel", "required", _("This field is required.")))
    elif chosen is None:
        choices = ", ".join(c.value for c in REGISTER_CHANNELS)
        errors.append(
            InvalidValueError(_("Choose one of: {choices}."), code="invalid_choice", choices=choices).at(
                "channel"
            )
        )
    claim: object = None
    try:
        claim = parse_claim(payload.get("claim"), today=timezone.localdate())
    except ValidationFailed as failed:
        errors.extend(
            FieldError(f"claim.{e.field}".rstrip("."), e.code, e.message, e.params) for e in failed.errors
        )
    if errors:
        raise ValidationFailed(errors)
    assert merchant is not None and chosen is not None
    return merchant, chosen, claim


def register_case(*, user: User, payload: object) -> Case:
    """Open and submit a case for the merchant the payload names, as support, in one transaction."""
    require(user, Action.REGISTER_CASES)
    merchant, chosen, claim = _parse(payload)
    now = timezone.now()
    with translation.override(settings.LANGUAGE_CODE):
        how = str(channel_label(chosen.value))  # the merchant's notification is in the site's language
    details: dict[str, Any] = {"channel": chosen.value, "merchant": merchant.uscc}

    def apply(locked: Case, _target: CaseState, at: datetime) -> None:
        locked.acceptance_no = next_acceptance_no(at)
        locked.submitted_by = user
        locked.submitted_at = at

    with transaction.atomic():
        case = Case(
            merchant=merchant, opened_by=user, opened_at=now, state_changed_at=now, channel=chosen.value
        )
        apply_claim(case, claim)  # type: ignore[arg-type]
        case.save()
        opened(case, actor=user, at=now)
        step = transition(
            case, CaseAction.REGISTER, actor=user, version=case.version, apply=apply, details=details, at=now
        )
        notify.notify(step.case, "register", notify.merchant_people(step.case), actor=user, channel=how)
        notify.notify(step.case, "submit", notify.staff_people(step.case), actor=user)
    return step.case
