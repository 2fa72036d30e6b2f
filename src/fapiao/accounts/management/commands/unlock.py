from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fapiao.accounts import services
from fapiao.accounts.cli import acting_user, add_user_argument, command_error, user_named
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = "Unlock USERNAME after too many failed sign-ins (operators, as --user)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        add_user_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_user(options["user"])
        target = user_named(actor, options["username"])
        try:
            cleared = services.unlock_user(actor=actor, target=target)
        except FapiaoError as error:
            raise command_error(error) from None
        self.stdout.write(f"{target.username}: unlocked ({cleared} failed sign-in record(s) cleared)")
