"""Request and response shapes of /api/v1/accounts (documented in the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import ConfigDict, Field

from fapiao.accounts.tokens import DEFAULT_TOKEN_DAYS


class Body(Schema):
    model_config = ConfigDict(extra="forbid")


class UserIn(Body):
    username: str = Field(max_length=150)
    role: str
    merchant: str | None = Field(default=None, description="USCC; merchant admins may leave it out")
    last_name: str = Field(default="", max_length=150)
    first_name: str = Field(default="", max_length=150)
    email: str = Field(
        default="",
        max_length=254,
        description="required: where the single-use link to choose a password is mailed",
    )


class UserOut(Schema):
    id: int
    username: str
    role: str
    merchant: str | None
    last_name: str
    first_name: str
    email: str
    is_active: bool
    must_change_password: bool
    awaiting_password: bool = Field(description="invited or reset: their link to choose a password is unused")
    locked: bool
    second_factor: bool
    last_login: datetime | None
    date_joined: datetime


class UserList(Schema):
    items: list[UserOut]


class InvitationOut(Schema):
    state: str = Field(description="pending | used | expired | replaced")
    purpose: str = Field(description="invite | reset")
    sent_to: str = Field(description="the address the link was mailed to; the link itself is never shown")
    created_at: datetime
    expires_at: datetime


class UserInvited(Schema):
    user: UserOut
    invitation: InvitationOut


class Unlocked(Schema):
    user: UserOut
    attempts_cleared: int


class MerchantIn(Body):
    uscc: str = Field(max_length=40)
    name: str = Field(max_length=200)
    address: str = Field(default="", max_length=400)
    phone: str = Field(default="", max_length=60)


class SegmentIn(Body):
    year: int = Field(description="calendar year, e.g. 2026")
    first_serial: int
    last_serial: int
    channel: int = 0
    province: str | None = Field(default=None, description="two digits; default FAPIAO_PROVINCE_CODE")


class SegmentOut(Schema):
    year: int
    province: str
    channel: int
    first_serial: int
    last_serial: int
    next_serial: int
    remaining: int


class MerchantOut(Schema):
    uscc: str
    name: str
    address: str
    phone: str
    is_active: bool
    segments: list[SegmentOut]


class MerchantList(Schema):
    items: list[MerchantOut]


class TokenIn(Body):
    name: str = Field(max_length=200)
    scope: str = "read"
    days: int = DEFAULT_TOKEN_DAYS


class TokenOut(Schema):
    id: str
    name: str
    scope: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenList(Schema):
    items: list[TokenOut]


class NewToken(TokenOut):
    token: str = Field(description="shown once; only a keyed digest is stored")
