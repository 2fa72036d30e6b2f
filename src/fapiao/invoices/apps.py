from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "fapiao.invoices"
    label = "invoices"
    verbose_name = _("Invoices")

    def ready(self) -> None:
        from fapiao.invoices import sensitive
        from fapiao.ops.datakeys import Rotation, register_rotation

        register_rotation(Rotation("invoices", sensitive.rows_to_rotate, sensitive.rotate_for_command))
