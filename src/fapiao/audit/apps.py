from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "fapiao.audit"
    label = "audit"
    verbose_name = "audit trail"

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from fapiao.accounts.permissions import Action
        from fapiao.audit import signals

        signals.connect()
        try:
            from fapiao.web.navigation import ITEMS, NavItem
        except ImportError:  # no web app
            return
        if not any(item.url_name == "audit:records" for item in ITEMS):
            ITEMS.append(NavItem("audit:records", _("Audit trail"), Action.READ_AUDIT))
