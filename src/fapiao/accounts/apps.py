from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fapiao.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from fapiao.accounts.permissions import Action
        from fapiao.web.navigation import ITEMS, NavItem

        # Before "Administration" (the last item): the user list, then one's own tokens.
        at = len(ITEMS) - 1 if ITEMS and ITEMS[-1].url_name == "admin:index" else len(ITEMS)
        ITEMS[at:at] = [
            NavItem("accounts:users", _("Users"), Action.READ_USERS),
            NavItem("accounts:tokens", _("API tokens"), Action.MANAGE_OWN_TOKENS),
        ]
