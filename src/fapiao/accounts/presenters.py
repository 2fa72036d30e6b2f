"""Accounts as the API and the command line show them: never a password, a digest, a token or a link."""

from __future__ import annotations

from typing import Any

from fapiao.accounts import invitations, selectors
from fapiao.accounts.models import ApiToken, Invitation, Merchant, NumberSegment, User


def user_out(user: User, locked: set[str] | None = None) -> dict[str, Any]:
    if locked is None:
        locked = selectors.locked_usernames([user.username])
    return {
        "id": user.pk,
        "username": user.username,
        "role": user.role,
        "merchant": user.merchant.uscc if user.merchant_id and user.merchant else None,
        "last_name": user.last_name,
        "first_name": user.first_name,
        "email": user.email,
        "is_active": user.is_active,
        "must_change_password": user.must_change_password,
        "awaiting_password": not user.has_usable_password(),
        "locked": user.username in locked,
        "second_factor": user.totp_confirmed_at is not None,
        "last_login": user.last_login,
        "date_joined": user.date_joined,
    }


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    return {
        "state": invitations.state_of(invitation),
        "purpose": invitation.purpose,
        "sent_to": invitation.sent_to,
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
    }


def segment_out(segment: NumberSegment) -> dict[str, Any]:
    return {
        "year": 2000 + segment.year,
        "province": segment.province,
        "channel": segment.channel,
        "first_serial": segment.first_serial,
        "last_serial": segment.last_serial,
        "next_serial": segment.next_serial,
        "remaining": segment.remaining,
    }


def merchant_out(merchant: Merchant) -> dict[str, Any]:
    return {
        "uscc": merchant.uscc,
        "name": merchant.name,
        "address": merchant.address,
        "phone": merchant.phone,
        "is_active": merchant.is_active,
        "segments": [segment_out(segment) for segment in selectors.segments_of(merchant)],
    }


def token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": str(token.public_id),
        "name": token.name,
        "scope": token.scope,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }
