from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecoveryConfig(AppConfig):
    name = "fapiao.recovery"
    label = "recovery"
    verbose_name = _("Recovery cases")

    def ready(self) -> None:
        # Models load only once the registry is ready.  The ledger's verify (below us) learns from
        # here to compare every restore and re-issue entry with its case's claim.
        from fapiao.invoices.findings import register_listener  # noqa: PLC0415  app loading
        from fapiao.ledger.verify import register_row_check  # noqa: PLC0415  app loading
        from fapiao.recovery.loss import notify_findings  # noqa: PLC0415  app loading
        from fapiao.recovery.verify_remedies import check_remedies  # noqa: PLC0415  app loading

        register_row_check(check_remedies)
        register_listener(notify_findings)  # the merchant hears of a loss verify found
        # `fapiao ledger replay` rebuilds invoice rows, so it lives here; the ledger command
        # names its subcommands by module path.
        from fapiao.ledger.management.commands.ledger import SUBCOMMANDS  # noqa: PLC0415  app loading

        SUBCOMMANDS.setdefault("replay", "fapiao.recovery.cli_replay")
