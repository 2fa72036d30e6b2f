from functools import partial

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DocumentsConfig(AppConfig):
    name = "fapiao.documents"
    label = "documents"
    verbose_name = _("Invoice documents and deliveries")

    def ready(self) -> None:
        # Models load only once the registry is ready.  The data-key rotation (platform) learns
        # what to re-encrypt here; the invoice and batch pages (invoices) get our panels.
        from fapiao.documents import panels, secrets  # noqa: PLC0415  app loading
        from fapiao.documents.models import Delivery, Document  # noqa: PLC0415  app loading
        from fapiao.invoices.panels import register_panel  # noqa: PLC0415  app loading
        from fapiao.platform.datakeys import Rotation, pending_rows, register_rotation  # noqa: PLC0415  app loading

        register_rotation(Rotation("documents", partial(pending_rows, Document), secrets.rotate_documents))
        register_rotation(Rotation("deliveries", partial(pending_rows, Delivery), secrets.rotate_deliveries))
        register_panel("invoice", panels.invoice_panel)
        register_panel("batch", panels.batch_panel)
