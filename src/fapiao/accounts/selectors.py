"""Account reads, always scoped to the acting user.

Merchant admins see their own merchant and its users; auditors and operators see every user;
staff who may read merchants see every merchant.  Anything outside the caller's scope is simply
not found (404), so its existence does not leak.
"""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from fapiao.accounts.models import ApiToken, Merchant, NumberSegment, User
from fapiao.accounts.permissions import Action, require
from fapiao.core.errors import NotFoundError, _


class UserNotFoundError(NotFoundError):
    """No such user."""

    code = "user_not_found"


class MerchantNotFoundError(NotFoundError):
    """No such merchant."""

    code = "merchant_not_found"


class TokenNotFoundError(NotFoundError):
    """No such token."""

    code = "token_not_found"


def users_visible_to(user: User) -> QuerySet[User]:
    require(user, Action.READ_USERS)
    queryset = User.objects.select_related("merchant")
    if user.is_merchant_user:
        return queryset.filter(merchant_id=user.merchant_id or -1)
    return queryset


def user_list(*, user: User, merchant: str = "", role: str = "") -> QuerySet[User]:
    queryset = users_visible_to(user)
    if merchant and not user.is_merchant_user:
        queryset = queryset.filter(merchant__uscc=merchant.strip().upper())
    if role:
        queryset = queryset.filter(role=role)
    return queryset.order_by("merchant__uscc", "username")


def user_get(*, user: User, user_id: int) -> User:
    found = users_visible_to(user).filter(pk=user_id).first()
    if found is None:
        raise UserNotFoundError(_("No such user."))
    return found


def merchants_visible_to(user: User) -> QuerySet[Merchant]:
    """Staff who may read merchants see all of them; a merchant's own users see their own."""
    if user.is_merchant_user and user.is_active:
        return Merchant.objects.filter(pk=user.merchant_id or -1)
    require(user, Action.READ_MERCHANTS)
    return Merchant.objects.all()


def merchant_list(*, user: User) -> QuerySet[Merchant]:
    require(user, Action.READ_MERCHANTS)
    return merchants_visible_to(user).order_by("uscc")


def merchant_get(*, user: User, uscc: str) -> Merchant:
    found = merchants_visible_to(user).filter(uscc=uscc.strip().upper()).first()
    if found is None:
        raise MerchantNotFoundError(_("No such merchant."))
    return found


def segments_of(merchant: Merchant) -> QuerySet[NumberSegment]:
    return NumberSegment.objects.filter(merchant=merchant).order_by(
        "year", "province", "channel", "first_serial"
    )


def own_tokens(*, user: User) -> QuerySet[ApiToken]:
    require(user, Action.MANAGE_OWN_TOKENS)
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def own_token_get(*, user: User, public_id: str) -> ApiToken:

    try:
        found = own_tokens(user=user).filter(public_id=public_id).first()
    except ValidationError:  # not a UUID
        found = None
    if found is None:
        raise TokenNotFoundError(_("No such token."))
    return found


def lockout_cooloff() -> timedelta | None:
    minutes = settings.FAPIAO_LOCKOUT_MINUTES
    return timedelta(minutes=minutes) if minutes else None


def locked_usernames(usernames: list[str]) -> set[str]:
    """Which of ``usernames`` are locked out now (too many failed sign-ins, not yet unlocked)."""
    attempts = AccessAttempt.objects.filter(
        username__in=usernames, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    )
    cooloff = lockout_cooloff()
    if cooloff is not None:
        attempts = attempts.filter(attempt_time__gt=timezone.now() - cooloff)
    return set(attempts.values_list("username", flat=True))
