from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    name = "fapiao.ledger"
    label = "ledger"
    verbose_name = _("Ledger")

    def ready(self) -> None:
        # Models import only once the app registry is ready; the unit of work (below us) learns
        # from here how to seal a unit's entries into signed heads and receipts.
        from fapiao.ledger.services import seal_unit  # noqa: PLC0415  app loading
        from fapiao.platform.uow import register_sealer  # noqa: PLC0415  app loading

        register_sealer(seal_unit)
