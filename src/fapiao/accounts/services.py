"""Writes for accounts: users (invite, disable, enable, reset password, unlock); API tokens are in
``fapiao.accounts.tokens`` (re-exported here for the callers that import them from this module).

Who manages whom: a merchant admin manages their own merchant's users; an operator manages staff
and merchants' administrators, never a merchant's clerks.  An operator creates a merchant's *first*
administrator only — for a merchant with no account at all; every later account of a merchant is
invited by that merchant's administrators, who are told of each new one.  Nobody is given a
password: an invitation or a reset mails the user a single-use link to choose their own
(``fapiao.accounts.invitations``), so no inviter can sign in as the people they invite.
Nobody disables or resets their own account here (the password change page is for that).
Every write runs in one transaction with its audit record.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from fapiao.accounts import invitations
from fapiao.accounts.choices import MERCHANT_ROLES, Role
from fapiao.accounts.invitations import IssuedLink
from fapiao.accounts.models import ApiToken, Invitation, Merchant, User
from fapiao.accounts.permissions import Action, RoleForbiddenError, require
from fapiao.accounts.selectors import UserNotFoundError

# Token services lived here first; API, CLI and tests import them from this module too.
from fapiao.accounts.tokens import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    TOKEN_PREFIX,
    TokenInvalidError,
    TokenNeedsSessionError,
    authenticate_token,
    create_token,
    revoke_token,
    token_digest,
)
from fapiao.core.errors import (
    ConflictError,
    FieldError,
    InvalidValueError,
    PermissionDeniedError,
    ValidationFailed,
    _,
)
from fapiao.core.text import clean_name
from fapiao.platform.auditing import record

DISPLAY_NAME_MAX = 150


class UsernameTakenError(ConflictError):
    """This username is already taken; choose another."""

    code = "username_taken"


class OwnAccountError(PermissionDeniedError):
    """You cannot do this to your own account; ask another administrator."""

    code = "own_account"


class OperatorsManageAdminsOnlyError(RoleForbiddenError):
    """Operators manage a merchant's administrators; the merchant's clerks are managed by them."""

    code = "operators_manage_admins_only"


class FirstAdminOnlyError(PermissionDeniedError):
    """Operators create only a merchant's first administrator; its administrators invite the others."""

    code = "first_admin_only"


def snapshot(user: User) -> dict[str, object]:
    """What the audit trail keeps of a user: never the password."""
    return {
        "username": user.username,
        "role": user.role,
        "merchant": user.merchant.uscc if user.merchant_id and user.merchant else None,
        "is_active": user.is_active,
        "must_change_password": user.must_change_password,
        "awaiting_password": not user.has_usable_password(),
    }


def check_may_manage(actor: User, *, role: str, merchant: Merchant | None) -> None:
    """Raise unless ``actor`` may manage a ``role`` user of ``merchant`` (see the module docstring)."""

    if role in MERCHANT_ROLES:
        if actor.is_merchant_user:
            require(actor, Action.MANAGE_MERCHANT_USERS)
            if merchant is None or merchant.pk != actor.merchant_id:
                raise UserNotFoundError(_("No such user."))
            return
        require(actor, Action.MANAGE_MERCHANTS)
        if role != Role.MERCHANT_ADMIN:
            raise OperatorsManageAdminsOnlyError()
        return
    require(actor, Action.MANAGE_STAFF)


def _parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise ValidationFailed(
            [FieldError("role", "bad_choice", _("Choose one of: {allowed}."), {"allowed": allowed})]
        ) from None


def _check_new_user_fields(
    username: str, email: str, *, last_name: str = "", first_name: str = "", email_required: bool = True
) -> tuple[str, str]:
    """Every problem of a new user's fields at once; the display names as they will be stored."""
    errors: list[FieldError] = []
    names: dict[str, str] = {}
    for field, value in (("last_name", last_name), ("first_name", first_name)):
        try:
            names[field] = clean_name(value, max_len=DISPLAY_NAME_MAX, required=False)
        except InvalidValueError as error:
            errors.append(error.at(field))
    try:
        User.username_validator(username)
        if not 3 <= len(username) <= 150:
            raise ValidationError("length")
    except ValidationError:
        errors.append(
            FieldError(
                "username",
                "bad_username",
                _("Use 3–150 letters, digits and the characters . @ + - _ for the username."),
            )
        )
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors.append(FieldError("email", "bad_email", _("Enter a valid e-mail address.")))
    elif email_required:
        errors.append(
            FieldError("email", "required", _("Give the e-mail address the invitation link is sent to."))
        )
    if errors:
        raise ValidationFailed(errors)
    return names["last_name"], names["first_name"]


def _refuse_unless_first_account(merchant: Merchant) -> None:
    """Staff may create a merchant's first account only (an administrator); runs in the transaction,
    under a lock on the merchant, so two operators cannot both create a "first" one."""
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    if User.objects.filter(merchant=merchant).exists():
        raise FirstAdminOnlyError()


def invite_user(
    *,
    actor: User,
    username: str,
    role: str,
    merchant: Merchant | None = None,
    last_name: str = "",
    first_name: str = "",
    email: str = "",
    print_link: bool = False,
) -> tuple[User, IssuedLink]:
    """Create a user without a password and mail them a single-use link to choose one.

    A merchant admin's invitations belong to their own merchant unless ``merchant`` says otherwise
    (another merchant is not found).  Staff belong to no merchant.  ``print_link`` (the server's
    command line only) returns the link instead of mailing it where ``invitations.may_print_link``
    allows; the merchant's administrators are told of the new account.
    """
    parsed = _parse_role(role)
    if parsed in MERCHANT_ROLES and merchant is None:
        if not actor.is_merchant_user:
            require(actor, Action.MANAGE_MERCHANTS)
            raise ValidationFailed(
                [FieldError("merchant", "required", _("Say which merchant this user belongs to."))]
            )
        merchant = actor.merchant
    if parsed not in MERCHANT_ROLES and merchant is not None:
        raise ValidationFailed(
            [
                FieldError(
                    "merchant", "not_allowed", _("Staff belong to no merchant; leave the merchant empty.")
                )
            ]
        )
    check_may_manage(actor, role=parsed, merchant=merchant)
    username = username.strip()
    email = email.strip()
    last_name, first_name = _check_new_user_fields(
        username, email, last_name=last_name, first_name=first_name
    )
    with transaction.atomic():
        if merchant is not None and not actor.is_merchant_user:
            _refuse_unless_first_account(merchant)
        if User.objects.filter(username__iexact=username).exists():
            raise UsernameTakenError()
        user = User(
            username=username,
            role=parsed,
            merchant=merchant,
            last_name=last_name,
            first_name=first_name,
            email=email,
        )
        user.set_unusable_password()
        user.save()
        printed = print_link and invitations.may_print_link(user)
        issued = invitations.issue_link(
            user=user, purpose=Invitation.PURPOSE_INVITE, actor=actor, printed=printed
        )
        record(
            actor=actor,
            action="user.invite",
            target=user,
            merchant=merchant,
            after={**snapshot(user), "invitation": invitations.audit_view(issued.invitation)},
        )
        invitations.notify_new_account(user=user, actor=actor)
    return user, issued


class OperatorExistsError(ConflictError):
    """An operator already exists; ask them to create staff accounts."""

    code = "operator_exists"


def bootstrap_operator(*, username: str, email: str = "") -> tuple[User, IssuedLink]:
    """The first operator of a new installation (server command line only), with a printed link to
    choose their password — nobody else exists who could receive it."""
    username = username.strip()
    email = email.strip()
    _check_new_user_fields(username, email, email_required=False)
    with transaction.atomic():
        if User.objects.filter(role=Role.OPERATOR, is_active=True).exists():
            raise OperatorExistsError()
        if User.objects.filter(username__iexact=username).exists():
            raise UsernameTakenError()
        user = User(username=username, role=Role.OPERATOR, email=email)
        user.set_unusable_password()
        user.save()
        issued = invitations.issue_link(
            user=user, purpose=Invitation.PURPOSE_INVITE, actor=None, printed=True
        )
        record(
            actor=None,
            action="user.bootstrap_operator",
            target=user,
            after={**snapshot(user), "invitation": invitations.audit_view(issued.invitation)},
        )
    return user, issued


def _check_target(actor: User, target: User) -> None:
    if target.pk == actor.pk:
        raise OwnAccountError()
    check_may_manage(actor, role=target.role, merchant=target.merchant)


def set_user_active(*, actor: User, target: User, active: bool) -> User:
    """Disable or enable a user.  A disabled user cannot sign in, and their tokens are refused."""
    _check_target(actor, target)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=target.pk)
        before = snapshot(locked)
        if locked.is_active != active:
            locked.is_active = active
            locked.save(update_fields=["is_active"])
        record(
            actor=actor,
            action="user.enable" if active else "user.disable",
            target=locked,
            merchant=locked.merchant,
            before=before,
            after=snapshot(locked),
        )
    return locked


def reset_password(*, actor: User, target: User, print_link: bool = False) -> IssuedLink:
    """End ``target``'s password, sessions and API tokens, and mail them a link to choose a new one.

    Whoever asks never sees a password or the link (``print_link``: as for :func:`invite_user`).
    Their sessions end because Django ties a session to the password hash.
    """
    _check_target(actor, target)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=target.pk)
        before = snapshot(locked)
        printed = print_link and invitations.may_print_link(locked)
        if not printed and not locked.email:
            raise invitations.NoEmailAddressError()
        locked.set_unusable_password()
        locked.must_change_password = False
        locked.save(update_fields=["password", "must_change_password"])
        revoked = ApiToken.objects.filter(user=locked, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        issued = invitations.issue_link(
            user=locked, purpose=Invitation.PURPOSE_RESET, actor=actor, printed=printed
        )
        record(
            actor=actor,
            action="user.reset_password",
            target=locked,
            merchant=locked.merchant,
            before=before,
            after={
                **snapshot(locked),
                "tokens_revoked": revoked,
                "invitation": invitations.audit_view(issued.invitation),
            },
        )
    return issued


def unlock_user(*, actor: User, target: User) -> int:
    """Clear the failed sign-ins that locked ``target`` out; returns how many records were cleared."""

    require(actor, Action.UNLOCK_USERS)
    with transaction.atomic():
        cleared, _by_model = AccessAttempt.objects.filter(username=target.username).delete()
        record(
            actor=actor,
            action="user.unlock",
            target=target,
            merchant=target.merchant,
            after={"username": target.username, "attempts_cleared": cleared},
        )
    return int(cleared)


__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "MAX_TOKEN_DAYS",
    "TOKEN_PREFIX",
    "FirstAdminOnlyError",
    "OperatorExistsError",
    "OperatorsManageAdminsOnlyError",
    "OwnAccountError",
    "TokenInvalidError",
    "TokenNeedsSessionError",
    "UsernameTakenError",
    "authenticate_token",
    "bootstrap_operator",
    "check_may_manage",
    "create_token",
    "invite_user",
    "reset_password",
    "revoke_token",
    "set_user_active",
    "token_digest",
    "unlock_user",
]
