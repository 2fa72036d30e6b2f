from django.apps import AppConfig


class LossyMigrationConfig(AppConfig):
    name = "tests.lossy_migration_app"
    label = "lossy_migration_app"
