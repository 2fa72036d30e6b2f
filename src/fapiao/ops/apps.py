from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "fapiao.ops"
    label = "ops"

    def ready(self) -> None:
        # The drill scenarios register themselves (fapiao.ops.drills.register) when imported;
        # their modules use models, so they load once the registry is ready.
        from fapiao.ops.drills import (  # noqa: F401, PLC0415  app loading
            bad_migration,
            data_key_lost,
            database_down,
            database_lost,
            disk_full,
            mass_missing,
            operator_compromised,
            ransomware,
            signing_key_compromised,
        )
