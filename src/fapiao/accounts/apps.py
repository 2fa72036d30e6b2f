from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fapiao.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in  # noqa: PLC0415  app loading

        from fapiao.accounts.second_factor import clear_failures_after_password  # noqa: PLC0415  app loading

        # django-axes does not reset on success (AXES_RESET_ON_SUCCESS is off): this receiver does,
        # except for users whose second factor must follow the password.
        user_logged_in.connect(clear_failures_after_password, dispatch_uid="fapiao-clear-failures")
