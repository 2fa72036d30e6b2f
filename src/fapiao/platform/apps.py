from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "fapiao.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.core.checks import register  # noqa: PLC0415  app loading

        from fapiao.platform.checks import private_files  # noqa: PLC0415  app loading

        register(private_files, "security", deploy=False)
