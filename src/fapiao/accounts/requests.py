"""The signed-in user of a request, typed as ours."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest

from fapiao.accounts.models import User


def acting_user(request: HttpRequest) -> User:
    """The signed-in user (views that call this are behind ``login_required``)."""
    return cast(User, request.user)
