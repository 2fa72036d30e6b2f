from functools import partial

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogueConfig(AppConfig):
    """Entry aids (docs/spec/invoices.md): the buyer address book, the product catalogue, batch issuing."""

    name = "fapiao.catalogue"
    label = "catalogue"
    verbose_name = _("Address book and catalogue")

    def ready(self) -> None:
        # Models load only once the registry is ready; the data-key rotation (below us) learns
        # from here which of our rows to re-encrypt.
        from fapiao.catalogue import sensitive  # noqa: PLC0415  app loading
        from fapiao.catalogue.models import BatchRow, Buyer  # noqa: PLC0415  app loading
        from fapiao.platform.datakeys import Rotation, pending_rows, register_rotation  # noqa: PLC0415  app loading

        register_rotation(
            Rotation("address book", partial(pending_rows, Buyer), sensitive.rotate_address_book)
        )
        register_rotation(
            Rotation("batch rows", partial(pending_rows, BatchRow), sensitive.rotate_batch_rows)
        )
