from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fapiao.accounts import onboarding, selectors
from fapiao.accounts.cli import acting_user, add_user_argument, command_error
from fapiao.accounts.presenters import merchant_out
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = "Merchants (tenants) as --user: list, show USCC, create USCC NAME (operators)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="every merchant (staff)")
        show = sub.add_parser("show", help="one merchant and its number segments, as JSON")
        show.add_argument("uscc")
        create = sub.add_parser("create", help="create a merchant; the USCC is checked")
        create.add_argument("uscc")
        create.add_argument("name")
        create.add_argument("--address", default="")
        create.add_argument("--phone", default="")
        for child in (listing, show, create):
            add_user_argument(child)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_user(options["user"])
        try:
            if options["action"] == "list":
                for merchant in selectors.merchant_list(user=actor):
                    state = "active" if merchant.is_active else "inactive"
                    self.stdout.write(f"{merchant.uscc}  {merchant.name}  {state}")
            elif options["action"] == "show":
                merchant = selectors.merchant_get(user=actor, uscc=options["uscc"])
                self.stdout.write(json.dumps(merchant_out(merchant), ensure_ascii=False, indent=2))
            else:
                merchant = onboarding.create_merchant(
                    actor=actor,
                    uscc=options["uscc"],
                    name=options["name"],
                    address=options["address"],
                    phone=options["phone"],
                )
                self.stdout.write(f"created {merchant.uscc}  {merchant.name}")
        except FapiaoError as error:
            raise command_error(error) from None
