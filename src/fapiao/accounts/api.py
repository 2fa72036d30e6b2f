"""/api/v1/accounts — users, merchants, number segments and the caller's own API tokens.

Thin handlers: parse, call a selector or service (which authorise and scope), render.  A new token
appears in exactly one response and is stored nowhere; that is why these POSTs do not take an
``Idempotency-Key`` (a stored replay would keep the secret).  Invitations and password resets answer
with the state of the link mailed to the user, never a password or the link.  Retrying a create is
safe anyway: usernames, USCCs and segment ranges are unique.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.responses import Status

from fapiao.accounts import onboarding, second_factor, selectors, services, tokens
from fapiao.accounts.models import User
from fapiao.accounts.presenters import invitation_out, merchant_out, segment_out, token_out, user_out
from fapiao.accounts.schemas import (
    MerchantIn,
    MerchantList,
    MerchantOut,
    NewToken,
    SegmentIn,
    SegmentOut,
    TokenIn,
    TokenList,
    Unlocked,
    UserIn,
    UserInvited,
    UserList,
    UserOut,
)
from fapiao.platform.openapi import documented

router = Router(tags=["accounts"])


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- users ------------------------------------------------------------------------------------


@router.get("/users", response=UserList, openapi_extra=documented(), summary="Users the caller may see")
def list_users(request: HttpRequest, merchant: str = "", role: str = "") -> dict[str, Any]:
    users = list(selectors.user_list(user=_actor(request), merchant=merchant, role=role))
    locked = selectors.locked_usernames([user.username for user in users])
    return {"items": [user_out(user, locked) for user in users]}


@router.post(
    "/users",
    response={201: UserInvited},
    openapi_extra=documented(404, 409, 413),
    summary="Invite a user (they are mailed a single-use link to choose their password)",
)
def invite_user(request: HttpRequest, body: UserIn) -> Status[dict[str, Any]]:
    actor = _actor(request)
    merchant = selectors.merchant_get(user=actor, uscc=body.merchant) if body.merchant else None
    user, issued = services.invite_user(
        actor=actor,
        username=body.username,
        role=body.role,
        merchant=merchant,
        last_name=body.last_name,
        first_name=body.first_name,
        email=body.email,
    )
    return Status(201, {"user": user_out(user, set()), "invitation": invitation_out(issued.invitation)})


@router.get("/users/{user_id}", response=UserOut, openapi_extra=documented(404), summary="One user")
def get_user(request: HttpRequest, user_id: int) -> dict[str, Any]:
    return user_out(selectors.user_get(user=_actor(request), user_id=user_id))


@router.post(
    "/users/{user_id}/disable", response=UserOut, openapi_extra=documented(404), summary="Disable a user"
)
def disable_user(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    return user_out(services.set_user_active(actor=actor, target=target, active=False))


@router.post(
    "/users/{user_id}/enable", response=UserOut, openapi_extra=documented(404), summary="Enable a user"
)
def enable_user(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    return user_out(services.set_user_active(actor=actor, target=target, active=True))


@router.post(
    "/users/{user_id}/reset-password",
    response=UserInvited,
    openapi_extra=documented(404),
    summary="End a user's password, sessions and tokens; mail them a link to choose a new one",
)
def reset_password(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    issued = services.reset_password(actor=actor, target=target)
    target.refresh_from_db()
    return {"user": user_out(target), "invitation": invitation_out(issued.invitation)}


@router.post(
    "/users/{user_id}/unlock",
    response=Unlocked,
    openapi_extra=documented(404),
    summary="Unlock a locked-out user",
)
def unlock_user(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    cleared = services.unlock_user(actor=actor, target=target)
    return {"user": user_out(target), "attempts_cleared": cleared}


@router.post(
    "/users/{user_id}/reset-second-factor",
    response=UserOut,
    openapi_extra=documented(404),
    summary="Clear a staff member's lost second factor (operators)",
)
def reset_second_factor(request: HttpRequest, user_id: int) -> dict[str, Any]:
    actor = _actor(request)
    target = selectors.user_get(user=actor, user_id=user_id)
    second_factor.reset(actor=actor, target=target)
    return user_out(target)


# --- merchants and number segments --------------------------------------------------------------


@router.get("/merchants", response=MerchantList, openapi_extra=documented(), summary="Merchants (staff)")
def list_merchants(request: HttpRequest) -> dict[str, Any]:
    return {"items": [merchant_out(m) for m in selectors.merchant_list(user=_actor(request))]}


@router.post(
    "/merchants",
    response={201: MerchantOut},
    openapi_extra=documented(409, 413),
    summary="Create a merchant",
)
def create_merchant(request: HttpRequest, body: MerchantIn) -> Status[dict[str, Any]]:
    merchant = onboarding.create_merchant(
        actor=_actor(request), uscc=body.uscc, name=body.name, address=body.address, phone=body.phone
    )
    return Status(201, merchant_out(merchant))


@router.get(
    "/merchants/{uscc}",
    response=MerchantOut,
    openapi_extra=documented(404),
    summary="One merchant and its segments",
)
def get_merchant(request: HttpRequest, uscc: str) -> dict[str, Any]:
    return merchant_out(selectors.merchant_get(user=_actor(request), uscc=uscc))


@router.post(
    "/merchants/{uscc}/segments",
    response={201: SegmentOut},
    openapi_extra=documented(404, 409, 413),
    summary="Allocate a number segment (never overlapping another merchant's)",
)
def allocate_segment(request: HttpRequest, uscc: str, body: SegmentIn) -> Status[dict[str, Any]]:
    actor = _actor(request)
    merchant = selectors.merchant_get(user=actor, uscc=uscc)
    segment = onboarding.allocate_segment(
        actor=actor,
        merchant=merchant,
        year=body.year,
        first_serial=body.first_serial,
        last_serial=body.last_serial,
        channel=body.channel,
        province=body.province,
    )
    return Status(201, segment_out(segment))


# --- the caller's own API tokens ------------------------------------------------------------------


@router.get("/tokens", response=TokenList, openapi_extra=documented(), summary="Your API tokens")
def list_tokens(request: HttpRequest) -> dict[str, Any]:
    return {"items": [token_out(token) for token in selectors.own_tokens(user=_actor(request))]}


@router.post(
    "/tokens",
    response={201: NewToken},
    openapi_extra=documented(413),
    summary="Create an API token (signed-in sessions only; the token is shown once)",
)
def create_token(request: HttpRequest, body: TokenIn) -> Status[dict[str, Any]]:
    actor = _actor(request)
    token, plaintext = tokens.create_token(
        user=actor,
        scope=body.scope,
        name=body.name,
        days=body.days,
        actor=actor,
        actor_token=getattr(request, "api_token", None),
    )
    return Status(201, {**token_out(token), "token": plaintext})


@router.delete(
    "/tokens/{token_id}",
    response={204: None},
    openapi_extra=documented(404),
    summary="Revoke one of your tokens",
)
def revoke_token(request: HttpRequest, token_id: str) -> HttpResponse:
    actor = _actor(request)
    token = selectors.own_token_get(user=actor, public_id=token_id)
    tokens.revoke_token(token=token, actor=actor)
    return HttpResponse(status=204)
