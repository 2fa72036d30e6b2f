from functools import partial

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogueConfig(AppConfig):
    """Entry aids (DESIGN.md C1): the buyer address book, the product catalogue, batch issuing."""

    name = "fapiao.catalogue"
    label = "catalogue"
    verbose_name = _("Address book and catalogue")

    def ready(self) -> None:
        from fapiao.catalogue import sensitive
        from fapiao.catalogue.models import BatchRow, Buyer
        from fapiao.ops.datakeys import Rotation, pending_rows, register_rotation

        register_rotation(
            Rotation("address book", partial(pending_rows, Buyer), sensitive.rotate_address_book)
        )
        register_rotation(
            Rotation("batch rows", partial(pending_rows, BatchRow), sensitive.rotate_batch_rows)
        )
