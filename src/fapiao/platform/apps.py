from django.apps import AppConfig
from django.contrib.auth.signals import user_login_failed

from fapiao.platform import metrics


class PlatformConfig(AppConfig):
    name = "fapiao.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from axes.signals import user_locked_out  # noqa: PLC0415  imports axes' models: app loading
        from django.core.checks import register  # noqa: PLC0415  app loading

        from fapiao.platform.checks import private_files  # noqa: PLC0415  app loading

        register(private_files, "security", deploy=False)
        # Counted here, below every app: failed sign-ins (wrong passwords and second-factor codes
        # alike send Django's signal) and django-axes' lockouts.
        user_login_failed.connect(metrics.signin_failed, dispatch_uid="fapiao.metrics.signin_failed")
        user_locked_out.connect(metrics.locked_out, dispatch_uid="fapiao.metrics.locked_out")
