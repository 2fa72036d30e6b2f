"""Helpers for management commands that act as a user."""

from __future__ import annotations

import os

from django.core.management.base import CommandError, CommandParser

from fapiao.accounts.models import User
from fapiao.accounts.selectors import users_visible_to
from fapiao.core.errors import FapiaoError, ValidationFailed


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


def command_error(error: FapiaoError) -> CommandError:
    """A service's error as a one-line reason (plus one line per field problem), never a traceback."""
    if isinstance(error, ValidationFailed):
        lines = [f"  {item.field}: {item.render()} [{item.code}]" for item in error.errors]
        return CommandError("\n".join([error.render(), *lines]))
    return CommandError(f"{error.render()} [{error.code}]")


def user_named(actor: User, username: str) -> User:
    """The user called ``username``, if ``actor`` may see them (otherwise: not found)."""

    try:
        found = users_visible_to(actor).filter(username=username).first()
    except FapiaoError as error:
        raise command_error(error) from None
    if found is None:
        raise CommandError(f"no user named {username!r} that you may see")
    return found
