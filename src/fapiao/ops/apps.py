from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "fapiao.ops"
    label = "ops"

    def ready(self) -> None:
        # The drill scenarios register themselves (fapiao.ops.drills.register) when imported;
        # their modules use models, so they load once the registry is ready.
        import fapiao.ops.drills.database_lost  # noqa: F401, PLC0415  app loading
