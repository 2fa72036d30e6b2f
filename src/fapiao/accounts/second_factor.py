"""A second factor for staff: TOTP codes (RFC 6238, 6 digits, 30 s) from an authenticator app.

Any staff member may set it up; operators must (``FAPIAO_OPERATOR_TOTP``, on unless in demo mode).
Once set up, every browser session of that user asks for a code after the password, and the API
refuses the session until it has one (API tokens, created in such a session, need none).

The secret is encrypted with the data keys (``fapiao.platform.datakeys``, never in the database).  A code
is accepted once: the time step it belongs to is remembered.  Wrong codes count as failed sign-ins,
so guessing codes ends in the same lockout as guessing passwords; and once the username is locked out
no code is even looked at — in the session that guessed or any other — until the lockout ends or an
operator unlocks it.  The count of wrong codes survives a new password sign-in (only a right code,
an unlock or the cool-off clears it): otherwise whoever knows the password could sign in again after
every few guesses and never be locked out.
"""

from __future__ import annotations

import time

import pyotp
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from fapiao.accounts.choices import STAFF_ROLES, Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.accounts.services import OwnAccountError
from fapiao.core.errors import (
    ConflictError,
    FapiaoError,
    FieldError,
    PermissionDeniedError,
    ValidationFailed,
    _,
)
from fapiao.core.fieldcrypt import FieldContext
from fapiao.platform import datakeys
from fapiao.platform.auditing import record

ISSUER = "Fapiao Vault"
STEP_SECONDS = 30
VALID_WINDOW = 1  # the previous and next step too: phone clocks drift
SESSION_KEY = "fapiao_second_factor"  # the user id whose code this session has seen


class SecondFactorNotForMerchantsError(PermissionDeniedError):
    """The second factor is for staff accounts."""

    code = "second_factor_staff_only"


class SecondFactorLockedOutError(FapiaoError):
    """Too many wrong codes: this account is locked. Try again later, or ask an operator to unlock it."""

    status = 429
    code = "locked_out"


class SecondFactorAlreadySetUpError(ConflictError):
    """The second factor is already set up; an operator can reset it if the phone is lost."""

    code = "second_factor_set_up"


def _context(user: User) -> FieldContext:
    return FieldContext(merchant_id=0, table="accounts_user", field="totp_secret", row=str(user.pk))


def _encrypt(user: User, secret: str) -> bytes:

    return datakeys.keyring().encrypt(secret, _context(user))


def secret_of(user: User) -> str:

    assert user.totp_secret is not None
    return datakeys.keyring().decrypt_text(user.totp_secret, _context(user))


def is_set_up(user: User) -> bool:
    return user.totp_confirmed_at is not None


def must_set_up(user: User) -> bool:
    """An operator without a second factor, where operators must have one."""
    return bool(settings.FAPIAO_OPERATOR_TOTP and user.role == Role.OPERATOR and not is_set_up(user))


def required(user: User) -> bool:
    """Whether a session of ``user`` needs a code (or a set-up) before it may do anything."""
    return user.role in STAFF_ROLES and (is_set_up(user) or must_set_up(user))


def session_passed(request: HttpRequest) -> bool:
    return request.session.get(SESSION_KEY) == getattr(request.user, "pk", None)


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=user.username, issuer_name=ISSUER)


def start_setup(*, user: User) -> str:
    """A new secret for ``user`` (not active until a code from it is confirmed)."""
    if user.role not in STAFF_ROLES:
        raise SecondFactorNotForMerchantsError()
    if is_set_up(user):
        raise SecondFactorAlreadySetUpError()
    secret = pyotp.random_base32()
    sealed = _encrypt(user, secret)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_secret=sealed, totp_last_step=None)
    user.totp_secret = sealed
    return secret


def _bad_code() -> ValidationFailed:
    return ValidationFailed(
        [FieldError("code", "bad_code", _("This code is not right; enter the 6 digits your app shows now."))]
    )


def _accepted_step(secret: str, code: str, after: int | None) -> int | None:
    """The time step ``code`` belongs to, if it is valid now and newer than ``after``."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    now = int(time.time())
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        at = now + offset * STEP_SECONDS
        if totp.verify(code, for_time=at, valid_window=0):
            step = at // STEP_SECONDS
            return step if after is None or step > after else None
    return None


def _credentials(user: User) -> dict[str, str]:
    return {"username": user.username}


def _refuse_if_locked_out(request: HttpRequest, user: User) -> None:
    """While the username is locked out, no code is checked: the attempt counts as one more failure,
    as a password tried during the lockout does, and the lockout middleware answers it (429)."""
    credentials = _credentials(user)
    if not AxesProxyHandler.is_locked(request, credentials):
        return
    request.axes_locked_out = True  # type: ignore[attr-defined]
    request.axes_credentials = credentials  # type: ignore[attr-defined]
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    raise SecondFactorLockedOutError()


def _check(request: HttpRequest, user: User, code: str) -> None:
    """Accept ``code`` once for ``user`` or raise; a wrong code is a failed sign-in."""
    _refuse_if_locked_out(request, user)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        step = _accepted_step(secret_of(locked), code, locked.totp_last_step) if locked.totp_secret else None
        if step is not None:
            User.objects.filter(pk=user.pk).update(totp_last_step=step)
    if step is None:
        # Counted by the lockout like a wrong password; the request is marked locked out when this
        # failure reaches the limit.
        user_login_failed.send(sender=__name__, credentials=_credentials(user), request=request)
        raise _bad_code()
    AxesProxyHandler.reset_attempts(username=user.username)  # the right code clears earlier typos


def clear_failures_after_password(sender: object, request: HttpRequest, user: User, **kwargs: object) -> None:
    """``user_logged_in`` receiver: a right password clears the failed sign-ins — unless a code must
    follow, in which case only the right code does (see the module docstring)."""
    if not required(user):
        AxesProxyHandler.reset_attempts(username=user.username)


def confirm_setup(*, request: HttpRequest, user: User, code: str) -> None:
    """Turn the pending secret on with a first code from the app."""
    if is_set_up(user):
        raise SecondFactorAlreadySetUpError()
    _check(request, user, code)
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(totp_confirmed_at=timezone.now())
        record(actor=user, action="user.second_factor_set_up", target=user, merchant=None)
    user.totp_confirmed_at = timezone.now()


def verify(*, request: HttpRequest, user: User, code: str) -> None:
    """Check a code at sign-in and mark this session as having passed."""
    _check(request, user, code)
    request.session[SESSION_KEY] = user.pk
    request.session.cycle_key()


def reset(*, actor: User, target: User) -> None:
    """An operator clears a staff member's lost second factor; they set up a new one next sign-in."""

    require(actor, Action.MANAGE_STAFF)
    if target.pk == actor.pk:
        raise OwnAccountError()
    if target.role not in STAFF_ROLES:
        raise SecondFactorNotForMerchantsError()
    with transaction.atomic():
        User.objects.filter(pk=target.pk).update(
            totp_secret=None, totp_confirmed_at=None, totp_last_step=None
        )
        record(actor=actor, action="user.second_factor_reset", target=target, merchant=None)
    target.totp_secret = None
    target.totp_confirmed_at = None
