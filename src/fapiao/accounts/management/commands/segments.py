from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fapiao.accounts import onboarding, selectors
from fapiao.accounts.cli import acting_user, add_user_argument, command_error
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = "Number segments (号段) as --user: list USCC, allocate USCC --year --first --last (operators)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="a merchant's segments")
        listing.add_argument("uscc")
        allocate = sub.add_parser("allocate", help="allocate serials FIRST..LAST of YEAR; never overlapping")
        allocate.add_argument("uscc")
        allocate.add_argument("--year", type=int, required=True, help="calendar year, e.g. 2026")
        allocate.add_argument("--first", type=int, required=True, help="first 15-digit serial")
        allocate.add_argument("--last", type=int, required=True, help="last serial (inclusive)")
        allocate.add_argument("--channel", type=int, default=0)
        allocate.add_argument("--province", default=None, help="two digits (default FAPIAO_PROVINCE_CODE)")
        for child in (listing, allocate):
            add_user_argument(child)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_user(options["user"])
        try:
            merchant = selectors.merchant_get(user=actor, uscc=options["uscc"])
            if options["action"] == "allocate":
                onboarding.allocate_segment(
                    actor=actor,
                    merchant=merchant,
                    year=options["year"],
                    first_serial=options["first"],
                    last_serial=options["last"],
                    channel=options["channel"],
                    province=options["province"],
                )
            for segment in selectors.segments_of(merchant):
                self.stdout.write(
                    f"20{segment.year:02d} {segment.province} {segment.channel}  "
                    f"{segment.first_serial:015d}–{segment.last_serial:015d}  "
                    f"next {segment.next_serial:015d}  remaining {segment.remaining}"
                )
        except FapiaoError as error:
            raise command_error(error) from None
