"""The mails of the accounts layer: a link to choose one's password, and "a new account" to a merchant's
administrators.  Written in the installation's language (``LANGUAGE_CODE``), sent after commit by the
callers in ``fapiao.accounts.invitations``; a mail server that fails is logged and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from fapiao.accounts.choices import Role
from fapiao.accounts.models import Invitation, User

log = logging.getLogger(__name__)

ROLE_NAMES = {
    Role.CLERK: gettext_noop("Merchant clerk"),
    Role.MERCHANT_ADMIN: gettext_noop("Merchant administrator"),
    Role.SUPPORT: gettext_noop("Support agent"),
    Role.REVIEWER: gettext_noop("Reviewer"),
    Role.AUDITOR: gettext_noop("Auditor"),
    Role.OPERATOR: gettext_noop("Operator"),
}


def beijing(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def _send(subject: str, body: str, addresses: list[str]) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
    except Exception:
        log.exception("account mail to %d recipients failed", len(addresses))


def mail_link(user: User, invitation: Invitation, link: str, inviter: str) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        product = gettext("Fapiao Vault")
        if invitation.purpose == Invitation.PURPOSE_INVITE:
            subject = gettext("Your account in Fapiao Vault")
            intro = gettext(
                "{inviter} created an account for you in Fapiao Vault. Your username is {username}."
            )
        else:
            subject = gettext("Choose a new password for Fapiao Vault")
            intro = gettext("A new password was asked for your account {username} in Fapiao Vault.")
        how = gettext(
            "Open this link to choose your password. It works once, until {expires} (Beijing time):"
        )
        ignore = gettext("If you did not expect this e-mail, do not open the link; tell your administrator.")
        body = "\n\n".join(
            [
                intro.format(inviter=inviter or product, username=user.username),
                how.format(expires=beijing(invitation.expires_at)) + "\n" + link,
                ignore,
                f"— {product}",
            ]
        )
    _send(f"[{product}] {subject}", body, [invitation.sent_to])


def mail_new_account(addresses: list[str], facts: dict[str, str]) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        product = gettext("Fapiao Vault")
        subject = gettext("New account {username} at {merchant}").format(**facts)
        what = gettext("{by} created the account {username} ({role}) for {merchant} at {at} (Beijing time).")
        act = gettext(
            "If you did not expect it, disable it on the Users page at once and tell your operator: "
            "it can see your merchant's data once its owner chooses a password."
        )
        facts = {
            **facts,
            "role": gettext(facts["role"]),
            "by": facts["by"] or gettext("The server's command line"),
        }
        body = "\n\n".join([what.format(**facts), act, f"— {product}"])
    _send(f"[{product}] {subject}", body, addresses)
