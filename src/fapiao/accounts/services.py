"""Writes for accounts: API tokens (and, with the access issue, users and merchants)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from fapiao.accounts.models import ApiToken, User
from fapiao.core.choices import TokenScope
from fapiao.core.errors import FapiaoError, InvalidValueError, _

TOKEN_PREFIX = "fpv_"  # noqa: S105  a public prefix, not a secret
DEFAULT_TOKEN_DAYS = 90
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenInvalidError(FapiaoError):
    """The API token is missing, unknown, expired or revoked."""

    status = 401
    code = "invalid_token"


def token_digest(token: str) -> str:
    """Keyed HMAC-SHA256 of a token: fast per request, useless without the server's secret."""
    return salted_hmac("fapiao.api-token", token, algorithm="sha256").hexdigest()


def create_token(
    *, user: User, scope: str, name: str = "cli", days: int = DEFAULT_TOKEN_DAYS
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is never stored."""
    try:
        scope = TokenScope(scope)
    except ValueError:
        raise InvalidValueError(_("Scope must be read or write."), code="bad_scope") from None
    if not 1 <= days <= 3650:
        raise InvalidValueError(_("A token lives between 1 and 3650 days."), code="bad_expiry")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            scope=scope,
            digest=token_digest(plaintext),
            prefix=plaintext[:12],
            expires_at=timezone.now() + timedelta(days=days),
        )
    return token, plaintext


def authenticate_token(plaintext: str) -> ApiToken:
    """The live token for ``plaintext``, recording its use at most once a minute."""
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user", "user__merchant")
        .filter(digest=token_digest(plaintext), revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not token.user.is_active:
        raise TokenInvalidError()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def revoke_token(*, token: ApiToken) -> None:
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
