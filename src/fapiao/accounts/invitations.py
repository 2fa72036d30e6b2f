"""Single-use links to choose one's password: invitations to new accounts, and password resets.

Nobody hands anybody a password.  Whoever invites or resets gets the link's state only; the link is
mailed to the user, who chooses their own password (through Django's password validators).  A link
works once, for ``FAPIAO_INVITATION_HOURS``; a newer link for the same user replaces it.  Only a keyed
HMAC-SHA256 of its token is stored, and links use ``FAPIAO_PUBLIC_URL``, never a request's ``Host``.

The server's command line may print a link instead of mailing it, and only where nobody else could
receive it: for the first operator, and — when no mail server is configured — for a merchant's first
administrator, the merchant's only account, which never had a password (``may_print_link``).  Whoever
runs the command line holds the server (its database and keys) anyway; an operator on the website or
the API never sees a link.  docs/operations/runbook.md says how the link is handed over.

The merchant's administrators are told of every new account of their merchant by mail
(``fapiao.accounts.mails``; the in-app notifications belong to the recovery app, which this layer does
not import).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from fapiao.accounts.choices import Role
from fapiao.accounts.mails import ROLE_NAMES, beijing, mail_link, mail_new_account
from fapiao.accounts.models import Invitation, User
from fapiao.core.errors import ConflictError, FapiaoError, FieldError, NotFoundError, ValidationFailed, _
from fapiao.platform.auditing import record

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100


class InvitationInvalidError(NotFoundError):
    """This link is not valid. Open the link from your e-mail again, all of it, or ask for a new one."""

    code = "invitation_invalid"


class InvitationUsedError(FapiaoError):
    """This link was already used. Sign in with the password you chose, or ask for a new link."""

    status = 410
    code = "invitation_used"


class InvitationExpiredError(FapiaoError):
    """This link has expired. Ask your administrator (staff: an operator) to send you a new one."""

    status = 410
    code = "invitation_expired"


class InvitationReplacedError(FapiaoError):
    """A newer link was sent to you, so this one no longer works. Use the link in the newest e-mail."""

    status = 410
    code = "invitation_replaced"


class NoEmailAddressError(ConflictError):
    """This user has no e-mail address, so no link to choose a password can be sent to them."""

    code = "no_email_address"


@dataclass(frozen=True)
class IssuedLink:
    invitation: Invitation
    link: str | None  # only when printed on the command line; otherwise it went by mail


def token_digest(token: str) -> str:
    return salted_hmac("fapiao.invitation", token, algorithm="sha256").hexdigest()


def link_for(token: str) -> str:
    return f"{settings.FAPIAO_PUBLIC_URL}{reverse('accounts:welcome', args=[token])}"


def mail_is_configured() -> bool:
    """An SMTP server is configured (``FAPIAO_SMTP_HOST``); otherwise mails are files under var/mail."""
    return bool(settings.EMAIL_HOST)


def state_of(invitation: Invitation) -> str:
    if invitation.used_at is not None:
        return "used"
    if invitation.revoked_at is not None:
        return "replaced"
    return "expired" if invitation.expires_at <= timezone.now() else "pending"


def audit_view(invitation: Invitation) -> dict[str, object]:
    """What the audit trail keeps of a link: never its token or digest."""
    return {
        "purpose": invitation.purpose,
        "expires_at": invitation.expires_at.isoformat(),
        "sent_to": invitation.sent_to or None,
        "printed": not invitation.sent_to,
    }


def may_print_link(user: User) -> bool:
    """A merchant's first administrator, before any password, when no mail server is configured."""
    if mail_is_configured() or user.role != Role.MERCHANT_ADMIN or user.merchant_id is None:
        return False
    return not (
        user.has_usable_password()
        or User.objects.filter(merchant_id=user.merchant_id).exclude(pk=user.pk).exists()
        or Invitation.objects.filter(user=user, used_at__isnull=False).exists()
    )


def issue_link(*, user: User, purpose: str, actor: User | None, printed: bool = False) -> IssuedLink:
    """A new link for ``user``, replacing their open ones; mailed after commit unless ``printed``.

    Runs in the caller's transaction.
    """
    if not printed and not user.email:
        raise NoEmailAddressError()
    now = timezone.now()
    Invitation.objects.filter(user=user, used_at__isnull=True, revoked_at__isnull=True).update(revoked_at=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation.objects.create(
        user=user,
        purpose=purpose,
        digest=token_digest(token),
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(hours=settings.FAPIAO_INVITATION_HOURS),
        sent_to="" if printed else user.email,
    )
    if printed:
        return IssuedLink(invitation, link_for(token))
    inviter = actor.display_name if actor is not None else ""
    link = link_for(token)
    transaction.on_commit(lambda: mail_link(user, invitation, link, inviter))
    return IssuedLink(invitation, None)


def notify_new_account(*, user: User, actor: User | None) -> None:
    """Tell the active administrators of ``user``'s merchant (by mail, after commit)."""
    if user.merchant_id is None:
        return
    admins = User.objects.filter(merchant_id=user.merchant_id, role=Role.MERCHANT_ADMIN, is_active=True)
    addresses = list(admins.exclude(pk=user.pk).exclude(email="").values_list("email", flat=True))
    if not addresses:
        return
    facts = {
        "username": user.username,
        "role": ROLE_NAMES[Role(user.role)],
        "merchant": user.merchant.name if user.merchant else "",
        "by": actor.display_name if actor is not None else "",
        "at": beijing(timezone.now()),
    }
    transaction.on_commit(lambda: mail_new_account(addresses, facts))


def find_open(token: str) -> Invitation:
    """The open invitation behind ``token``, or the reason the link does not work."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvitationInvalidError()
    invitation = (
        Invitation.objects.select_related("user", "user__merchant").filter(digest=token_digest(token)).first()
    )
    if invitation is None or not invitation.user.is_active:
        raise InvitationInvalidError()
    _refuse_closed(invitation)
    return invitation


def _refuse_closed(invitation: Invitation) -> None:
    if invitation.used_at is not None:
        raise InvitationUsedError()
    if invitation.revoked_at is not None:
        raise InvitationReplacedError()
    if invitation.expires_at <= timezone.now():
        raise InvitationExpiredError()


def accept(*, token: str, password: str, password_again: str) -> User:
    """Set the password the user chose through their link; the link is then used up.

    A refused password (Django's validators) or two different ones change nothing.
    """
    invitation = find_open(token)
    user = invitation.user
    errors: list[FieldError] = []
    if not password:
        errors.append(FieldError("password", "required", _("Choose a password.")))
    else:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as refused:
            errors += [FieldError("password", "weak_password", message) for message in refused.messages]
        if password != password_again:
            errors.append(
                FieldError(
                    "password_again", "mismatch", _("The two passwords differ; type the same password twice.")
                )
            )
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        _refuse_closed(locked)  # another tab used it a moment ago
        account = User.objects.select_for_update().get(pk=user.pk)
        account.set_password(password)
        account.save(update_fields=["password", "must_change_password"])
        Invitation.objects.filter(pk=locked.pk).update(used_at=timezone.now())
        record(
            actor=account,
            action="user.password_from_link",
            target=account,
            merchant=account.merchant,
            after={"purpose": locked.purpose},
        )
    AxesProxyHandler.reset_attempts(username=account.username)  # a new password ends an old lockout
    return account
