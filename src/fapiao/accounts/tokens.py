"""API tokens: a name, a scope (read or write), an expiry, the last use; shown once, stored as a digest.

Only a keyed HMAC-SHA256 of a token is stored (a slow password hash on every request would cripple
the API).  A token never creates another token, so a stolen one cannot outlive its revocation; a
disabled user's tokens are refused; resetting a password revokes all of the user's tokens.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.crypto import salted_hmac

from fapiao.accounts.models import ApiToken, User
from fapiao.accounts.permissions import Action, require
from fapiao.core.choices import TokenScope
from fapiao.core.errors import FapiaoError, FieldError, PermissionDeniedError, ValidationFailed, _
from fapiao.core.text import bad_character
from fapiao.platform.auditing import record
from fapiao.platform.groupcommit import writer

TOKEN_PREFIX = "fpv_"  # noqa: S105  a public prefix, not a secret
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenInvalidError(FapiaoError):
    """The API token is missing, unknown, expired or revoked."""

    status = 401
    code = "invalid_token"


class TokenNeedsSessionError(PermissionDeniedError):
    """Create API tokens while signed in on the website, not with another token."""

    code = "token_needs_session"


def token_digest(token: str) -> str:
    """Keyed HMAC-SHA256 of a token: fast per request, useless without the server's secret."""
    return salted_hmac("fapiao.api-token", token, algorithm="sha256").hexdigest()


def token_snapshot(token: ApiToken) -> dict[str, object]:
    return {
        "id": str(token.public_id),
        "user": token.user.username,
        "name": token.name,
        "scope": token.scope,
        "prefix": token.prefix,
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def create_token(
    *,
    user: User,
    scope: str,
    name: str = "cli",
    days: int = DEFAULT_TOKEN_DAYS,
    actor: User | None = None,
    actor_token: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its plaintext, which is never stored.

    ``actor`` is who asked (the user themselves on the API and the website; None on the server's
    command line).  A token never mints another (``actor_token``): a stolen token must not be able
    to outlive its own revocation.
    """
    if actor_token is not None:
        raise TokenNeedsSessionError()
    errors: list[FieldError] = []
    try:
        scope = TokenScope(scope)
    except ValueError:
        errors.append(FieldError("scope", "bad_scope", _("Scope must be read or write.")))
    if not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
        errors.append(
            FieldError(
                "days", "bad_expiry", _("A token lives between 1 and {most} days."), {"most": MAX_TOKEN_DAYS}
            )
        )
    name = name.strip()
    if not 1 <= len(name) <= 100:
        errors.append(FieldError("name", "bad_name", _("Give the token a name of 1–100 characters.")))
    elif bad_character(name) is not None:
        errors.append(FieldError("name", "bad_character", _("Remove control characters such as tabs.")))
    if errors:
        raise ValidationFailed(errors)
    if actor is not None:
        require(actor, Action.MANAGE_OWN_TOKENS)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            scope=scope,
            digest=token_digest(plaintext),
            prefix=plaintext[:12],
            expires_at=timezone.now() + timedelta(days=days),
        )
        record(
            actor=actor,
            action="token.create",
            target=token,
            merchant=user.merchant,
            after=token_snapshot(token),
        )
    return token, plaintext


# --- Authenticating: a short-lived cache per process ---------------------------------------------
# Looking a token up joins three tables; on a small server that was a third of the CPU of an API
# read.  Each process keeps what it looked up for FAPIAO_TOKEN_CACHE_SECONDS.  Revoking a token,
# disabling a user or resetting a password in this process forgets everything at once (and again at
# commit); other processes refuse the token at most that long later.  Expiry is checked every time.
_cache: dict[str, tuple[float, ApiToken]] = {}
_cache_lock = threading.Lock()


def _clear() -> None:
    with _cache_lock:
        _cache.clear()


def forget_cached_tokens(**_signal: object) -> None:
    """Drop every cached look-up: now, and once the current transaction commits (a look-up in
    between would still have read the old row)."""
    _clear()
    transaction.on_commit(_clear)


post_save.connect(forget_cached_tokens, sender=User, dispatch_uid="fapiao.accounts.tokens.user")
post_save.connect(forget_cached_tokens, sender=ApiToken, dispatch_uid="fapiao.accounts.tokens.token")


def _look_up(digest: str, now: datetime) -> ApiToken | None:
    return (
        ApiToken.objects.select_related("user", "user__merchant")
        .filter(digest=digest, revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )


def _copy(token: ApiToken) -> ApiToken:
    """Each request gets its own token and user objects (the merchant is shared, read-only)."""
    mine = copy.copy(token)
    mine.user = copy.copy(token.user)
    return mine


def _touch(token: ApiToken, now: datetime) -> None:
    """Record the token's use.  In the server the group-commit writer does it without the request
    waiting: a lone UPDATE from a request thread would queue for SQLite's write lock."""

    def touch(_unit: object = None) -> None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)

    touch.deferrable = True  # type: ignore[attr-defined]  # reads nothing another write defers

    if getattr(settings, "FAPIAO_WRITE_BATCHING", False):
        writer().enqueue(touch)
    else:
        touch()


def authenticate_token(plaintext: str) -> ApiToken:
    """The live token for ``plaintext``, recording its use at most once a minute."""
    now = timezone.now()
    digest = token_digest(plaintext)
    clock = time.monotonic()
    with _cache_lock:
        cached = _cache.get(digest)
    if (
        cached is not None
        and clock - cached[0] < settings.FAPIAO_TOKEN_CACHE_SECONDS
        and cached[1].expires_at > now
    ):
        token = cached[1]
    else:
        found = _look_up(digest, now)
        if found is None or not found.user.is_active:
            with _cache_lock:
                _cache.pop(digest, None)
            raise TokenInvalidError()
        token = found
        with _cache_lock:
            _cache[digest] = (clock, token)
    with _cache_lock:  # one request per process records the use, not every one in that second
        stale = token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION
        if stale:
            token.last_used_at = now
    if stale:
        _touch(token, now)
    return _copy(token)


def revoke_token(*, token: ApiToken, actor: User | None = None) -> None:
    """Revoke ``token`` (idempotent).  ``actor`` None: the server's command line."""
    with transaction.atomic():
        before = token_snapshot(token)
        forget_cached_tokens()
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if changed:
            token.refresh_from_db(fields=["revoked_at"])
            record(
                actor=actor,
                action="token.revoke",
                target=token,
                merchant=token.user.merchant,
                before=before,
                after=token_snapshot(token),
            )
