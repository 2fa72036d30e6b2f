from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fapiao.accounts.cli import acting_user, add_user_argument
from fapiao.core.errors import FapiaoError
from fapiao.invoices import selectors
from fapiao.invoices.presenters import summary_representation


class Command(BaseCommand):
    help = "Search invoices (number, dates, buyer, amounts, state) as the acting user; prints JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_argument(parser)
        parser.add_argument("--number", default="")
        parser.add_argument("--from", dest="date_from", default="")
        parser.add_argument("--to", dest="date_to", default="")
        parser.add_argument("--buyer", default="")
        parser.add_argument("--amount-min", default="")
        parser.add_argument("--amount-max", default="")
        parser.add_argument("--state", default="")
        parser.add_argument("--limit", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        params = {
            k: options[k]
            for k in ("number", "date_from", "date_to", "buyer", "amount_min", "amount_max", "state")
        }
        try:
            filters = selectors.parse_filters(params)
            found = list(selectors.invoice_list(user=user, filters=filters)[: options["limit"]])
        except FapiaoError as error:
            raise CommandError(error.render()) from None
        if not found:
            raise CommandError("没有找到符合条件的发票 (no invoice matches)")
        for invoice in found:
            self.stdout.write(json.dumps(summary_representation(invoice), ensure_ascii=False))
