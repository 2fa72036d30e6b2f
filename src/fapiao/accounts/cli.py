"""Helpers for management commands that act as a user."""

from __future__ import annotations

import os

from django.core.management.base import CommandError, CommandParser

from fapiao.accounts.models import User


def add_user_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--user", default=os.environ.get("FAPIAO_USER", ""), help="act as this user (default: $FAPIAO_USER)"
    )


def acting_user(username: str) -> User:
    if not username:
        raise CommandError("say who is acting: --user USERNAME (or set FAPIAO_USER)")
    try:
        return User.objects.select_related("merchant").get(username=username, is_active=True)
    except User.DoesNotExist:
        raise CommandError(f"no active user named {username!r}") from None
