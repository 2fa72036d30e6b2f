from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fapiao.accounts.cli import acting_user, add_user_argument
from fapiao.accounts.permissions import Action, require
from fapiao.core.errors import FapiaoError
from fapiao.invoices import selectors
from fapiao.invoices.exports import export_invoices


class Command(BaseCommand):
    help = "Export invoices issued between two dates (inclusive, Beijing time) to .csv or .xlsx."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_argument(parser)
        parser.add_argument("--from", dest="date_from", required=True)
        parser.add_argument("--to", dest="date_to", required=True)
        parser.add_argument("out", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        out: Path = options["out"]
        if out.suffix.lower() not in {".csv", ".xlsx"}:
            raise CommandError("the output file must end in .csv or .xlsx")
        try:
            require(user, Action.EXPORT_INVOICES)
            filters = selectors.parse_filters(
                {"date_from": options["date_from"], "date_to": options["date_to"]}
            )
            queryset = selectors.invoice_list(user=user, filters=filters)
            count = export_invoices(
                queryset,
                out,
                actor=user,
                filters={"date_from": options["date_from"], "date_to": options["date_to"]},
            )
        except FapiaoError as error:
            raise CommandError(error.render()) from None
        self.stdout.write(f"{count} invoices → {out}")
