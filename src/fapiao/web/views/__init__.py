"""The pages.  Views parse, authorise (through services and selectors), call, and render."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest

from fapiao.accounts.models import User


def acting_user(request: HttpRequest) -> User:
    """The signed-in user (views that call this are behind ``login_required``)."""
    return cast(User, request.user)
