from functools import partial

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "fapiao.invoices"
    label = "invoices"
    verbose_name = _("Invoices")

    def ready(self) -> None:
        # Models load only once the registry is ready.  The ledger's verify and the data-key
        # rotation (both below us) learn from here what to check and re-encrypt in our rows.
        from fapiao.invoices import findings, outgoing, sensitive  # noqa: PLC0415  app loading
        from fapiao.invoices.ledger_rows import check_invoices  # noqa: PLC0415  app loading
        from fapiao.invoices.models import Invoice  # noqa: PLC0415  app loading
        from fapiao.ledger.checks import register_proven_hook  # noqa: PLC0415  app loading
        from fapiao.ledger.verify import register_row_check  # noqa: PLC0415  app loading
        from fapiao.ledger.verify_runs import register_run_hook  # noqa: PLC0415  app loading
        from fapiao.platform.datakeys import Rotation, pending_rows, register_rotation  # noqa: PLC0415  app loading

        register_rotation(Rotation("invoices", partial(pending_rows, Invoice), sensitive.rotate_invoices))
        register_row_check(check_invoices)
        register_row_check(outgoing.check_numbers)
        register_run_hook(findings.record_from_report)  # the merchant sees what verify found
        register_proven_hook(findings.check_receipt_row)  # … and what a receipt check finds
