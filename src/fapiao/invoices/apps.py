from functools import partial

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "fapiao.invoices"
    label = "invoices"
    verbose_name = _("Invoices")

    def ready(self) -> None:
        from fapiao.invoices import sensitive
        from fapiao.invoices.models import Invoice
        from fapiao.ops.datakeys import Rotation, pending_rows, register_rotation

        register_rotation(Rotation("invoices", partial(pending_rows, Invoice), sensitive.rotate_invoices))
