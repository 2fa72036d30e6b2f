"""Sign-ins, sign-outs, failed sign-ins and lockouts go into the audit trail.

Connected by :class:`fapiao.audit.apps.AuditConfig` at start-up.  A failed sign-in names the
username that was tried (never the password); it goes to that user's merchant's log when such a
user exists, else to the staff log.  A failed sign-in from someone not signed in is an anonymous
refusal: sampled per client address (:mod:`fapiao.audit.refusals`), and the lockout it runs into
is recorded with it or not at all.
"""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from fapiao.audit import refusals
from fapiao.audit.services import record_quietly

MAX_USERNAME = 150


def _tried(credentials: dict[str, Any] | None) -> str:
    value = (credentials or {}).get("username", "")
    return str(value)[:MAX_USERNAME] if value else ""


def _existing_user(username: str) -> Any:
    if not username:
        return None
    return get_user_model().objects.select_related("merchant").filter(username=username).first()


def logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    record_quietly(actor=user, action="auth.login", target=user)


def logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is not None and getattr(user, "is_authenticated", False):
        record_quietly(actor=user, action="auth.logout", target=user)


def _sampled_out(request: Any) -> bool:
    """True when this anonymous attempt is only counted, not recorded (a signed-in user's, such as a
    wrong second-factor code, always is)."""
    user = getattr(request, "user", None)
    if getattr(user, "is_authenticated", False):
        return False
    return not refusals.recorded_one_by_one(refusals.count(request))


def login_failed(
    sender: Any, credentials: dict[str, Any] | None = None, request: Any = None, **kwargs: Any
) -> None:
    if _sampled_out(request):
        return
    username = _tried(credentials)
    user = _existing_user(username)
    record_quietly(
        actor=None,
        action="auth.login_failed",
        target=user,
        target_type="" if user is not None else "accounts.user",
        target_id="" if user is not None else username,
        merchant=getattr(user, "merchant", None),
        after={"username": username},
    )


def locked_out(sender: Any, request: Any = None, username: str | None = None, **kwargs: Any) -> None:
    if _sampled_out(request):
        return
    user = _existing_user(username or "")
    record_quietly(
        actor=None,
        action="auth.locked_out",
        target=user,
        target_type="" if user is not None else "accounts.user",
        target_id="" if user is not None else (username or "")[:MAX_USERNAME],
        merchant=getattr(user, "merchant", None),
        after={"username": (username or "")[:MAX_USERNAME]},
    )


def connect() -> None:
    user_logged_in.connect(logged_in, dispatch_uid="fapiao.audit.logged_in")
    user_logged_out.connect(logged_out, dispatch_uid="fapiao.audit.logged_out")
    user_login_failed.connect(login_failed, dispatch_uid="fapiao.audit.login_failed")
    user_locked_out.connect(locked_out, dispatch_uid="fapiao.audit.locked_out")
