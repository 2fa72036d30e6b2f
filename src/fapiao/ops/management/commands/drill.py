"""``fapiao drill SCENARIO [options]``: rehearse a disaster on a scratch copy (应急演练).

The scenarios are :data:`fapiao.ops.drills.SCENARIOS`, one per scenario of the emergency plan
(docs/operations/emergency-plan.md); each registers itself from ``fapiao.ops.apps``. Each prints
its report, saves it (JSON and Markdown) under ``$FAPIAO_VAR_DIR/drills/`` and exits 0 when the
drill passed, 1 when it did not, 2 when it could not be run.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError
from fapiao.ops.drills import SCENARIOS, drills_dir


class Command(BaseCommand):
    help = (
        "Rehearse a scenario of the emergency plan on a scratch copy, never the live data: "
        "fapiao drill SCENARIO (one per scenario, listed below)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
        for name, scenario in sorted(SCENARIOS.items()):
            each = sub.add_parser(name, help=scenario.help, description=scenario.help)
            if scenario.add_arguments is not None:
                scenario.add_arguments(each)
            each.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        scenario = SCENARIOS[options["scenario"]]
        try:
            report = scenario.run(options)
        except FapiaoError as error:
            raise CommandError(error.render(gettext)) from None
        if options.get("inside"):  # a drill's child process: its result, for the parent
            self.stdout.write(json.dumps(report, ensure_ascii=False))
            return
        if options.get("json"):
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True))
        elif scenario.markdown is not None:
            self.stdout.write(scenario.markdown(report))
        self.stdout.write(
            gettext("Saved as {path}.json and .md.").format(path=drills_dir() / str(report["id"]))
        )
        if not report.get("ok"):
            raise SystemExit(1)
