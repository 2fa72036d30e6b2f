from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogueConfig(AppConfig):
    """Entry aids (DESIGN.md C1): the buyer address book, the product catalogue, batch issuing."""

    name = "fapiao.catalogue"
    label = "catalogue"
    verbose_name = _("Address book and catalogue")

    def ready(self) -> None:
        from fapiao.catalogue import sensitive
        from fapiao.ops.datakeys import Rotation, register_rotation

        register_rotation(
            Rotation("address book", sensitive.rows_to_rotate, sensitive.rotate_address_book_for_command)
        )
