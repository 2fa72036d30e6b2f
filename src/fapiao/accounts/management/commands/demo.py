from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fapiao.accounts.cli import command_error
from fapiao.accounts.demo import LEFT_ALONE, NOT_CREATED, DemoInProductionError, load_demo


class Command(BaseCommand):
    help = (
        "Load the demo merchants, users and number segments (idempotent; refused in production; "
        "never touches an account it did not create)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = load_demo()
        except DemoInProductionError as error:
            raise command_error(error) from None
        self.stdout.write("演示环境 / demo users:")
        for user in summary.users:
            if user.outcome == LEFT_ALONE:
                note = "left alone: an account the demo did not create has this name (not changed)"
                self.stdout.write(f"  {user.username:<10} {note}")
            elif user.outcome == NOT_CREATED:
                self.stdout.write(
                    f"  {user.username:<10} not created: its merchant {user.merchant} was left alone"
                )
            else:
                self.stdout.write(f"  {user.username:<10} {user.role:<15} {user.merchant}")
        for merchant in summary.merchants_left_alone:
            self.stdout.write(
                f"  merchant {merchant.uscc} ({merchant.name}) left alone: the demo did not create it "
                "(no segments, no demo users added)"
            )
        if summary.segments_skipped:
            self.stdout.write(
                f"  {summary.segments_skipped} demo number segment(s) skipped: "
                "another merchant holds those serials"
            )
        source = (
            "FAPIAO_DEMO_PASSWORD"
            if summary.password_from_environment
            else "default; set FAPIAO_DEMO_PASSWORD"
        )
        self.stdout.write(f"  password: {summary.password}  ({source})")
