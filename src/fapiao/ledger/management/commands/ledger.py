"""``fapiao ledger <subcommand>``: operations on the ledger.

Each subcommand lives in its own module, named in :data:`SUBCOMMANDS`, which provides ``HELP``,
``add_arguments(parser)`` and ``run(command, options)``; adding a subcommand is one line here.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

SUBCOMMANDS: dict[str, str] = {
    "verify": "fapiao.ledger.cli_verify",
    "check-receipt": "fapiao.ledger.cli_check_receipt",
}


def _module(name: str) -> ModuleType:
    return import_module(SUBCOMMANDS[name])


class Command(BaseCommand):
    help = "Ledger operations: `fapiao ledger verify [--merchant USCC] [--deep] [--json]` checks every log."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name in SUBCOMMANDS:
            module = _module(name)
            module.add_arguments(subcommands.add_parser(name, help=module.HELP, description=module.HELP))

    def handle(self, *args: Any, **options: Any) -> None:
        _module(options["subcommand"]).run(self, options)
