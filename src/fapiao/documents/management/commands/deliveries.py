"""``fapiao deliveries retry``: try again every delivery whose time has come (run it from a timer)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fapiao.documents.deliveries import retry_due


class Command(BaseCommand):
    help = "Retry e-mail deliveries of invoices that failed and are due (run every few minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("retry", help="send every failed delivery whose next attempt is due")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = retry_due()
        self.stdout.write(
            f"sent {counts['sent']}, failed (will retry) {counts['failed']}, "
            f"undeliverable {counts['undeliverable']}"
        )
