from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fapiao.accounts.cli import acting_user, add_user_argument
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.invoices.services import issue_invoice


class Command(BaseCommand):
    help = "Issue a blue invoice from a JSON file shaped like the POST /api/v1/invoices body."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        add_user_argument(parser)
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        try:
            payload = json.loads(options["file"].read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from None
        try:
            result = issue_invoice(user=user, payload=payload, idempotency_key=options["idempotency_key"])
        except ValidationFailed as error:
            lines = [f"  {item.field}: {item.render()} [{item.code}]" for item in error.errors]
            raise CommandError("\n".join([error.render(), *lines])) from None
        except FapiaoError as error:
            raise CommandError(error.render()) from None
        self.stdout.write(json.dumps(result.body, ensure_ascii=False, indent=2))
