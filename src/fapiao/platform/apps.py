import logging

from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth.signals import user_login_failed

from fapiao.platform import metrics


class PlatformConfig(AppConfig):
    name = "fapiao.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from axes.signals import user_locked_out  # noqa: PLC0415  imports axes' models: app loading
        from django.core.checks import register  # noqa: PLC0415  app loading

        from fapiao.platform.checks import (  # noqa: PLC0415  app loading
            PUBLIC_URL_UNSET,
            private_files,
            public_url,
            public_url_unset,
        )

        register(private_files, "security", deploy=False)
        register(public_url, deploy=False)
        if public_url_unset():  # said at every start, not only when someone runs the checks
            logging.getLogger("fapiao.startup").warning(
                PUBLIC_URL_UNSET.format(url=settings.FAPIAO_PUBLIC_URL)
            )
        # Counted here, below every app: failed sign-ins (wrong passwords and second-factor codes
        # alike send Django's signal) and django-axes' lockouts.
        user_login_failed.connect(metrics.signin_failed, dispatch_uid="fapiao.metrics.signin_failed")
        user_locked_out.connect(metrics.locked_out, dispatch_uid="fapiao.metrics.locked_out")
