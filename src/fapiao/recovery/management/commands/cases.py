"""``fapiao cases <subcommand>``: recovery-case chores run from cron.

``fapiao cases remind [--dry-run] --user USERNAME`` reminds whoever must act on each overdue
case (once per case and Beijing day, so it is safe to run hourly) and prints what it did.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from fapiao.accounts.cli import acting_user, add_user_argument, command_error
from fapiao.core.errors import FapiaoError
from fapiao.recovery.models import Case
from fapiao.recovery.reminders import ReminderRun, send_reminders

REMIND_HELP = (
    "mail a reminder to whoever must act on each overdue case; once per case and Beijing day "
    "(run it from cron as a support agent or reviewer)"
)


class Command(BaseCommand):
    help = (
        "Recovery cases: `fapiao cases remind [--dry-run] --user USERNAME` reminds people of overdue cases."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        remind = subcommands.add_parser("remind", help=REMIND_HELP, description=REMIND_HELP)
        remind.add_argument("--dry-run", action="store_true", help="say who would be reminded; send nothing")
        add_user_argument(remind)

    def handle(self, *args: Any, **options: Any) -> None:
        actor = acting_user(options["user"])
        try:
            run = send_reminders(actor=actor, dry_run=options["dry_run"])
        except FapiaoError as error:
            raise command_error(error) from None
        self._report(run)

    def _report(self, run: ReminderRun) -> None:
        verb = "would remind" if run.dry_run else "reminded"
        for reminder in run.sent:
            due = timezone.localtime(reminder.due).strftime("%Y-%m-%d %H:%M") if reminder.due else "-"
            names = ", ".join(sorted(user.username for user in reminder.people))
            self.stdout.write(f"{_name(reminder.case)}  {reminder.case.state}  due {due}  {verb} {names}")
        for case in run.nobody:
            self.stdout.write(f"{_name(case)}  {case.state}  overdue, but no active user can act on it")
        self.stdout.write(
            f"{run.day.isoformat()} (Beijing): {verb} {len(run.sent)} case(s), {len(run.people)} person(s); "
            f"{len(run.already)} already reminded today; {len(run.nobody)} with nobody to remind."
        )


def _name(case: Case) -> str:
    return case.acceptance_no or str(case.uid)
